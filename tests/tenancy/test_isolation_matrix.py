"""The isolation matrix: every route that takes an id, aimed by a member of
``acme`` at a row of ``globex``.

Generic on purpose: the routes come from ``app.url_map`` and the ids from
globex's rows, so a route added by any area is covered the day it is
registered. A URL variable this file does not know FAILS the test (with
instructions) instead of being skipped, so a new route cannot escape.

The requester is acme's Owner: every permission, so a 404 is never a
permission refusal in disguise. For every method the route accepts, with and
without ``HX-Request``:

* the answer is 404 (the same as for an id that does not exist);
* no globex name, slug or id appears in the body;
* a write changes none of globex's rows (checked through the owner
  connection, which RLS does not filter).

Every acme page without URL variables is also fetched (page and fragment)
and must not mention globex.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from app.extensions import db
from app.rbac.models import Role
from app.rls import tenant_tables
from app.scoping import tenant_context
from tests.conftest import csrf_token, sign_in

# How to find a globex value for each URL variable: SQL run as the owner,
# with :globex and :acme bound to the two organizations' ids. Pick rows that
# belong to globex only (a user in both organizations is legitimately
# visible from acme).
#
# Added a route whose URL variable is not below? Add the variable here (and,
# if globex has no such row yet, create one in ``seed_globex``), or, if it
# does not name a row at all, to NOT_ROW_IDS with the reason.
GLOBEX_ID_SQL: dict[str, str] = {
    "project_id": "SELECT id::text FROM projects WHERE organization_id = :globex",
    "role_key": "SELECT id::text FROM roles WHERE organization_id = :globex",
    "role_id": "SELECT id::text FROM roles WHERE organization_id = :globex",
    "user_id": "SELECT user_id::text FROM memberships WHERE organization_id = :globex AND user_id NOT IN "
    "(SELECT user_id FROM memberships WHERE organization_id = :acme)",
    "member_id": "SELECT user_id::text FROM memberships WHERE organization_id = :globex AND user_id NOT IN "
    "(SELECT user_id FROM memberships WHERE organization_id = :acme)",
    # Sessions are a global table, but one belongs to a person: a globex-only
    # member's sign-in must be out of reach of anyone in acme.
    "session_id": "SELECT s.id::text FROM user_sessions s JOIN memberships m ON m.user_id = s.user_id "
    "WHERE m.organization_id = :globex AND s.user_id NOT IN "
    "(SELECT user_id FROM memberships WHERE organization_id = :acme)",
    # Passkeys too: a globex-only member's passkey is out of reach of anyone in acme.
    "passkey_id": "SELECT w.id::text FROM webauthn_credentials w JOIN memberships m ON m.user_id = w.user_id "
    "WHERE m.organization_id = :globex AND w.user_id NOT IN "
    "(SELECT user_id FROM memberships WHERE organization_id = :acme)",
    "org_id": "SELECT id::text FROM organizations WHERE id = :globex",
    "invitation_id": "SELECT id::text FROM invitations WHERE organization_id = :globex",
    "event_id": "SELECT id::text FROM audit_events WHERE organization_id = :globex",
    "endpoint_id": "SELECT id::text FROM webhook_endpoints WHERE organization_id = :globex",
    "delivery_id": "SELECT id::text FROM webhook_deliveries WHERE organization_id = :globex",
    "key_id": "SELECT id::text FROM api_keys WHERE organization_id = :globex",
    "domain_id": "SELECT id::text FROM domains WHERE organization_id = :globex",
    "connection_id": "SELECT id::text FROM sso_connections WHERE organization_id = :globex",
    "link_id": "SELECT id::text FROM sso_setup_links WHERE organization_id = :globex",
    "review_id": "SELECT id::text FROM access_reviews WHERE organization_id = :globex",
    "export_id": "SELECT id::text FROM org_exports WHERE organization_id = :globex",
    "token_id": "SELECT id::text FROM scim_tokens WHERE organization_id = :globex",
    "mapping_id": "SELECT id::text FROM group_role_mappings WHERE organization_id = :globex",
    "stream_id": "SELECT id::text FROM audit_streams WHERE organization_id = :globex",
}

# URL variables that do not name a database row, and why they are out of scope.
NOT_ROW_IDS: dict[str, str] = {
    "filename": "static files",
    "msg_id": "the development outbox: files on disk, development only",
    "key": "a plan's key: plans are global reference data, edited only in the platform console (its gate: 404)",
    "protocol": "an SSO protocol's key (oidc, saml): a name in code, not a row",
    "kind": "a compliance report's name (access, changes, security): the report reads the current organization only",
    "subpath": "SCIM paths (/scim/v2/Users/<id>): token-authenticated, no session; "
    "tests/scim/test_protocol.py aims acme's token at globex's users and groups (404, nothing changed)",
    "token": "single-use secrets (e-mail confirmation, password reset): only their hash is stored; "
    "their own tests cover forged and reused tokens; a personal data export's link is signed and bound to "
    "its owner (tests/privacy/test_export.py: another account's link is 403)",
}

# The JSON API's writes that need a body to reach their id lookup.
API_BODIES = {"api.change_role": {"role": "member"}, "api.replay_failed": {"since": "2026-01-01T00:00:00Z"}}

IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Text columns whose values are globex's own words (names, addresses, labels).
WORDY = ("name", "slug", "email", "label", "description", "title")
# Field values a write might need to get past validation: the test wants the
# id lookup, not the form, to be what stops it.
FORM_FIELDS = {
    "name": "Pwned from acme",
    "description": "x",
    "status": "archived",
    "role": "admin",
    "confirm": "globex",
    "email": "pwned@example.test",
    "permissions": "projects:delete",
}


def seed_globex(app, world) -> None:
    """Rows globex needs so that every variable above has something to aim at."""
    from datetime import timedelta

    from app.members.models import Invitation
    from app.projects.services import create_project
    from app.util import utcnow

    with tenant_context(world.globex.id, world.users["globex_owner"].id):
        db.session.add(Role(name="Globex auditors", description="Globex only", permissions=["audit:view"]))
        db.session.add(
            Invitation(
                email="invitee@globex.test", role="member", token_hash="0" * 64, expires_at=utcnow() + timedelta(days=7)
            )
        )
        # Through the service, so that globex's audit log holds an event too.
        create_project("Globex Audited Plan", "Globex only", world.users["globex_owner"].id)
        # A webhook endpoint (literal public address: no DNS) and a delivery of it.
        from app.webhooks import services as webhooks

        endpoint, _ = webhooks.create_endpoint(
            world.globex, "https://93.184.215.14/globex", "Globex only", ["role.created"]
        )
        webhooks.send_test_event(endpoint)
        # An audit stream (written directly: globex's plan lacks streaming,
        # and nothing is ever sent to this address).
        from app import crypto
        from app.streaming.models import AuditStream

        db.session.add(
            AuditStream(
                name="Globex SIEM",
                kind="https",
                url="https://93.184.215.14/globex-stream",
                secret_encrypted=crypto.encrypt("whsec_globex"),
                enabled=False,
                disabled_reason="manual",
            )
        )
        # An API key and a (pending) domain of globex's own.
        from app.api import keys
        from app.domains.models import Domain
        from app.members.memberships import get_membership

        keys.create_key("Globex only", ["members:view"], 30, get_membership(world.users["globex_owner"].id))
        db.session.add(Domain(name="globex-only.example", token="globex-token"))
        # An SSO connection and a setup link of globex's own.
        from app.sso.models import SsoConnection, SsoSetupLink

        db.session.add(SsoConnection(protocol="oidc", provider="okta", name="Globex IdP", config={}))
        db.session.add(SsoSetupLink(token_hash="2" * 64, label="Globex IT", expires_at=utcnow() + timedelta(days=1)))
        # A SCIM token and a group mapping of globex's own.
        from app.rbac.group_roles import GroupRoleMapping
        from app.scim import tokens as scim_tokens

        scim_tokens.create_token("Globex IdP", get_membership(world.users["globex_owner"].id))
        db.session.add(GroupRoleMapping(source="scim", group_name="Globex engineers", role="viewer"))
        # An access review of globex's members (its items name a globex-only member).
        from app.reviews import services as reviews

        plan = reviews.check_plan(
            "Globex only review",
            "all",
            [],
            # Two reviewers: nobody decides on their own access (app.reviews).
            [str(world.users["globex_owner"].id), str(world.users["consultant"].id)],
            reviews.today() + timedelta(days=7),
            "none",
        )
        reviews.start_review(plan, get_membership(world.users["globex_owner"].id))
        db.session.commit()
    # Acme runs one too: its role names ("Admin", "Owner") and a member both
    # organizations share are then acme's own words, not globex's secrets.
    with tenant_context(world.acme.id, world.users["owner"].id):
        plan = reviews.check_plan(
            "Acme review",
            "all",
            [],
            [str(world.users["owner"].id), str(world.users["admin"].id)],
            reviews.today() + timedelta(days=7),
            "none",
        )
        reviews.start_review(plan, get_membership(world.users["owner"].id))
        db.session.commit()
    # A ready export of globex's data.
    import uuid

    from app.orgdata.models import OrgExport

    with tenant_context(world.globex.id):
        db.session.add(
            OrgExport(
                id=uuid.uuid4(), status="ready", archive=b"PK globex", size=9, expires_at=utcnow() + timedelta(days=1)
            )
        )
        db.session.commit()
    # Acme may open its SCIM settings (so that a 404 there is the id, not the plan).
    from tests.scim.conftest import entitle_scim

    entitle_scim(world.acme.id)
    sign_in(app, world.users["globex_member"], "globex")  # a globex-only user session
    from app.auth.models import WebAuthnCredential

    db.session.add(  # a globex-only member's passkey
        WebAuthnCredential(
            user_id=world.users["globex_member"].id,
            credential_id=b"globex-only-credential",
            public_key=b"cose",
            name="Globex key",
            transports=[],
        )
    )
    db.session.commit()


def acme_api_key(world) -> str:
    """A key of acme's Owner with every scope: the API (key-authenticated, no
    session) is aimed at globex's ids with it."""
    from app.api import keys
    from app.members.memberships import get_membership
    from app.permissions import ALL

    with tenant_context(world.acme.id):
        _key, full = keys.create_key("Matrix", sorted(ALL), 30, get_membership(world.users["owner"].id))
        db.session.commit()
    return full


def globex_values(owner_engine, world) -> dict[str, str]:
    params = {"globex": world.globex.id, "acme": world.acme.id}
    values = {}
    with owner_engine.connect() as c:
        for var, sql in GLOBEX_ID_SQL.items():
            try:
                with c.begin_nested():
                    values[var] = c.execute(text(sql + " LIMIT 1"), params).scalar()
            except Exception:  # a table some area has not created (yet)
                values[var] = None
    return values


def globex_secrets(owner_engine, world) -> set[str]:
    """Everything of globex that acme must never see: names, slug, ids, e-mails.

    Taken from every tenant table, minus values acme has too (a shared
    member's id, a role name like "member", a status).
    """
    params = {"globex": world.globex.id, "acme": world.acme.id}
    secrets: set[str] = {str(world.globex.id), world.globex.name, world.globex.slug}
    shared: set[str] = set()
    with owner_engine.connect() as c:
        for table in tenant_tables(c):
            for org, bucket in (("globex", secrets), ("acme", shared)):
                for row in c.execute(text(f'SELECT * FROM "{table}" WHERE organization_id = :{org}'), params):
                    for column, value in row._mapping.items():
                        if isinstance(value, uuid.UUID) or (
                            isinstance(value, str) and len(value) >= 5 and any(w in column for w in WORDY)
                        ):
                            bucket.add(str(value))
        users = c.execute(
            text(
                "SELECT u.id::text, u.name, u.email FROM users u JOIN memberships m ON m.user_id = u.id "
                "WHERE m.organization_id = :globex AND u.id NOT IN "
                "(SELECT user_id FROM memberships WHERE organization_id = :acme)"
            ),
            params,
        )
        for row in users:
            secrets.update(row)

    # A bare lower-case word ("system", "active") is vocabulary, not globex's data.
    def vocabulary(s: str) -> bool:
        return s.isalpha() and s.islower() and s != world.globex.slug

    return {s for s in secrets - shared if s and s != str(world.acme.id) and not vocabulary(s)}


def globex_snapshot(owner_engine, world) -> dict[str, str]:
    """A fingerprint of every globex row (tenant tables, the organization, its own users)."""
    params = {"globex": world.globex.id, "acme": world.acme.id}
    out = {}
    with owner_engine.connect() as c:
        for table in tenant_tables(c):
            out[table] = c.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t "
                    "WHERE organization_id = :globex"
                ),
                params,
            ).scalar()
        out["organizations"] = c.execute(
            text("SELECT md5(o::text) FROM organizations o WHERE id = :globex"), params
        ).scalar()
        for table, col in (("users", "id"), ("user_sessions", "user_id"), ("webauthn_credentials", "user_id")):
            out[table] = c.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t "
                    f"WHERE {col} IN (SELECT user_id FROM memberships WHERE organization_id = :globex) "
                    f"AND {col} NOT IN (SELECT user_id FROM memberships WHERE organization_id = :acme)"
                ),
                params,
            ).scalar()
    return out


def leaks(body: bytes, secrets: set[str]) -> list[str]:
    page = body.decode(errors="replace")
    return sorted(s for s in secrets if s in page)


def id_routes(app):
    """Every rule with URL variables, except those whose variables are all non-row ids."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.arguments and not rule.arguments <= set(NOT_ROW_IDS):
            yield rule


@pytest.fixture
def matrix(world, app, owner_engine):
    seed_globex(app, world)
    # Acme on the plan with every feature: a route behind a feature acme
    # lacked would refuse (403) before it ever looked the id up.
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :a"), {"a": world.acme.id})
    return {
        "values": globex_values(owner_engine, world),
        "secrets": globex_secrets(owner_engine, world),
    }


def test_every_url_variable_is_known(app):
    """A route with an unknown variable fails here, with what to do about it."""
    unknown = {}
    for rule in app.url_map.iter_rules():
        for var in rule.arguments - set(GLOBEX_ID_SQL) - set(NOT_ROW_IDS):
            unknown.setdefault(var, []).append(f"{rule.endpoint} {rule.rule}")
    assert not unknown, (
        "Routes with URL variables the isolation matrix does not know:\n"
        + "\n".join(f"  <{var}>: {', '.join(rules)}" for var, rules in sorted(unknown.items()))
        + "\nAdd each variable to GLOBEX_ID_SQL in tests/tenancy/test_isolation_matrix.py (SQL that finds a "
        "globex-only value; seed a row in seed_globex if the world has none), or to NOT_ROW_IDS with the "
        "reason it names no row."
    )


def test_acme_aiming_at_globex_ids_gets_404_leaks_nothing_and_changes_nothing(app, world, matrix, owner_engine):
    values, secrets = matrix["values"], matrix["secrets"]
    assert world.globex.name in secrets and len(secrets) > 10
    client = sign_in(app, world.users["owner"], "acme")
    token = csrf_token(client, "acme")
    api_client, api_auth = app.test_client(), {"Authorization": f"Bearer {acme_api_key(world)}"}
    # The key works on acme's host: a 404 below is the id, not the key.
    assert api_client.get("http://acme.tenantry.localhost/api/v1/members", headers=api_auth).status_code == 200
    problems, tried = [], 0
    for rule in id_routes(app):
        unknown = rule.arguments - set(GLOBEX_ID_SQL) - set(NOT_ROW_IDS)
        if unknown:
            problems.append(
                f"{rule.endpoint}: unknown URL variable(s) {sorted(unknown)}: see test_every_url_variable_is_known"
            )
            continue
        missing = [v for v in rule.arguments if v in GLOBEX_ID_SQL and not values.get(v)]
        if missing:
            problems.append(
                f"{rule.endpoint}: globex has no row for <{'>, <'.join(missing)}>: create one in seed_globex()"
            )
            continue
        args = {v: (values[v] if v in GLOBEX_ID_SQL else "x") for v in rule.arguments}
        path = rule.build(args)[1]
        for method in sorted(rule.methods - IGNORED_METHODS):
            for htmx in (False, True):
                headers = {"HX-Request": "true"} if htmx else {}
                before = globex_snapshot(owner_engine, world) if method != "GET" else None
                if rule.endpoint.startswith("api."):  # the JSON API: a key, never a session
                    # A valid body (or none), so that the id is what stops it.
                    r = api_client.open(
                        f"http://acme.tenantry.localhost{path}",
                        method=method,
                        json=API_BODIES.get(rule.endpoint, {} if method == "PATCH" else None),
                        headers={**headers, **api_auth, "If-Match": '"1"'},
                    )
                else:
                    data = {"csrf_token": token, **FORM_FIELDS} if method != "GET" else None
                    r = client.open(f"http://acme.tenantry.localhost{path}", method=method, data=data, headers=headers)
                tried += 1
                where = f"{method} {path}{' (htmx)' if htmx else ''} [{rule.endpoint}]"
                if r.status_code != 404:
                    problems.append(f"{where}: answered {r.status_code}, expected 404: {r.data[:160]!r}")
                found = leaks(r.data, secrets)
                if found:
                    problems.append(f"{where}: body mentions globex: {found[:5]}")
                if before is not None:
                    after = globex_snapshot(owner_engine, world)
                    changed = [t for t in before if before[t] != after[t]]
                    if changed:
                        problems.append(f"{where}: changed globex rows in {changed}")
    assert tried > 0
    assert not problems, "\n".join(problems)


def test_acme_pages_never_mention_globex(app, world, matrix):
    """Every page without URL variables, as acme's owner and as the consultant
    (a member of both), full page and fragment: not a word of globex's data."""
    secrets = matrix["secrets"]
    problems = []
    for who in ("owner", "consultant"):
        client = sign_in(app, world.users[who], "acme")
        # The consultant legitimately sees globex's *name* in the org switcher.
        hidden = secrets - ({world.globex.name, world.globex.slug} if who == "consultant" else set())
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.arguments or "GET" not in rule.methods:
                continue
            for headers in ({}, {"HX-Request": "true"}):
                r = client.get(f"http://acme.tenantry.localhost{rule.rule}", headers=headers)
                found = leaks(r.data, hidden)
                if found:
                    problems.append(f"{who}: GET {rule.rule} {headers or ''}: body mentions globex: {found[:5]}")
    assert not problems, "\n".join(problems)


def test_acme_search_cannot_reach_globex_projects(app, world):
    client = sign_in(app, world.users["owner"], "acme")
    for q in ("Globex", "Secret", "%", "_"):
        r = client.get(f"http://acme.tenantry.localhost/projects/?q={q}&status=all")
        assert b"Globex Secret" not in r.data, q

"""The generated access matrix: every system role × every route that requires
a permission, called for real on the acme host.

Denied (403) exactly when the role lacks the permission per the catalogue;
otherwise allowed (neither 403 nor 404, and never a 500). GET routes get a
GET; POST (and other) routes get the method with a valid CSRF token and empty
data. Nothing here is hand-listed: the cases come from ``app.url_map`` and
``SYSTEM_ROLES``. URL arguments come from the world fixture; a route with a
URL variable not in ``URL_ARGS`` fails, so a new route must be added here.
"""

from __future__ import annotations

import functools
import os

import pytest

from app.permissions import ROLE_ORDER, SYSTEM_ROLES
from app.web.access import access_of
from tests.conftest import APEX, csrf_token, host, url


def _pending_invitation(w):
    from datetime import timedelta

    from app.extensions import db
    from app.members.models import Invitation
    from app.util import utcnow

    inv = Invitation(
        email="pending@example.test",
        role="viewer",
        token_hash="0" * 64,
        invited_by=w.users["owner"].id,
        expires_at=utcnow() + timedelta(days=7),
    )
    db.session.add(inv)
    db.session.commit()
    return inv.id


def _member_session(w):
    from app.auth.models import UserSession
    from app.extensions import db

    rec = UserSession(user_id=w.users["member"].id, ip="127.0.0.1", user_agent="matrix")
    db.session.add(rec)
    db.session.commit()
    from tests import factories as f

    f.reached(w.acme, rec.id, w.users["member"])  # an acme admin sees only the sessions that reached acme
    return rec.id


def _owner_passkey(w):
    """A passkey of acme's Owner (the account pages act on the signed-in person's own)."""
    from app.auth.models import WebAuthnCredential
    from app.extensions import db

    row = WebAuthnCredential(
        user_id=w.users["owner"].id,
        credential_id=b"matrix-" + os.urandom(8),
        public_key=b"cose",
        name="Key",
        transports=[],
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def _audit_event(w):
    from sqlalchemy import select

    from app import audit
    from app.audit.models import AuditEvent
    from app.extensions import db

    audit.record(
        "role.created", target=("role", str(w.acme_role.id), w.acme_role.name), after={"name": w.acme_role.name}
    )
    db.session.commit()
    return db.session.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)).scalar_one()


def _webhook_endpoint(w):
    """Acme's endpoint (one per test, whichever URL variable asks first), at a
    literal public address (no DNS, no loopback)."""
    from app.extensions import db
    from app.webhooks import services

    existing = services.list_endpoints()
    if existing:
        return existing[0].id
    endpoint, _ = services.create_endpoint(w.acme, "https://93.184.215.14/matrix", "", ["project.created"])
    db.session.commit()
    return endpoint.id


def _webhook_delivery(w):
    """A test delivery of acme's endpoint (the endpoint made above, or a new one)."""
    from app.extensions import db
    from app.webhooks import services

    endpoint = services.find_endpoint(_webhook_endpoint(w))
    delivery_id = services.send_test_event(endpoint)
    db.session.commit()
    return delivery_id


def _api_key(w):
    """An API key of acme's owner (one per test)."""
    from app.api import keys
    from app.extensions import db
    from app.members.memberships import get_membership

    existing = keys.list_keys()
    if existing:
        return existing[0].id
    key, _ = keys.create_key("matrix", ["members:view"], 30, get_membership(w.users["owner"].id))
    db.session.commit()
    return key.id


def _domain(w):
    """Acme's verified domain (one per test, whichever URL variable asks first)."""
    from sqlalchemy import select

    from app.domains.models import Domain
    from app.extensions import db
    from app.util import utcnow

    existing = db.session.execute(select(Domain.id)).scalar()
    if existing:
        return existing
    d = Domain(name="acme-matrix.com", token="0" * 32, status="verified", verified_at=utcnow())
    db.session.add(d)
    db.session.commit()
    return d.id


def _sso_connection(w):
    """Acme's SSO connection (a draft; one per test)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.sso.models import SsoConnection

    existing = db.session.execute(select(SsoConnection.id)).scalar()
    if existing:
        return existing
    conn = SsoConnection(protocol="oidc", provider="okta", name="Matrix IdP", config={"default_role": "member"})
    db.session.add(conn)
    db.session.commit()
    return conn.id


def _sso_setup_link(w):
    """A setup link of acme's (one per test)."""
    from datetime import timedelta

    from app.extensions import db
    from app.sso.models import SsoSetupLink
    from app.util import utcnow

    link = SsoSetupLink(token_hash="1" * 64, label="IT", expires_at=utcnow() + timedelta(hours=24))
    db.session.add(link)
    db.session.commit()
    return link.id


def _review(w):
    """An open acme access review whose reviewers are the Owner and the Admin (one per test)."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.extensions import db
    from app.members.memberships import get_membership
    from app.reviews import services
    from app.reviews.models import AccessReview

    existing = db.session.execute(select(AccessReview.id)).scalar()
    if existing:
        return existing
    plan = services.check_plan(
        "Matrix review",
        "all",
        [],
        [str(w.users["owner"].id), str(w.users["admin"].id)],
        services.today() + timedelta(days=7),
        "none",
    )
    review = services.start_review(plan, get_membership(w.users["owner"].id))
    db.session.commit()
    return review.id


def _org_export(w):
    """A ready export of acme (its archive a few bytes), valid for a day."""
    import uuid
    from datetime import timedelta

    from app.extensions import db
    from app.orgdata.models import OrgExport
    from app.util import utcnow

    e = OrgExport(
        id=uuid.uuid4(), status="ready", done=1, total=1, archive=b"PK", size=2, expires_at=utcnow() + timedelta(days=1)
    )
    db.session.add(e)
    db.session.commit()
    return e.id


def _audit_stream(w):
    """An acme audit stream (written directly), to a loopback port the SSRF
    guard refuses: a test event sent by a matrix is refused before any connection."""
    import uuid

    from sqlalchemy import select

    from app import crypto
    from app.extensions import db
    from app.streaming.models import AuditStream

    existing = db.session.execute(select(AuditStream.id)).scalar()
    if existing:
        return existing
    s = AuditStream(
        id=uuid.uuid4(),
        name="Matrix SIEM",
        kind="https",
        url="http://127.0.0.1:9/stream",
        secret_encrypted=crypto.encrypt("whsec_" + "A" * 43 + "="),
    )
    db.session.add(s)
    db.session.commit()
    return s.id


# URL variable name → its value in the acme world (real ids of acme rows),
# evaluated inside acme's tenant context.
URL_ARGS = {
    "project_id": lambda w: w.projects["acme"][0].id,
    "user_id": lambda w: w.users["member"].id,
    "role_key": lambda w: w.acme_role.id,
    "invitation_id": _pending_invitation,
    "session_id": _member_session,
    "passkey_id": _owner_passkey,
    "event_id": _audit_event,
    "endpoint_id": _webhook_endpoint,
    "delivery_id": _webhook_delivery,
    "domain_id": _domain,
    "org_id": lambda w: w.acme.id,  # the platform console's organization pages
    "key_id": _api_key,
    "key": lambda w: "activity",  # an analytics chart
    "connection_id": _sso_connection,
    "link_id": _sso_setup_link,
    "kind": lambda w: "access",  # a compliance report
    "review_id": _review,
    "export_id": _org_export,
    "token_id": lambda w: _scim("token", w),
    "mapping_id": lambda w: _scim("mapping", w),
    "stream_id": _audit_stream,
}


def _scim(what, w):
    """Acme's SCIM token or group mapping (acme given the scim feature)."""
    from tests.scim.conftest import acme_mapping_id, acme_scim_token_id

    return acme_scim_token_id(w) if what == "token" else acme_mapping_id(w)


def _acme_logo(w):
    from tests.settings.images import set_logo

    set_logo(w)


def _saml_connection(w):
    """Acme's connection made a saved SAML one (our key and certificate), whose SP metadata exists."""
    from sqlalchemy import select

    from app import crypto
    from app.extensions import db
    from app.scoping import tenant_context
    from app.sso.models import SsoConnection
    from app.sso.saml_protocol import generate_keypair

    with tenant_context(w.acme.id):
        conn = db.session.execute(select(SsoConnection)).scalar_one()
        key, cert = generate_keypair("matrix")
        conn.protocol, conn.config, conn.secret_encrypted = (
            "saml",
            {**conn.config, "sp_cert": cert},
            crypto.encrypt(key),
        )
        db.session.commit()


# Routes that answer 404 until a row exists, or exists in the right shape
# (acme's logo; a SAML connection's metadata).
def _scim_entitled(w):
    from tests.scim.conftest import entitle_scim

    entitle_scim(w.acme.id)


def _mapping_for_sso(w):
    """Acme's mapping (made by ``mapping_id``) made one for SSO and SCIM, so the SSO portal lists it."""
    from sqlalchemy import update

    from app.extensions import db
    from app.rbac.group_roles import GroupRoleMapping
    from app.scoping import tenant_context

    with tenant_context(w.acme.id):
        db.session.execute(update(GroupRoleMapping).values(source="any"))
        db.session.commit()


ROUTE_SETUP = {
    "settings.logo": _acme_logo,
    "saml.download_metadata": _saml_connection,
    # The SCIM settings need the plan feature (acme is on Pro): an override, as the console gives.
    "scim_settings.index": _scim_entitled,
    "scim_settings.create_token": _scim_entitled,
    "scim_settings.create_mapping": _scim_entitled,
    "sso.update_mapping": _mapping_for_sso,
    "sso.delete_mapping": _mapping_for_sso,
}

# Routes open to every member for their own rows, and to holders of a
# permission for anyone's: the matrix's row (``_api_key``) is the Owner's,
# so only the permission lets a role in.
OWN_ROWS_OR = {"apikeys.revoke": "apikeys:manage", "apikeys.rotate": "apikeys:manage"}

METHODS_SKIPPED = {"HEAD", "OPTIONS"}


@functools.lru_cache(maxsize=1)
def _route_table() -> tuple:
    """(endpoint, rule, method, permissions, mode) for every permission route.

    Built from an app created at collection time: building the url map needs
    no database (the engine connects lazily and never does here).
    """
    from app import create_app

    app = create_app(
        {
            "DATABASE_URL": "postgresql://collect-only@127.0.0.1:9/none",
            "SECRET_KEY": "collection-only",
            "TESTING": True,
            "TENANTRY_SERVER_NAME": APEX,
        }
    )
    rows = []
    for rule in app.url_map.iter_rules():
        access = access_of(app.view_functions[rule.endpoint]) if rule.endpoint != "static" else None
        if not access or access["kind"] != "permission":
            continue
        for method in sorted(rule.methods - METHODS_SKIPPED):
            rows.append((rule.endpoint, rule.rule, method, tuple(access["permissions"]), access["mode"]))
    return tuple(sorted(rows))


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        routes = _route_table()
        metafunc.parametrize("route", routes, ids=[f"{m}:{e}" for e, _, m, _, _ in routes])
    if "system_role" in metafunc.fixturenames:
        metafunc.parametrize("system_role", ROLE_ORDER)


def _entitle(app, endpoint: str, world) -> None:
    """A route behind a plan feature acme's plan lacks (``requires_feature``)
    is tested on a plan that has it: this matrix is about permissions
    (tests/rbac/test_requires_feature.py covers the plans)."""
    from app.extensions import db
    from app.scoping import all_organizations
    from app.tenancy import entitlements

    feature = getattr(app.view_functions[endpoint], "required_feature", None)
    if feature and not entitlements.entitled(world.acme, feature):
        with all_organizations(reason="test: a plan with the route's feature"):
            world.acme.plan_key = "enterprise"
            db.session.commit()


def expected_allowed(role_key: str, permissions: tuple, mode: str) -> bool:
    held = SYSTEM_ROLES[role_key].permissions
    return all(p in held for p in permissions) if mode == "all" else any(p in held for p in permissions)


def build_path(app, endpoint: str, rule: str, world) -> str:
    from app.scoping import tenant_context

    values = {}
    for arg in sorted(next(r for r in app.url_map.iter_rules(endpoint) if r.rule == rule).arguments):
        if arg not in URL_ARGS:
            pytest.fail(f"{endpoint} ({rule}) has URL variable <{arg}>: add it to URL_ARGS in {__file__}")
        with tenant_context(world.acme.id):
            values[arg] = URL_ARGS[arg](world)
    adapter = app.url_map.bind(host("acme"))
    return adapter.build(endpoint, values, method=None)


def test_matrix_covers_the_roles_area():
    endpoints = {e for e, *_ in _route_table()}
    assert {
        "rbac.index",
        "rbac.show",
        "rbac.edit",
        "rbac.update",
        "rbac.assign",
        "rbac.transfer",
        "rbac.member_permissions",
    } <= endpoints


def test_route_is_allowed_exactly_for_roles_holding_its_permission(app, roles_world, login, system_role, route):
    endpoint, rule, method, permissions, mode = route
    assert endpoint in app.view_functions, f"{endpoint} vanished between collection and run"
    path = build_path(app, endpoint, rule, roles_world)
    if endpoint in ROUTE_SETUP:
        ROUTE_SETUP[endpoint](roles_world)
    _entitle(app, endpoint, roles_world)
    c = login(roles_world.users[system_role], "acme")
    if method == "GET":
        r = c.get(url("acme", path))
    else:
        token = csrf_token(c, "acme")
        r = c.open(url("acme", path), method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token})
    allowed = expected_allowed(system_role, permissions, mode)
    if endpoint in OWN_ROWS_OR and system_role != "owner":
        allowed = OWN_ROWS_OR[endpoint] in SYSTEM_ROLES[system_role].permissions
    what = f"{system_role} {method} {path} (needs {mode} of {permissions})"
    if allowed:
        assert r.status_code not in (403, 404), f"{what} should be allowed, got {r.status_code}"
        assert r.status_code < 500, f"{what} crashed: {r.status_code}"
    else:
        assert r.status_code == 403, f"{what} should be denied, got {r.status_code}"

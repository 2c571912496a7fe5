"""SCIM on acme's host: tokens, plan, CRUD, filters, pages, ETags, the
error format, bad input (nothing changed), deprovisioning (sessions
revoked at once), groups re-mapping roles, and isolation from globex."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.auth.models import AuthHandoff, UserSession
from app.extensions import db
from app.rbac import group_roles
from app.scim import tokens
from app.scim.models import ScimToken, ScimUser
from app.scoping import tenant_context
from app.tenancy.models import Membership
from app.util import utcnow
from tests.conftest import sign_in, url
from tests.scim.conftest import ERROR_SCHEMA, USER_SCHEMA, ScimClient, make_token, membership_of, set_plan


def _error(r, status: int, scim_type: str | None = None):
    assert r.status_code == status, r.data[:400]
    assert r.mimetype == "application/scim+json"
    body = r.json
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == str(status)
    if scim_type:
        assert body.get("scimType") == scim_type, body
    return body


def _counts(org):
    with tenant_context(org.id):
        return (
            db.session.execute(select(func.count()).select_from(Membership)).scalar_one(),
            db.session.execute(select(func.count()).select_from(ScimUser)).scalar_one(),
        )


def _events(org, action):
    with tenant_context(org.id):
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


# --------------------------------------------------------------------------- authentication and plan
def test_no_token_is_401_with_a_scim_error_and_a_challenge(scim):
    r = scim("GET", "/Users", token=None)
    _error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("bad", ["scim_0123456789abcdef_" + "A" * 40, "not-a-token", "tnt_xyz"])
def test_invalid_token_is_401(scim, bad):
    _error(scim("GET", "/Users", token=bad), 401)


def test_revoked_token_is_401_at_once(scim, scim_world):
    assert scim("GET", "/Users").status_code == 200
    with tenant_context(scim_world.acme.id):
        tok = db.session.execute(select(ScimToken)).unique().scalar_one()
        tokens.revoke_token(tok)
        db.session.commit()
    _error(scim("GET", "/Users"), 401)


def test_another_organizations_token_is_401_here(app, scim_world, owner_engine):
    set_plan(owner_engine, scim_world.globex, "enterprise")
    globex_token = make_token(scim_world.globex, scim_world.users["globex_owner"])
    _error(ScimClient(app, "acme", globex_token)("GET", "/Users"), 401)
    assert ScimClient(app, "globex", globex_token)("GET", "/Users").status_code == 200


def test_unknown_organization_host_is_401_like_a_bad_token(app, scim_world):
    _error(ScimClient(app, "no-such-org", scim_world.scim_token)("GET", "/Users"), 401)


def test_plan_without_scim_is_403_with_a_scim_error(scim, scim_world, owner_engine):
    set_plan(owner_engine, scim_world.acme, "pro")
    body = _error(scim("GET", "/Users"), 403)
    assert "plan" in body["detail"]


def test_service_provider_config_needs_no_token(scim):
    r = scim("GET", "/ServiceProviderConfig", token=None)
    assert r.status_code == 200 and r.json["patch"]["supported"] is True and r.json["etag"]["supported"] is True


def test_discovery_endpoints(scim):
    types = scim("GET", "/ResourceTypes").json
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    schemas = scim("GET", "/Schemas").json
    assert USER_SCHEMA in {s["id"] for s in schemas["Resources"]}


# --------------------------------------------------------------------------- users
def test_create_user_adds_a_member_with_the_default_role_from_scim_audited_as_the_token(scim, scim_world):
    r = scim.create_user(
        "alice", "alice@example.com", externalId="okta-1", name={"givenName": "Alice", "familyName": "Able"}
    )
    assert r.status_code == 201, r.data
    assert r.headers["ETag"] == r.json["meta"]["version"]
    m = membership_of(scim_world.acme, r.json["id"])
    assert (m.role, m.role_source, m.status, m.scim_external_id) == ("member", "scim", "active", "okta-1")
    assert m.user.email == "alice@example.com"
    (ev,) = _events(scim_world.acme, "scim.user_created")
    assert ev.actor_type == "scim" and "Okta" in ev.actor_label


def test_create_user_adopts_an_existing_member_and_keeps_their_role(scim, scim_world):
    manager = scim_world.users["manager"]
    r = scim.create_user(manager.email)
    assert r.status_code == 201 and r.json["id"] == str(manager.id)
    m = membership_of(scim_world.acme, manager.id)
    assert (m.role, m.role_source) == ("manager", "manual")


def test_read_replace_and_delete(scim, scim_world):
    uid = scim.create_user("bob", "bob@example.com").json["id"]
    got = scim("GET", f"/Users/{uid}")
    assert got.status_code == 200 and got.json["userName"] == "bob"
    put = scim(
        "PUT",
        f"/Users/{uid}",
        {"schemas": [USER_SCHEMA], "userName": "bob", "displayName": "Bobby", "emails": [{"value": "bob@example.com"}]},
        headers={"If-Match": got.headers["ETag"]},
    )
    assert put.status_code == 200 and put.json["displayName"] == "Bobby"
    assert put.json["meta"]["version"] != got.json["meta"]["version"]
    assert scim("DELETE", f"/Users/{uid}").status_code == 204
    _error(scim("GET", f"/Users/{uid}"), 404)
    assert membership_of(scim_world.acme, uid).status == "deactivated"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('userName eq "ALICE"', {"alice"}),
        ('externalId eq "ext-bob"', {"bob"}),
        ('emails.value eq "Bob@Example.com"', {"bob"}),
        ('userName sw "a"', {"alice"}),
        ('userName eq "nobody"', set()),
    ],
)
def test_user_filters(scim, query, expected):
    scim.create_user("alice", "alice@example.com", externalId="ext-alice")
    scim.create_user("bob", "bob@example.com", externalId="ext-bob")
    r = (
        scim("GET", "/Users", headers={}, raw=None)
        if False
        else scim.client.get(
            url("acme", "/scim/v2/Users"),
            query_string={"filter": query},
            headers={"Authorization": f"Bearer {scim.token}"},
        )
    )
    assert r.status_code == 200, r.data
    assert {u["userName"] for u in r.json["Resources"]} == expected
    assert r.json["totalResults"] == len(expected)


def test_pagination_with_start_index_and_count(scim):
    for i in range(5):
        scim.create_user(f"user{i}", f"user{i}@example.com")
    first = scim("GET", "/Users?startIndex=1&count=2").json
    third = scim("GET", "/Users?startIndex=5&count=2").json
    assert first["totalResults"] == 5 and first["itemsPerPage"] == 2 and len(first["Resources"]) == 2
    assert third["startIndex"] == 5 and len(third["Resources"]) == 1
    names = [u["userName"] for u in scim("GET", "/Users?startIndex=1&count=5").json["Resources"]]
    assert sorted(names) == [f"user{i}" for i in range(5)]


def test_stale_if_match_is_412_and_changes_nothing(scim):
    r = scim.create_user("carol", "carol@example.com")
    uid, etag = r.json["id"], r.headers["ETag"]
    assert scim.patch(f"/Users/{uid}", {"op": "replace", "path": "displayName", "value": "C"}).status_code in (200, 204)
    stale = scim.patch(
        f"/Users/{uid}", {"op": "replace", "path": "displayName", "value": "Stale"}, headers={"If-Match": etag}
    )
    _error(stale, 412)
    assert scim("GET", f"/Users/{uid}").json["displayName"] == "C"


# --------------------------------------------------------------------------- bad input: a SCIM error, nothing changed
BAD_BODIES = [
    ("malformed JSON", b'{"schemas": [', 400, "invalidSyntax"),
    ("unknown schema", b'{"schemas": ["urn:example:nope"], "userName": "x"}', 400, None),
    (
        "unknown attribute",
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "x", "shoeSize": 44}',
        400,
        None,
    ),
    ("userName of the wrong type", b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": 42}', 400, None),
    (
        "active of the wrong type",
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "x", "active": "yes"}',
        400,
        "invalidValue",
    ),
    (
        "emails of the wrong type",
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "x", "emails": "x@y.com"}',
        400,
        None,
    ),
    ("a NUL character", b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "x\\u0000"}', 400, "invalidValue"),
    ("not an object", b"[1, 2]", 400, None),
]


@pytest.mark.parametrize(("label", "raw", "status", "scim_type"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_user_bodies_are_scim_errors_and_change_nothing(scim, scim_world, label, raw, status, scim_type):
    before = _counts(scim_world.acme)
    _error(scim("POST", "/Users", raw=raw), status, scim_type)
    assert _counts(scim_world.acme) == before
    refused = _events(scim_world.acme, "scim.request_refused")
    assert refused and refused[-1].actor_type == "scim"


@pytest.mark.parametrize("bad", ["userName eq", 'userName zz "x"', '(userName eq "x"', "userName eq x y"])
def test_bad_filter_is_invalid_filter(scim, bad):
    r = scim.client.get(
        url("acme", "/scim/v2/Users"), query_string={"filter": bad}, headers={"Authorization": f"Bearer {scim.token}"}
    )
    _error(r, 400, "invalidFilter")


def test_duplicate_user_name_is_409_uniqueness_and_changes_nothing(scim, scim_world):
    scim.create_user("dana", "dana@example.com")
    before = _counts(scim_world.acme)
    _error(scim.create_user("DANA", "dana2@example.com"), 409, "uniqueness")
    assert _counts(scim_world.acme) == before


def test_bad_patch_path_is_a_scim_error_and_changes_nothing(scim):
    uid = scim.create_user("erin", "erin@example.com", displayName="Erin").json["id"]
    _error(scim.patch(f"/Users/{uid}", {"op": "replace", "path": "name[", "value": "x"}), 400)
    _error(scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": "maybe"}), 400, "invalidValue")
    assert scim("GET", f"/Users/{uid}").json["displayName"] == "Erin"


def test_unknown_ids_and_paths_are_404(scim):
    _error(scim("GET", "/Users/not-an-id"), 404)
    _error(scim("GET", "/Users/7b0c5f0e-2f4a-4c1e-9a55-3d8e6b1f0a42"), 404)
    _error(scim("GET", "/Widgets"), 404)


# --------------------------------------------------------------------------- deprovisioning
def _signed_in_on_acme(app, world, user):
    """A browser of ``user`` signed in on acme through a hand-off, as after a real sign-in."""
    client = sign_in(app, user, "acme")
    db.session.add(
        AuthHandoff(
            session_id=client.user_session_id,
            host="acme.tenantry.localhost",
            nonce_hash="0" * 64,
            expires_at=utcnow(),
            used_at=utcnow(),
        )
    )
    db.session.commit()
    assert client.get(url("acme", "/projects/")).status_code == 200
    return client


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_deprovisioning_deactivates_and_signs_the_member_out_at_once(app, scim, scim_world, how):
    member = scim_world.users["member"]
    r = scim.create_user(member.email)
    uid = r.json["id"]
    browser = _signed_in_on_acme(app, scim_world, member)
    if how == "patch":
        resp = scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": False})
    elif how == "put":
        resp = scim("PUT", f"/Users/{uid}", {"schemas": [USER_SCHEMA], "userName": member.email, "active": False})
    else:
        resp = scim("DELETE", f"/Users/{uid}")
    assert resp.status_code in (200, 204), resp.data
    assert membership_of(scim_world.acme, member.id).status == "deactivated"
    db.session.expire_all()
    assert db.session.get(UserSession, browser.user_session_id).revoked_at is not None
    after = browser.get(url("acme", "/projects/"))
    assert after.status_code in (302, 303, 401, 404)
    assert b"Acme Project" not in after.data
    actions = {
        e.action: e
        for e in _events(scim_world.acme, "member.deactivated") + _events(scim_world.acme, "auth.session_revoked")
    }
    assert actions["member.deactivated"].actor_type == "scim" and actions["auth.session_revoked"].actor_type == "scim"


def test_reactivating_through_scim(scim, scim_world):
    uid = scim.create_user("fay", "fay@example.com", active=False).json["id"]
    assert membership_of(scim_world.acme, uid).status == "deactivated"
    assert scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": True}).status_code in (200, 204)
    assert membership_of(scim_world.acme, uid).status == "active"


def test_entra_style_string_false_deprovisions(scim, scim_world):
    uid = scim.create_user("gil", "gil@example.com").json["id"]
    assert scim.patch(f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "False"}).status_code in (200, 204)
    assert membership_of(scim_world.acme, uid).status == "deactivated"


def test_the_last_owner_cannot_be_deprovisioned(scim, scim_world):
    owner = scim_world.users["owner"]
    uid = scim.create_user(owner.email).json["id"]
    _error(scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": False}), 403)
    assert membership_of(scim_world.acme, owner.id).status == "active"


# --------------------------------------------------------------------------- groups and roles
def _map(world, group, role):
    with tenant_context(world.acme.id):
        actor = (
            db.session.execute(select(Membership).where(Membership.user_id == world.users["owner"].id))
            .unique()
            .scalar_one()
        )
        group_roles.add_mapping("scim", group, role, actor)
        db.session.commit()


def test_group_membership_maps_roles_and_leaving_takes_them_away(scim, scim_world):
    _map(scim_world, "Engineering Leads", "manager")
    uid = scim.create_user("hal", "hal@example.com").json["id"]
    gid = scim.create_group("Engineering Leads", [uid]).json["id"]
    m = membership_of(scim_world.acme, uid)
    assert (m.role, m.role_source) == ("manager", "scim")
    r = scim.patch(f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{uid}"]'})
    assert r.status_code in (200, 204), r.data
    assert membership_of(scim_world.acme, uid).role == "member"
    changed = [e for e in _events(scim_world.acme, "member.role_changed") if e.actor_type == "scim"]
    assert len(changed) == 2


def test_group_filter_by_display_name(scim):
    scim.create_group("Admins")
    scim.create_group("Sales")
    r = scim.client.get(
        url("acme", "/scim/v2/Groups"),
        query_string={"filter": 'displayName eq "admins"'},
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    assert [g["displayName"] for g in r.json["Resources"]] == ["Admins"]


def test_manual_change_of_a_scim_member_holds_until_their_groups_change(app, scim, scim_world, login):
    _map(scim_world, "Leads", "manager")
    _map(scim_world, "Staff", "viewer")
    uid = scim.create_user("ivy", "ivy@example.com").json["id"]
    gid = scim.create_group("Leads", [uid]).json["id"]
    with tenant_context(scim_world.acme.id):
        from app.rbac import services as rbac

        owner = (
            db.session.execute(select(Membership).where(Membership.user_id == scim_world.users["owner"].id))
            .unique()
            .scalar_one()
        )
        rbac.change_role(membership_of(scim_world.acme, uid), "viewer", owner)
        db.session.commit()
    m = membership_of(scim_world.acme, uid)
    assert (m.role, m.role_source) == ("viewer", "manual")
    # Another group's change for someone else leaves the manual role alone.
    other = scim.create_user("jay", "jay@example.com").json["id"]
    scim.create_group("Staff", [other])
    assert membership_of(scim_world.acme, uid).role == "viewer"
    # Ivy's own groups change: the mapping applies again.
    scim.patch(f"/Groups/{gid}", {"op": "replace", "path": "displayName", "value": "Leads"})
    scim.create_group("Staff 2", [uid])
    m = membership_of(scim_world.acme, uid)
    assert (m.role, m.role_source) == ("manager", "scim")


def test_group_member_must_be_a_provisioned_user_here(scim, scim_world):
    _error(scim.create_group("Bad", [scim_world.users["globex_owner"].id]), 400, "invalidValue")
    _error(scim.create_group("Bad", ["not-a-uuid"]), 400, "invalidValue")


# --------------------------------------------------------------------------- isolation
def test_globex_users_and_groups_do_not_exist_on_acme(app, scim, scim_world, owner_engine):
    set_plan(owner_engine, scim_world.globex, "enterprise")
    globex = ScimClient(app, "globex", make_token(scim_world.globex, scim_world.users["globex_owner"]))
    guid = globex.create_user("gx", "gx@example.com").json["id"]
    ggid = globex.create_group("Globex group", [guid]).json["id"]
    _error(scim("GET", f"/Users/{guid}"), 404)
    _error(scim("GET", f"/Groups/{ggid}"), 404)
    _error(scim("DELETE", f"/Users/{guid}"), 404)
    _error(scim.patch(f"/Groups/{ggid}", {"op": "replace", "path": "displayName", "value": "x"}), 404)
    assert scim("GET", "/Users").json["totalResults"] == 0
    assert globex("GET", f"/Users/{guid}").status_code == 200
    with owner_engine.connect() as c:
        assert (
            c.execute(text("SELECT display_name FROM scim_groups WHERE id = :g"), {"g": ggid}).scalar_one()
            == "Globex group"
        )

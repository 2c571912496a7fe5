"""The API keys pages: who sees and manages keys, the key shown once, revoke."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.api.models import ApiKey
from app.extensions import db
from app.scoping import tenant_context
from tests.conftest import csrf_token, url


def _create(client, data):
    payload = {"csrf_token": csrf_token(client, "acme"), "submit_key": "k-" + data.get("name", ""), **data}
    return client.post(url("acme", "/api-keys/"), data=payload)


def test_admin_creates_a_key_shown_once(world, login, api):
    admin = login(world.users["admin"], "acme")
    r = _create(admin, {"name": "CI", "scopes": ["members:view", "projects:view"], "expires_in_days": "30"})
    assert r.status_code == 201
    full = re.search(r'value="(tnt_[^"]+)"', r.get_data(as_text=True)).group(1)
    assert api.get("acme", "/members", full).status_code == 200
    listing = admin.get(url("acme", "/api-keys/")).get_data(as_text=True)
    with tenant_context(world.acme.id):
        key = db.session.execute(select(ApiKey)).scalar_one()
        assert key.prefix in listing and full not in listing and "projects:view" in listing


def test_bad_input_is_422_beside_the_field_and_saves_nothing(world, login):
    admin = login(world.users["admin"], "acme")
    r = _create(admin, {"name": "", "scopes": ["members:view"], "expires_in_days": "30"})
    assert r.status_code == 422 and "Give the key a name" in r.get_data(as_text=True)
    r = _create(admin, {"name": "x", "scopes": ["org:delete"], "expires_in_days": "30"})
    assert r.status_code == 422 and "org:delete" in r.get_data(as_text=True)
    with tenant_context(world.acme.id):
        assert db.session.execute(select(ApiKey)).first() is None


def test_members_create_and_revoke_keys_of_their_own_while_the_policy_allows(world, login, api):
    """By default (policy on) a Member creates a key within their own
    permissions, sees only their own keys, and may revoke them, never another's."""
    admin = login(world.users["admin"], "acme")
    _create(admin, {"name": "Admin's", "scopes": ["members:view"], "expires_in_days": "30"})
    member = login(world.users["member"], "acme")
    r = _create(member, {"name": "Mine", "scopes": ["projects:view"], "expires_in_days": "30"})
    assert r.status_code == 201
    full = re.search(r'value="(tnt_[^"]+)"', r.get_data(as_text=True)).group(1)
    assert api.get("acme", "/projects", full).status_code == 200
    listing = member.get(url("acme", "/api-keys/")).get_data(as_text=True)
    assert "Mine" in listing and "Admin&#39;s" not in listing and "Admin's" not in listing
    r = _create(member, {"name": "Too much", "scopes": ["members:remove"], "expires_in_days": "30"})
    assert r.status_code == 422 and "members:remove" in r.get_data(as_text=True)
    with tenant_context(world.acme.id):
        ids = dict(db.session.execute(select(ApiKey.name, ApiKey.id)).all())
    token, theirs = csrf_token(member, "acme"), ids["Admin's"]
    assert member.post(url("acme", f"/api-keys/{theirs}/revoke"), data={"csrf_token": token}).status_code == 403
    assert member.get(url("acme", f"/api-keys/{theirs}/rotate")).status_code == 403
    r = member.post(url("acme", f"/api-keys/{ids['Mine']}/revoke"), data={"csrf_token": token})
    assert r.status_code == 302
    assert api.get("acme", "/projects", full).status_code == 401
    with tenant_context(world.acme.id):
        revoked = dict(db.session.execute(select(ApiKey.name, ApiKey.revoked_at)).all())
    assert revoked["Mine"] is not None and revoked["Admin's"] is None


def _set_policy(owner_engine, **fields):
    import json

    with owner_engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE organizations SET settings = jsonb_set(settings, '{security}', %s::jsonb) WHERE slug = 'acme'",
            (json.dumps(fields),),
        )


def test_keys_never_expire_only_while_the_policy_allows(world, login, api, owner_engine):
    admin = login(world.users["admin"], "acme")
    form = admin.get(url("acme", "/api-keys/new")).get_data(as_text=True)
    assert 'value="never"' not in form
    r = _create(admin, {"name": "Forever", "scopes": ["members:view"], "expires_in_days": "never"})
    assert r.status_code == 422 and "requires keys to expire" in r.get_data(as_text=True)
    with tenant_context(world.acme.id):
        assert db.session.execute(select(ApiKey)).first() is None

    _set_policy(owner_engine, api_keys_may_never_expire=True)
    form = admin.get(url("acme", "/api-keys/new")).get_data(as_text=True)
    assert 'value="never"' in form
    r = _create(admin, {"name": "Forever", "scopes": ["members:view"], "expires_in_days": "never"})
    assert r.status_code == 201
    full = re.search(r'value="(tnt_[^"]+)"', r.get_data(as_text=True)).group(1)
    assert api.get("acme", "/members", full).status_code == 200
    with tenant_context(world.acme.id):
        key = db.session.execute(select(ApiKey)).scalar_one()
        assert key.expires_at is None
    assert "Never" in admin.get(url("acme", "/api-keys/")).get_data(as_text=True)

    # Rotated while allowed: the successor has no expiry either; once the
    # policy says no, a rotation gets the longest expiry offered.
    token = csrf_token(admin, "acme")
    r = admin.post(url("acme", f"/api-keys/{key.id}/rotate"), data={"csrf_token": token, "overlap_hours": "0"})
    assert r.status_code == 201
    _set_policy(owner_engine, api_keys_may_never_expire=False)
    with tenant_context(world.acme.id):
        successor = db.session.execute(
            select(ApiKey).where(ApiKey.revoked_at.is_(None), ApiKey.rotated_to.is_(None))
        ).scalar_one()
        assert successor.expires_at is None
    r = admin.post(url("acme", f"/api-keys/{successor.id}/rotate"), data={"csrf_token": token, "overlap_hours": "0"})
    assert r.status_code == 201
    with tenant_context(world.acme.id):
        third = db.session.execute(select(ApiKey).where(ApiKey.rotated_to.is_(None))).scalars().all()
        third = [k for k in third if k.id not in (key.id, successor.id)]
        assert len(third) == 1 and third[0].expires_at is not None


def test_members_cannot_create_keys_when_the_policy_says_no(world, login, owner_engine):
    with owner_engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE organizations SET settings = jsonb_set(settings, '{security}', "
            "'{\"members_may_create_api_keys\": false}'::jsonb) WHERE slug = 'acme'"
        )
    member = login(world.users["member"], "acme")
    assert member.get(url("acme", "/api-keys/")).status_code == 403
    r = member.get(url("acme", "/api-keys/new"))
    assert r.status_code == 403 and "Create key" not in r.get_data(as_text=True)
    assert _create(member, {"name": "x", "scopes": ["projects:view"], "expires_in_days": "30"}).status_code == 403
    admin = login(world.users["admin"], "acme")
    assert _create(admin, {"name": "Admin's", "scopes": ["members:view"], "expires_in_days": "30"}).status_code == 201
    with tenant_context(world.acme.id):
        assert [k.name for k in db.session.execute(select(ApiKey)).scalars()] == ["Admin's"]


def test_revoking_stops_the_key(world, login, api, make_key):
    kid, full = make_key(world.acme, world.users["admin"], ["members:view"])
    admin = login(world.users["owner"], "acme")
    r = admin.post(url("acme", f"/api-keys/{kid}/revoke"), data={"csrf_token": csrf_token(admin, "acme")})
    assert r.status_code == 302
    assert api.get("acme", "/members", full).status_code == 401


def test_another_organizations_key_is_404(world, login, make_key):
    kid, _ = make_key(world.globex, world.users["globex_owner"], ["members:view"])
    admin = login(world.users["owner"], "acme")
    r = admin.post(url("acme", f"/api-keys/{kid}/revoke"), data={"csrf_token": csrf_token(admin, "acme")})
    assert r.status_code == 404
    assert admin.get(url("acme", f"/api-keys/{kid}/rotate")).status_code == 404


def test_rotate_shows_the_successor_once(world, login, api, make_key):
    kid, old = make_key(world.acme, world.users["admin"], ["members:view"])
    admin = login(world.users["admin"], "acme")
    r = admin.post(
        url("acme", f"/api-keys/{kid}/rotate"), data={"csrf_token": csrf_token(admin, "acme"), "overlap_hours": "0"}
    )
    assert r.status_code == 201
    new = re.search(r'value="(tnt_[^"]+)"', r.get_data(as_text=True)).group(1)
    assert api.get("acme", "/members", new).status_code == 200
    assert api.get("acme", "/members", old).status_code == 401


def test_docs_and_openapi_are_served_without_a_key(world, client):
    r = client.get(url("acme", "/api/v1/openapi.json"))
    assert r.status_code == 200 and r.get_json()["openapi"] == "3.1.0"
    assert "/api/v1/members" in r.get_json()["paths"]
    r = client.get(url("acme", "/api/v1/docs"))
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "List members" in page
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    # The vendored viewer, from our own origin, started by a static script:
    # no inline script or style, no other origin.
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js?v=" in page
    assert 'src="/static/js/api-docs.js"' in page
    assert 'data-spec-url="/api/v1/openapi.json"' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>(?!\s*</script>)", page)
    assert "<style" not in page and " style=" not in page and "https://" not in page.split("<body", 1)[0]


def test_a_plan_without_the_api_says_so_on_the_page_and_in_the_api(world, login, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    with owner_engine.begin() as c:
        c.exec_driver_sql("UPDATE plans SET feature_api = false WHERE key = 'pro'")
    try:
        r = login(world.users["owner"], "acme").get(url("acme", "/api-keys/"))
        assert r.status_code == 403 and "does not include the API" in r.get_data(as_text=True)
        assert "New API key" not in r.get_data(as_text=True)
        r = api.get("acme", "/members", key)
        assert r.status_code == 403 and r.get_json()["type"].endswith("not-entitled")
    finally:
        with owner_engine.begin() as c:
            c.exec_driver_sql("UPDATE plans SET feature_api = true WHERE key = 'pro'")

"""Authentication: a key works on its own organization's host only; no session
ever authenticates the API; revoked, expired and orphaned keys are 401."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from app.api.models import ApiKey
from app.extensions import db
from app.scoping import tenant_context
from app.util import utcnow
from tests.api.conftest import problem


def test_key_lists_members_on_its_own_host(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    r = api.get("acme", "/members", key)
    assert r.status_code == 200, r.get_data(as_text=True)
    emails = {m["email"] for m in r.get_json()["data"]}
    assert "owner@acme.test" in emails and "owner@globex.test" not in emails
    assert r.headers["RateLimit-Limit"] and r.headers["RateLimit-Remaining"]


def test_key_is_401_on_another_organizations_host_and_the_apex(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    problem(api.get("globex", "/members", key), 401, "unauthenticated")
    problem(api.get(None, "/members", key), 401, "unauthenticated")
    problem(api.get("no-such-org", "/members", key), 401, "unauthenticated")


def test_no_key_or_a_malformed_key_is_401_with_a_challenge(world, api, make_key):
    r = api.get("acme", "/members")
    problem(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    problem(api.get("acme", "/members", key[:-1] + ("x" if key[-1] != "x" else "y")), 401)
    problem(api.get("acme", "/members", "tnt_garbage"), 401)
    problem(api.get("acme", "/members", headers={"Authorization": "Basic " + key}), 401)


def test_a_browser_session_never_authenticates_the_api(world, api, login):
    client = login(world.users["owner"], "acme")
    r = client.get("http://acme.tenantry.localhost/api/v1/members")
    problem(r, 401, "unauthenticated")
    assert "Set-Cookie" not in r.headers


def test_revoked_key_is_401(world, api, make_key):
    kid, key = make_key(world.acme, world.users["admin"], ["members:view"])
    assert api.get("acme", "/members", key).status_code == 200
    with tenant_context(world.acme.id):
        db.session.execute(update(ApiKey).where(ApiKey.id == kid).values(revoked_at=utcnow()))
        db.session.commit()
    assert "revoked" in problem(api.get("acme", "/members", key), 401)["detail"]


def test_expired_key_is_401(world, api, make_key):
    kid, key = make_key(world.acme, world.users["admin"], ["members:view"])
    with tenant_context(world.acme.id):
        db.session.execute(update(ApiKey).where(ApiKey.id == kid).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert "expired" in problem(api.get("acme", "/members", key), 401)["detail"]


def test_missing_scope_is_403(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    body = problem(api.get("acme", "/projects", key), 403, "missing-scope")
    assert "projects:view" in body["detail"]


def test_demoted_creator_shrinks_the_key(world, api, make_key, login):
    """The key keeps only what its creator still holds: demoted to Viewer,
    the admin's key can still read members but no longer create projects."""
    _, key = make_key(world.acme, world.users["admin"], ["members:view", "projects:create"])
    owner_id = str(world.users["owner"].id)
    r = api.post("acme", "/projects", key, json={"name": "Before", "owner_id": owner_id})
    assert r.status_code == 201, r.get_data(as_text=True)
    from app.members.memberships import get_membership

    with tenant_context(world.acme.id):
        get_membership(world.users["admin"].id).role = "viewer"
        db.session.commit()
    assert api.get("acme", "/members", key).status_code == 200
    problem(api.post("acme", "/projects", key, json={"name": "After", "owner_id": owner_id}), 403, "missing-scope")


def test_deactivated_or_removed_creator_stops_the_key(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    from app.members.memberships import get_membership

    with tenant_context(world.acme.id):
        get_membership(world.users["admin"].id).status = "deactivated"
        db.session.commit()
    assert "no longer an active member" in problem(api.get("acme", "/members", key), 401)["detail"]


def test_requests_are_audited_as_the_api_key_and_its_creator(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ["projects:create"])
    r = api.post("acme", "/projects", key, json={"name": "Via API", "owner_id": str(world.users["owner"].id)})
    assert r.status_code == 201
    with owner_engine.connect() as c:
        row = c.exec_driver_sql(
            "SELECT actor_type, actor_label FROM audit_events WHERE action = 'project.created' ORDER BY id DESC LIMIT 1"
        ).one()
    assert row[0] == "api_key" and "test key" in row[1] and "admin@acme.test" in row[1]


def test_last_used_time_and_ip_are_recorded(world, api, make_key, app, monkeypatch):
    monkeypatch.setitem(app.config, "API_USAGE_FLUSH_SECONDS", 0)
    kid, key = make_key(world.acme, world.users["admin"], ["members:view"])
    api.get("acme", "/members", key)
    with tenant_context(world.acme.id):
        row = db.session.get(ApiKey, (world.acme.id, kid))
        db.session.refresh(row)
        assert row.last_used_at is not None and row.last_used_ip == "127.0.0.1"


def test_last_used_is_not_written_per_request(world, api, make_key, app, owner_engine):
    """With the default interval, ten calls write "last used" once."""
    kid, key = make_key(world.acme, world.users["admin"], ["members:view"])
    for _ in range(10):
        assert api.get("acme", "/members", key).status_code == 200
    with owner_engine.connect() as c:
        used = c.exec_driver_sql("SELECT requests FROM api_usage_daily WHERE api_key_id = %s", (kid,)).all()
    assert used == [(1,)]  # the first call wrote; the next nine wait for the minute


def test_the_ip_allowlist_holds_for_api_requests(world, api, make_key, owner_engine):
    """An address outside the organization's allowlist gets a 403 problem
    naming the policy, key or no key; inside it the key works as before."""
    from sqlalchemy import text

    _, key = make_key(world.acme, world.users["admin"], ["members:view"])

    def allow(ranges):
        with owner_engine.begin() as c:
            c.execute(
                text(
                    "UPDATE organizations SET settings = jsonb_set(settings, '{security}',"
                    " coalesce(settings->'security', '{}'::jsonb) || jsonb_build_object('ip_allowlist', CAST(:r AS jsonb)))"
                    " WHERE id = :o"
                ),
                {"r": json.dumps(ranges), "o": world.acme.id},
            )

    allow(["203.0.113.0/24"])  # the test client comes from 127.0.0.1
    body = problem(api.get("acme", "/members", key), 403)
    assert "IP allowlist" in body["detail"] and "127.0.0.1" in body["detail"]
    allow(["127.0.0.0/8"])
    assert api.get("acme", "/members", key).status_code == 200

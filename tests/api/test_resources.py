"""Members, roles, organization and projects through the API: the pages'
services and guardrails, cursors, ETags, Idempotency-Key, RFC 3339 UTC."""

from __future__ import annotations

import re

from app.members.memberships import get_membership
from app.scoping import tenant_context
from tests.api.conftest import problem
from tests.conftest import UNKNOWN_ID

ALL_MEMBERS = ["members:view", "members:update_role", "members:remove"]
ALL_PROJECTS = ["projects:view", "projects:create", "projects:update", "projects:delete"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_member_list_follows_next_links_to_the_end(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    seen, names, path, pages = [], [], "/members?limit=2", 0
    r = api.get("acme", path, key)
    while True:
        assert r.status_code == 200
        body = r.get_json()
        seen += [m["email"] for m in body["data"]]
        names += [m["name"] for m in body["data"]]
        pages += 1
        if not body["next"]:
            break
        assert r.headers["Link"].endswith('rel="next"')
        r = api.client.get(body["next"], headers={"Authorization": f"Bearer {key}"})
    assert pages == 3 and len(seen) == len(set(seen)) == 6  # five roles and the consultant
    assert names == sorted(names, key=str.lower)  # the pages' default order, by name


def test_member_list_filters_like_the_page(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    body = api.get("acme", "/members?role=viewer", key).get_json()
    assert [m["email"] for m in body["data"]] == ["viewer@acme.test"]
    body = api.get("acme", "/members?q=consultant", key).get_json()
    assert [m["email"] for m in body["data"]] == ["consultant@example.test"]
    assert all(RFC3339_UTC.match(m["joined_at"]) for m in body["data"])


def test_other_organizations_ids_are_404(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ALL_MEMBERS + ALL_PROJECTS)
    globex_member = str(world.users["globex_owner"].id)
    with tenant_context(world.globex.id):
        globex_project = str(world.projects["globex"][0].id)
    problem(api.get("acme", f"/members/{globex_member}", key), 404, "not-found")
    problem(api.get("acme", f"/projects/{globex_project}", key), 404, "not-found")
    problem(api.delete("acme", f"/projects/{globex_project}", key), 404)
    problem(api.get("acme", f"/projects/{UNKNOWN_ID}", key), 404)
    problem(api.get("acme", "/projects/not-a-uuid", key), 404)


def test_role_change_needs_if_match_and_refuses_a_stale_one(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ALL_MEMBERS)
    uid = str(world.users["member"].id)
    r = api.get("acme", f"/members/{uid}", key)
    etag = r.headers["ETag"]
    problem(api.patch("acme", f"/members/{uid}", key, json={"role": "manager"}), 428, "precondition-required")
    r = api.patch("acme", f"/members/{uid}", key, json={"role": "manager"}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.get_json()["role"] == "manager" and r.headers["ETag"] != etag
    problem(api.patch("acme", f"/members/{uid}", key, json={"role": "viewer"}, headers={"If-Match": etag}), 412)
    with tenant_context(world.acme.id):
        assert get_membership(uid).role == "manager"


def test_role_change_keeps_the_pages_guardrails(world, api, make_key):
    """An admin's key cannot make anyone an Owner (only Owners can), as on the page."""
    _, key = make_key(world.acme, world.users["admin"], ALL_MEMBERS)
    uid = str(world.users["member"].id)
    etag = api.get("acme", f"/members/{uid}", key).headers["ETag"]
    body = problem(
        api.patch("acme", f"/members/{uid}", key, json={"role": "owner"}, headers={"If-Match": etag}), 422, "refused"
    )
    assert "Owner" in body["detail"]
    body = problem(
        api.patch("acme", f"/members/{uid}", key, json={"role": "nonsense"}, headers={"If-Match": etag}), 422
    )
    with tenant_context(world.acme.id):
        assert get_membership(uid).role == "member"


def test_deactivate_and_remove_a_member(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ALL_MEMBERS)
    uid = str(world.users["viewer"].id)
    r = api.post("acme", f"/members/{uid}/deactivate", key)
    assert r.status_code == 200 and r.get_json()["status"] == "deactivated"
    assert api.post("acme", f"/members/{uid}/reactivate", key).get_json()["status"] == "active"
    assert api.delete("acme", f"/members/{uid}", key).status_code == 204
    problem(api.get("acme", f"/members/{uid}", key), 404)
    # Not yourself (the key's creator), as on the page.
    problem(api.delete("acme", f"/members/{world.users['admin'].id}", key), 422)


def test_roles_and_organization(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["roles:view", "org:view"])
    roles = api.get("acme", "/roles", key).get_json()["data"]
    assert [r["key"] for r in roles][:5] == ["owner", "admin", "manager", "member", "viewer"]
    org = api.get("acme", "/organization", key).get_json()
    assert org["slug"] == "acme" and RFC3339_UTC.match(org["created_at"])


def test_project_crud_with_etags(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ALL_PROJECTS)
    owner = str(world.users["owner"].id)
    r = api.post("acme", "/projects", key, json={"name": "Apollo", "owner_id": owner})
    assert r.status_code == 201 and r.headers["Location"].endswith(r.get_json()["id"])
    pid, etag = r.get_json()["id"], r.headers["ETag"]
    r = api.patch("acme", f"/projects/{pid}", key, json={"description": "To the moon"}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.get_json()["description"] == "To the moon" and r.get_json()["name"] == "Apollo"
    problem(api.patch("acme", f"/projects/{pid}", key, json={"name": "Lost"}, headers={"If-Match": etag}), 412)
    etag = r.headers["ETag"]
    r = api.patch("acme", f"/projects/{pid}", key, json={"status": "archived"}, headers={"If-Match": etag})
    assert r.get_json()["status"] == "archived"
    assert pid not in [p["id"] for p in api.get("acme", "/projects", key).get_json()["data"]]
    assert pid in [p["id"] for p in api.get("acme", "/projects?status=archived", key).get_json()["data"]]
    assert api.delete("acme", f"/projects/{pid}", key).status_code == 204
    problem(api.get("acme", f"/projects/{pid}", key), 404)
    with owner_engine.connect() as c:
        actions = [
            a for (a,) in c.exec_driver_sql("SELECT action FROM audit_events WHERE target_id = %s ORDER BY id", (pid,))
        ]
    assert actions == ["project.created", "project.updated", "project.archived", "project.deleted"]


def test_project_pages_walk_every_project_once(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ALL_PROJECTS)
    from tests import factories as f

    for i in range(5):
        f.make_project(world.acme, f"Extra {i}", owner=world.users["owner"])
    ids, link = [], "/projects?limit=3"
    r = api.get("acme", link, key)
    while True:
        body = r.get_json()
        ids += [p["id"] for p in body["data"]]
        if not body["next"]:
            break
        r = api.client.get(body["next"], headers={"Authorization": f"Bearer {key}"})
    assert len(ids) == len(set(ids)) == 8


def test_idempotency_key_replays_the_first_answer(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ALL_PROJECTS)
    body = {"name": "Once", "owner_id": str(world.users["owner"].id)}
    h = {"Idempotency-Key": "create-once-1"}
    first = api.post("acme", "/projects", key, json=body, headers=h)
    again = api.post("acme", "/projects", key, json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json() and again.headers["Idempotent-Replayed"] == "true"
    other = api.post("acme", "/projects", key, json={**body, "name": "Twice"}, headers=h)
    problem(other, 422, "idempotency-mismatch")
    with owner_engine.connect() as c:
        n = c.exec_driver_sql("SELECT count(*) FROM projects WHERE name IN ('Once', 'Twice')").scalar()
    assert n == 1


def test_refused_post_changes_nothing(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ALL_PROJECTS)
    body = problem(
        api.post("acme", "/projects", key, json={"name": "X", "owner_id": str(world.users["globex_owner"].id)}),
        422,
        "refused",
    )
    assert body["errors"][0]["pointer"] == "/owner_id"
    with owner_engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM projects WHERE name = 'X'").scalar() == 0

"""Invitations, audit events and webhooks through the API: the areas' own
services and rules, cursors, other organizations' ids are 404."""

from __future__ import annotations

import csv
import io
import json

from app.extensions import db
from app.scoping import tenant_context
from tests.api.conftest import problem


def test_invite_list_resend_and_revoke(world, api, make_key, mailbox):
    _, key = make_key(world.acme, world.users["admin"], ["members:view", "members:invite"])
    r = api.post("acme", "/invitations", key, json={"emails": ["new@acme.test", "owner@acme.test"], "role": "viewer"})
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert [i["email"] for i in body["invited"]] == ["new@acme.test"]
    assert body["skipped"][0]["email"] == "owner@acme.test" and "member" in body["skipped"][0]["reason"]
    assert mailbox.last("new@acme.test")
    inv_id = body["invited"][0]["id"]
    listed = api.get("acme", "/invitations", key).get_json()["data"]
    assert [i["id"] for i in listed] == [inv_id]
    assert api.post("acme", f"/invitations/{inv_id}/resend", key).status_code == 200
    assert api.delete("acme", f"/invitations/{inv_id}", key).status_code == 204
    problem(api.delete("acme", f"/invitations/{inv_id}", key), 404)
    assert api.get("acme", "/invitations", key).get_json()["data"] == []


def test_invitation_rules_are_the_pages(world, api, make_key, owner_engine):
    """An admin's key cannot invite an Owner; a malformed address refuses the whole request."""
    _, key = make_key(world.acme, world.users["admin"], ["members:invite"])
    problem(api.post("acme", "/invitations", key, json={"emails": ["x@acme.test"], "role": "owner"}), 422)
    body = problem(api.post("acme", "/invitations", key, json={"emails": ["not an address"], "role": "viewer"}), 422)
    assert body["errors"][0]["pointer"] == "/emails"
    with owner_engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM invitations").scalar() == 0


def test_audit_events_newest_first_with_filters_and_cursor(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["audit:view", "projects:create"])
    owner = str(world.users["owner"].id)
    for i in range(3):
        assert api.post("acme", "/projects", key, json={"name": f"Logged {i}", "owner_id": owner}).status_code == 201
    r = api.get("acme", "/audit-events?action=project.created&limit=2", key)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert [e["target"]["label"] for e in body["data"]] == ["Logged 2", "Logged 1"]
    assert body["data"][0]["actor"]["type"] == "api_key"
    older = api.client.get(body["next"], headers={"Authorization": f"Bearer {key}"}).get_json()
    assert [e["target"]["label"] for e in older["data"]] == ["Logged 0"] and older["next"] is None
    problem(api.get("acme", "/audit-events?action=nope.nope", key), 422)
    problem(api.get("acme", "/audit-events?cursor=abc", key), 400, "invalid-cursor")
    problem(api.get("acme", "/audit-events?from=2026-13-01", key), 422)


def test_audit_events_never_show_another_organizations(world, api, make_key):
    _, globex_key = make_key(world.globex, world.users["globex_owner"], ["audit:view"])
    _, acme_key = make_key(world.acme, world.users["admin"], ["projects:create"])
    api.post("acme", "/projects", acme_key, json={"name": "Acme only", "owner_id": str(world.users["owner"].id)})
    labels = [e["target"]["label"] for e in api.get("globex", "/audit-events", globex_key).get_json()["data"]]
    assert "Acme only" not in labels


def test_webhooks_and_deliveries_read(world, api, make_key):
    from app.webhooks import services

    with tenant_context(world.acme.id):
        endpoint, _ = services.create_endpoint(world.acme, "https://93.184.215.14/hook", "", ["project.created"])
        services.send_test_event(endpoint)
        db.session.commit()
        eid = str(endpoint.id)
    with tenant_context(world.globex.id):
        other, _ = services.create_endpoint(world.globex, "https://93.184.215.14/globex", "", ["project.created"])
        db.session.commit()
        other_id = str(other.id)
    _, key = make_key(world.acme, world.users["admin"], ["webhooks:view"])
    listed = api.get("acme", "/webhooks", key).get_json()["data"]
    assert [e["id"] for e in listed] == [eid] and "secret" not in str(listed)
    deliveries = api.get("acme", f"/webhooks/{eid}/deliveries", key).get_json()
    assert [d["event_type"] for d in deliveries["data"]] == ["webhook.test"] and deliveries["next"] is None
    problem(api.get("acme", f"/webhooks/{other_id}", key), 404)
    problem(api.get("acme", f"/webhooks/{other_id}/deliveries", key), 404)
    problem(api.get("acme", f"/webhooks/{eid}/deliveries?cursor=WyJ4Il0", key), 400)


def test_rename_the_organization_with_if_match(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ["org:view", "org:update"])
    etag = api.get("acme", "/organization", key).headers["ETag"]
    problem(api.patch("acme", "/organization", key, json={"name": "Acme Inc"}), 428)
    r = api.patch("acme", "/organization", key, json={"name": "Acme Inc"}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.get_json()["name"] == "Acme Inc"
    problem(api.patch("acme", "/organization", key, json={"name": "Stale"}, headers={"If-Match": etag}), 412)
    problem(api.patch("acme", "/organization", key, json={"name": ""}, headers={"If-Match": r.headers["ETag"]}), 422)
    with owner_engine.connect() as c:
        assert c.exec_driver_sql("SELECT name FROM organizations WHERE slug = 'acme'").scalar() == "Acme Inc"


def test_custom_roles_create_read_update(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["roles:view", "roles:manage"])
    r = api.post("acme", "/roles", key, json={"name": "Auditor", "permissions": ["audit:view", "members:view"]})
    assert r.status_code == 201, r.get_data(as_text=True)
    role = r.get_json()
    assert role["key"].startswith("custom:") and role["permissions"] == ["audit:view", "members:view"]
    got = api.get("acme", f"/roles/{role['key']}", key)
    assert got.get_json() == role
    r = api.patch(
        "acme",
        f"/roles/{role['key']}",
        key,
        json={"permissions": ["audit:view"]},
        headers={"If-Match": got.headers["ETag"]},
    )
    assert r.status_code == 200 and r.get_json()["permissions"] == ["audit:view"]
    problem(
        api.patch("acme", f"/roles/{role['key']}", key, json={"name": "X"}, headers={"If-Match": got.headers["ETag"]}),
        412,
    )
    # The role editor's rules: a duplicate name, a permission the admin lacks, a system role.
    problem(api.post("acme", "/roles", key, json={"name": "auditor", "permissions": []}), 422)
    problem(api.post("acme", "/roles", key, json={"name": "Boss", "permissions": ["org:delete"]}), 422)
    etag = api.get("acme", "/roles/viewer", key).headers["ETag"]
    problem(api.patch("acme", "/roles/viewer", key, json={"name": "Reader"}, headers={"If-Match": etag}), 422)
    problem(api.get("acme", "/roles/custom:7b0c5f0e-2f4a-4c1e-9a55-3d8e6b1f0a42", key), 404)


def test_audit_export_streams_every_matching_event_and_is_audited(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], ["audit:export", "projects:create"])
    owner = str(world.users["owner"].id)
    for i in range(3):
        api.post("acme", "/projects", key, json={"name": f"Exported {i}", "owner_id": owner})
    r = api.get("acme", "/audit-events/export?action=project.created", key)
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert [e["target_label"] for e in lines] == ["Exported 2", "Exported 1", "Exported 0"]
    r = api.get("acme", "/audit-events/export?format=csv&action=project.created", key)
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert r.mimetype == "text/csv" and [row["target_label"] for row in rows] == [
        "Exported 2",
        "Exported 1",
        "Exported 0",
    ]
    with owner_engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM audit_events WHERE action = 'audit.exported'").scalar() == 2
    problem(api.get("acme", "/audit-events/export?format=xml", key), 422)

"""Invitations, audit events and webhooks through the API: the areas' own
services and rules, cursors, other organizations' ids are 404."""

from __future__ import annotations

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

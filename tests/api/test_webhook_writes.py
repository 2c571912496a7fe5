"""Webhook endpoints written through the API: the webhooks pages' services
and rules (SSRF guard, audit catalogue, plan limit), the secret shown once,
ETag/If-Match, Idempotency-Key, deliveries redelivered and replayed, another
organization's ids 404, bad input answered as problem+json with nothing
changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app import crypto
from app.extensions import db
from app.scoping import tenant_context
from tests.api.conftest import problem

HOOK = "https://93.184.215.14/hook"  # a public address: the guard needs no DNS for it
MANAGE = ["webhooks:view", "webhooks:manage"]


def _count(owner_engine, table: str = "webhook_endpoints") -> int:
    with owner_engine.connect() as c:
        return c.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def _create(api, key, **fields):
    body = {"url": HOOK, "event_types": ["project.created"], **fields}
    return api.post("acme", "/webhooks", key, json=body)


def _stored_secret(owner_engine, endpoint_id) -> str:
    with owner_engine.connect() as c:
        sealed = c.execute(text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :i"), {"i": endpoint_id})
        return crypto.decrypt(sealed.scalar_one()).decode()


def test_create_shows_the_secret_once_and_reads_never_do(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    r = _create(api, key, description="CRM", event_types=["project.created", "member.invited", "project.created"])
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    assert body["event_types"] == ["member.invited", "project.created"]  # cleaned as the page does
    assert r.headers["Location"].endswith(f"/api/v1/webhooks/{body['id']}") and r.headers["ETag"]
    assert _stored_secret(owner_engine, body["id"]) == body["secret"]
    read = api.get("acme", f"/webhooks/{body['id']}", key)
    assert read.status_code == 200 and "secret" not in read.get_json() and read.headers["ETag"] == r.headers["ETag"]
    assert "whsec_" not in api.get("acme", "/webhooks", key).get_data(as_text=True)
    with owner_engine.connect() as c:
        row = c.execute(text("SELECT actor_type, target_id FROM audit_events WHERE action = 'webhook.created'")).one()
    assert row.actor_type == "api_key" and row.target_id == body["id"]


def test_an_idempotent_create_replays_the_same_endpoint_and_stores_the_secret_encrypted(
    world, api, make_key, owner_engine
):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    headers = {"Idempotency-Key": "create-hook-1"}
    body = {"url": HOOK, "event_types": ["project.created"]}
    first = api.post("acme", "/webhooks", key, json=body, headers=headers)
    again = api.post("acme", "/webhooks", key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert _count(owner_engine) == 1
    with owner_engine.connect() as c:
        stored = c.execute(text("SELECT body FROM api_idempotency")).scalar()
    assert stored.startswith("sealed:") and first.get_json()["secret"] not in stored
    other = api.post("acme", "/webhooks", key, json={**body, "description": "x"}, headers=headers)
    problem(other, 422, "idempotency-mismatch")
    assert _count(owner_engine) == 1


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"url": "not a url"}, "/url"),
        ({"url": "ftp://93.184.215.14/hook"}, "/url"),
        ({"url": "https://10.0.0.5/hook"}, "/url"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "/url"),
        ({"url": "https://[::ffff:127.0.0.1]/hook"}, "/url"),
        ({"url": "https://localhost/hook"}, "/url"),
        ({"event_types": ["project.exploded"]}, "/event_types"),
        ({"event_types": []}, "/event_types"),
        ({"event_types": "project.created"}, "/event_types"),
        ({"url": ""}, "/url"),
        ({"secret": "whsec_mine"}, "/secret"),
    ],
)
def test_bad_input_is_a_problem_beside_the_field_and_creates_nothing(
    world, api, make_key, owner_engine, fields, pointer
):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    body = problem(_create(api, key, **fields), 422)
    assert pointer in [e["pointer"] for e in body["errors"]], body
    assert _count(owner_engine) == 0
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_events WHERE action LIKE 'webhook.%'")).scalar() == 0


def test_the_plan_limit_holds(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    with owner_engine.begin() as c:
        saved = c.execute(text("SELECT max_webhooks FROM plans WHERE key = 'pro'")).scalar()
        c.execute(text("UPDATE plans SET max_webhooks = 1 WHERE key = 'pro'"))
    try:
        assert _create(api, key).status_code == 201
        body = problem(_create(api, key, url=HOOK + "2"), 422)
        assert "plan allows 1 webhook endpoint" in body["detail"] and body["errors"][0]["pointer"] == "/url"
        assert _count(owner_engine) == 1
    finally:
        with owner_engine.begin() as c:
            c.execute(text("UPDATE plans SET max_webhooks = :m WHERE key = 'pro'"), {"m": saved})


def test_update_needs_the_current_etag(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    created = _create(api, key).get_json()
    path = f"/webhooks/{created['id']}"
    etag = api.get("acme", path, key).headers["ETag"]
    problem(api.patch("acme", path, key, json={"description": "No If-Match"}), 428)
    r = api.patch("acme", path, key, json={"description": "Billing"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["description"] == "Billing" and r.get_json()["url"] == HOOK
    assert r.headers["ETag"] != etag
    # The first ETag is stale now: no lost update.
    problem(api.patch("acme", path, key, json={"description": "Lost"}, headers={"If-Match": etag}), 412)
    fresh = r.headers["ETag"]
    body = problem(api.patch("acme", path, key, json={"url": "https://10.1.2.3/x"}, headers={"If-Match": fresh}), 422)
    assert body["errors"][0]["pointer"] == "/url"
    r = api.patch(
        "acme", path, key, json={"event_types": ["member.invited"], "url": HOOK + "/v2"}, headers={"If-Match": fresh}
    )
    assert r.status_code == 200 and r.get_json()["event_types"] == ["member.invited"]
    got = api.get("acme", path, key).get_json()
    assert (got["url"], got["description"]) == (HOOK + "/v2", "Billing")


def test_rotate_disable_enable_and_delete(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    created = _create(api, key).get_json()
    path = f"/webhooks/{created['id']}"
    r = api.post("acme", path + "/rotate-secret", key)
    assert r.status_code == 200, r.get_data(as_text=True)
    rotated = r.get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    assert _stored_secret(owner_engine, created["id"]) == rotated["secret"]

    r = api.post("acme", path + "/disable", key)
    assert r.status_code == 200 and r.get_json()["enabled"] is False and r.get_json()["disabled_reason"] == "manual"
    assert api.post("acme", path + "/disable", key).status_code == 200  # no change, no second event
    r = api.post("acme", path + "/enable", key)
    assert r.status_code == 200 and r.get_json()["enabled"] is True and r.get_json()["disabled_reason"] is None

    etag = api.get("acme", path, key).headers["ETag"]
    problem(api.delete("acme", path, key, headers={"If-Match": '"stale"'}), 412)
    assert api.delete("acme", path, key, headers={"If-Match": etag}).status_code == 204
    problem(api.get("acme", path, key), 404)
    with owner_engine.connect() as c:
        actions = c.execute(
            text("SELECT action FROM audit_events WHERE action LIKE 'webhook.%' AND actor_type = 'api_key' ORDER BY id")
        ).scalars()
        assert list(actions) == [
            "webhook.created",
            "webhook.secret_rotated",
            "webhook.disabled",
            "webhook.enabled",
            "webhook.deleted",
        ]


def test_test_event_redeliver_and_replay(world, api, make_key, owner_engine):
    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    eid = _create(api, key).get_json()["id"]
    r = api.post("acme", f"/webhooks/{eid}/test", key)
    assert r.status_code == 202, r.get_data(as_text=True)
    did = r.get_json()["delivery_id"]
    with owner_engine.begin() as c:
        c.execute(
            text("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = :d"), {"d": did}
        )
    r = api.post("acme", f"/webhooks/{eid}/deliveries/{did}/redeliver", key)
    assert r.status_code == 202 and r.get_json()["status"] == "pending" and r.get_json()["id"] == did
    with owner_engine.begin() as c:
        c.execute(text("UPDATE webhook_deliveries SET status = 'failed' WHERE id = :d"), {"d": did})
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = api.post("acme", f"/webhooks/{eid}/replay", key, json={"since": hour_ago})
    assert r.status_code == 202 and r.get_json() == {"queued": 1}
    problem(api.post("acme", f"/webhooks/{eid}/replay", key, json={"since": "2026-11-29T14:00:00"}), 422)
    problem(api.post("acme", f"/webhooks/{eid}/replay", key, json={"since": "yesterday"}), 422)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        problem(api.post("acme", f"/webhooks/{eid}/replay", key, json={"since": future}), 422)["errors"][0]["pointer"]
        == "/since"
    )
    problem(api.post("acme", f"/webhooks/{eid}/deliveries/not-an-id/redeliver", key), 404)

    api.post("acme", f"/webhooks/{eid}/disable", key)
    problem(api.post("acme", f"/webhooks/{eid}/deliveries/{did}/redeliver", key), 422)
    problem(api.post("acme", f"/webhooks/{eid}/test", key), 422)
    with owner_engine.connect() as c:
        actions = c.execute(
            text("SELECT action FROM audit_events WHERE action LIKE 'webhook.%' AND actor_type = 'api_key' ORDER BY id")
        ).scalars()
        assert list(actions) == [
            "webhook.created",
            "webhook.test_sent",
            "webhook.redelivered",
            "webhook.replay_started",
            "webhook.disabled",
        ]


def test_reading_keys_cannot_write_and_other_organizations_ids_are_404(world, api, make_key, owner_engine):
    from app.webhooks import services

    with tenant_context(world.globex.id):
        other, _ = services.create_endpoint(world.globex, HOOK, "", ["project.created"])
        did = services.send_test_event(other)
        db.session.commit()
        other_id = str(other.id)
    _, reader = make_key(world.acme, world.users["admin"], ["webhooks:view"])
    problem(_create(api, reader), 403, "missing-scope")

    _, key = make_key(world.acme, world.users["admin"], MANAGE)
    path = f"/webhooks/{other_id}"
    problem(api.patch("acme", path, key, json={"description": "x"}, headers={"If-Match": "*"}), 404)
    problem(api.delete("acme", path, key), 404)
    for action in ("rotate-secret", "disable", "enable", "test", f"deliveries/{did}/redeliver"):
        problem(api.post("acme", f"{path}/{action}", key), 404)
    problem(api.post("acme", f"{path}/replay", key, json={"since": "2026-11-01T00:00:00Z"}), 404)
    with owner_engine.connect() as c:
        row = c.execute(
            text("SELECT description, enabled, version FROM webhook_endpoints WHERE id = :i"), {"i": other_id}
        ).one()
    assert (row.description, row.enabled, row.version) == ("", True, 1)

"""Deliveries: one job per (event, endpoint) in the event's transaction,
signed per Standard Webhooks (checked with the library's own verifier, as a
receiver would), retried on the schedule, every attempt kept; a receiver
that fails in any way is a failed attempt, never a crashed worker; the guard
again at delivery; auto-disable after five days of failures; resend, replay
and the test event."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from app.extensions import db
from app.scoping import tenant_context
from app.webhooks import delivery as delivery_mod
from app.webhooks import services
from tests import factories as f
from tests.conftest import url


def rows(owner_engine, sql, **params):
    with owner_engine.connect() as c:
        return c.execute(text(sql), params).mappings().all()


def deliveries(owner_engine):
    return rows(owner_engine, "SELECT * FROM webhook_deliveries ORDER BY created_at")


def attempts(owner_engine):
    return rows(owner_engine, "SELECT * FROM webhook_attempts ORDER BY attempted_at")


def jobs_of(owner_engine):
    return rows(
        owner_engine,
        "SELECT id, status, scheduled_at, attempts FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver' ORDER BY id",
    )


def make_project(org, name="Launch"):
    with tenant_context(org.id):
        f.make_project(org, name)
        db.session.commit()


def create_project(org, name="Launch"):
    """A project created through the service, so that its audit event is recorded (and commits)."""
    from app.projects import services as projects

    with tenant_context(org.id):
        owner = db.session.execute(text("SELECT user_id FROM memberships LIMIT 1")).scalar()
        projects.create_project(name, "", owner)
        db.session.commit()


# --------------------------------------------------------------------------- enqueue
def test_an_event_enqueues_one_delivery_per_subscribed_endpoint_in_its_transaction(
    world, loopback, receiver, make_endpoint, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    make_endpoint(world.acme, receiver.url + "2", ["project.created", "project.deleted"])
    make_endpoint(world.acme, receiver.url + "3", ["role.created"])  # not subscribed
    create_project(world.acme)
    assert len(deliveries(owner_engine)) == 2
    assert len(jobs_of(owner_engine)) == 2


def test_a_rolled_back_change_enqueues_nothing(world, loopback, receiver, make_endpoint, owner_engine):
    from app.projects import services as projects

    make_endpoint(world.acme, receiver.url, ["project.created"])
    with tenant_context(world.acme.id):
        owner = db.session.execute(text("SELECT user_id FROM memberships LIMIT 1")).scalar()
        projects.create_project("Never", "", owner)
        db.session.rollback()
    assert deliveries(owner_engine) == [] and jobs_of(owner_engine) == []


def test_another_organizations_events_are_not_delivered(world, loopback, receiver, make_endpoint, owner_engine):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.globex)
    assert deliveries(owner_engine) == []


def test_a_disabled_endpoint_receives_nothing(world, loopback, receiver, make_endpoint, owner_engine):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    with tenant_context(world.acme.id):
        services.disable_endpoint(services.find_endpoint(eid))
        db.session.commit()
    create_project(world.acme)
    assert deliveries(owner_engine) == []


# --------------------------------------------------------------------------- signing
def test_a_delivery_verifies_with_the_standard_webhooks_library(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    _, secret = make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme, "Rocket Skates")
    run_jobs()
    [got] = receiver.requests
    payload = Webhook(secret).verify(got.body, got.headers)  # raises when the signature is wrong
    assert payload["type"] == "project.created"
    assert payload["data"]["target"]["label"] == "Rocket Skates"
    assert set(payload) == {"type", "timestamp", "data"}
    [d] = deliveries(owner_engine)
    assert got.headers["webhook-id"] == f"msg_{d['id'].hex}"
    assert d["status"] == "succeeded" and d["attempts"] == 1
    [a] = attempts(owner_engine)
    assert a["success"] and a["status_code"] == 200 and a["latency_ms"] is not None
    assert a["response_body"] == '{"ok":true}'
    assert a["request_headers"]["webhook-id"] == got.headers["webhook-id"]


def test_after_a_rotation_both_signatures_are_sent_for_24_hours(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    eid, old = make_endpoint(world.acme, receiver.url, ["project.created"])
    with tenant_context(world.acme.id):
        new = services.rotate_secret(services.find_endpoint(eid))
        db.session.commit()
    create_project(world.acme)
    run_jobs()
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)
    # Once the 24 hours are over, only the new secret signs.
    with owner_engine.begin() as c:
        c.execute(text("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'"))
    create_project(world.acme, "Second")
    run_jobs()
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(got.body, got.headers)


# --------------------------------------------------------------------------- failures
def test_a_failed_attempt_is_kept_and_retried_on_the_schedule(
    world, loopback, receiver, make_endpoint, run_jobs, advance_jobs, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode, receiver.status = "status", 503
    create_project(world.acme)
    run_jobs()
    [d] = deliveries(owner_engine)
    assert d["status"] == "failed" and d["attempts"] == 1
    [a] = attempts(owner_engine)
    assert not a["success"] and a["status_code"] == 503 and "HTTP 503" in a["error"]
    [job] = jobs_of(owner_engine)
    assert job["status"] == "todo"
    with owner_engine.connect() as c:
        wait = c.execute(
            text("SELECT scheduled_at - now() FROM procrastinate_jobs WHERE id = :i"), {"i": job["id"]}
        ).scalar()
    assert timedelta(seconds=3) <= wait <= timedelta(seconds=6)  # 5 s ± 10 %
    receiver.mode = "ok"
    advance_jobs()
    [d] = deliveries(owner_engine)
    assert d["status"] == "succeeded" and d["attempts"] == 2
    assert len(set(receiver.ids())) == 1  # the same webhook-id on both attempts


def test_the_schedule_is_standard_webhooks_with_jitter():
    assert delivery_mod.SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert delivery_mod.MAX_ATTEMPTS == 8
    for n, base in enumerate(delivery_mod.SCHEDULE, start=1):
        delays = {delivery_mod.next_delay(n) for _ in range(20)}
        assert all(base * 0.9 <= d <= base * 1.1 for d in delays) and len(delays) > 1
    assert delivery_mod.next_delay(8) is None


def test_after_the_eighth_failure_the_delivery_stays_failed(
    world, loopback, receiver, make_endpoint, run_jobs, advance_jobs, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode, receiver.status = "status", 500
    create_project(world.acme)
    run_jobs()
    for _ in range(8):
        advance_jobs()
    [d] = deliveries(owner_engine)
    assert d["attempts"] == 8 and d["status"] == "failed" and d["next_attempt_at"] is None
    assert len(receiver.requests) == 8
    assert [j for j in jobs_of(owner_engine) if j["status"] in ("todo", "doing")] == []  # nothing left queued


@pytest.mark.parametrize("mode", ["garbage", "hang", "close", "redirect"])
def test_a_misbehaving_receiver_is_a_failed_attempt_not_a_crashed_worker(
    app, world, loopback, receiver, make_endpoint, run_jobs, owner_engine, monkeypatch, mode
):
    monkeypatch.setitem(app.config, "WEBHOOKS_TIMEOUT_SECONDS", 1.0)
    make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode = mode
    create_project(world.acme)
    run_jobs()
    [a] = attempts(owner_engine)
    assert not a["success"] and a["error"], a
    if mode == "hang":
        assert "No answer within 1 seconds" in a["error"] and a["latency_ms"] < 3000
    if mode == "redirect":
        assert a["status_code"] == 302 and "Redirects are not followed" in a["error"]
    assert len(receiver.requests) == 1  # nothing followed the redirect
    assert deliveries(owner_engine)[0]["status"] == "failed"


def test_only_the_first_kilobyte_of_the_response_is_kept(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode = "big"
    create_project(world.acme)
    run_jobs()
    [a] = attempts(owner_engine)
    assert a["success"] and len(a["response_body"]) == 1024


def test_the_guard_refuses_again_at_delivery_time(
    app, world, loopback, receiver, make_endpoint, run_jobs, owner_engine, monkeypatch
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme)
    # The endpoint was saved while loopback was allowed; it no longer is.
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", False)
    run_jobs()
    assert receiver.requests == []
    [a] = attempts(owner_engine)
    assert not a["success"] and "loopback" in a["error"] and a["status_code"] is None


def test_the_hardened_client_refuses_a_private_address_even_without_the_check(app, world, receiver):
    """The transport itself refuses (and pins to) the checked address: the
    last line if a name resolves to a private address between check and connect."""
    out = delivery_mod._session(2).post  # the client deliveries use
    with pytest.raises(Exception, match="127.0.0.1"):
        out(receiver.url, data=b"{}")
    assert receiver.requests == []


# --------------------------------------------------------------------------- auto-disable
def test_five_days_of_failures_disable_the_endpoint_audit_it_and_mail_the_admins(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine, mailbox
):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode, receiver.status = "status", 500
    with owner_engine.begin() as c:
        c.execute(text("UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute'"))
    create_project(world.acme)
    run_jobs()
    [e] = rows(owner_engine, "SELECT * FROM webhook_endpoints")
    assert e["enabled"] is False and e["disabled_reason"] == "failing"
    [ev] = rows(owner_engine, "SELECT * FROM audit_events WHERE action = 'webhook.disabled'")
    assert ev["actor_type"] == "system" and ev["metadata"]["reason"] == "failing"
    # No retry is scheduled for a disabled endpoint.
    assert [j for j in jobs_of(owner_engine) if j["status"] in ("todo", "doing")] == []
    run_jobs()
    to = sorted(m["To"] for m in mailbox.messages if "was disabled" in m["Subject"])
    assert to == ["admin@acme.test", "owner@acme.test"]
    # An admin enables it by hand: sending resumes.
    with tenant_context(world.acme.id):
        services.enable_endpoint(services.find_endpoint(eid))
        db.session.commit()
    assert rows(owner_engine, "SELECT failing_since FROM webhook_endpoints")[0]["failing_since"] is None


def test_a_success_clears_the_failing_streak(world, loopback, receiver, make_endpoint, run_jobs, owner_engine):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode, receiver.status = "status", 500
    create_project(world.acme)
    run_jobs()
    assert rows(owner_engine, "SELECT failing_since FROM webhook_endpoints")[0]["failing_since"] is not None
    receiver.mode = "ok"
    create_project(world.acme, "Second")
    run_jobs()
    assert rows(owner_engine, "SELECT failing_since FROM webhook_endpoints")[0]["failing_since"] is None


# --------------------------------------------------------------------------- pages: test event, log, resend, replay
def test_send_test_event_appears_in_the_log_and_verifies(
    world, loopback, receiver, make_endpoint, run_jobs, login, post, owner_engine
):
    eid, secret = make_endpoint(world.acme, receiver.url, ["project.created"])
    c = login(world.users["admin"], "acme")
    assert post(c, "acme", f"/webhooks/{eid}/test").status_code == 302
    run_jobs()
    [got] = receiver.requests
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    page = c.get(url("acme", f"/webhooks/{eid}"))
    assert b"webhook.test" in page.data and b"Succeeded" in page.data
    [d] = deliveries(owner_engine)
    detail = c.get(url("acme", f"/webhooks/{eid}/deliveries/{d['id']}"))
    assert detail.status_code == 200 and b"webhook-signature" in detail.data and b"{&#34;ok&#34;:true}" in detail.data
    assert "webhook.test_sent" in [r["action"] for r in rows(owner_engine, "SELECT action FROM audit_events")]


def test_the_log_filters_by_status_and_event(world, loopback, receiver, make_endpoint, run_jobs, login):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created", "project.deleted"])
    create_project(world.acme, "One")
    run_jobs()
    receiver.mode, receiver.status = "status", 500
    with tenant_context(world.acme.id):
        services.send_test_event(services.find_endpoint(eid))
        db.session.commit()
    run_jobs()
    c = login(world.users["admin"], "acme")
    failed = c.get(url("acme", f"/webhooks/{eid}?status=failed"), headers={"HX-Request": "true"})
    assert failed.headers.get("Vary") and "HX-Request" in failed.headers["Vary"]
    html = failed.get_data(as_text=True)
    assert "webhook.test" in html and "project.created" not in html
    by_event = c.get(url("acme", f"/webhooks/{eid}?event_type=project.created"), headers={"HX-Request": "true"})
    html = by_event.get_data(as_text=True)
    assert "project.created" in html and "webhook.test</code>" not in html and "<html" not in html
    assert c.get(url("acme", f"/webhooks/{eid}?status=nonsense&event_type=%3Cx%3E")).status_code == 200


def test_resend_sends_the_same_webhook_id_again(
    world, loopback, receiver, make_endpoint, run_jobs, login, post, owner_engine
):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme)
    run_jobs()
    [d] = deliveries(owner_engine)
    c = login(world.users["admin"], "acme")
    assert post(c, "acme", f"/webhooks/{eid}/deliveries/{d['id']}/resend").status_code == 302
    run_jobs()
    assert len(receiver.requests) == 2 and len(set(receiver.ids())) == 1
    assert deliveries(owner_engine)[0]["attempts"] == 2


def test_replay_resends_every_failed_delivery_since_a_time(
    world, loopback, receiver, make_endpoint, run_jobs, login, post, owner_engine
):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode, receiver.status = "status", 500
    for i in range(3):
        create_project(world.acme, f"P{i}")
    run_jobs()
    with owner_engine.begin() as c:  # the first one failed long before the chosen time
        c.execute(
            text(
                "UPDATE webhook_deliveries SET created_at = now() - interval '3 days' WHERE id = "
                "(SELECT id FROM webhook_deliveries ORDER BY created_at LIMIT 1)"
            )
        )
    receiver.mode = "ok"
    receiver.requests.clear()
    c = login(world.users["admin"], "acme")
    bad = post(c, "acme", f"/webhooks/{eid}/replay", {"since": "yesterday"})
    assert bad.status_code == 422 and 'id="since-error"' in bad.get_data(as_text=True)
    since = (rows(owner_engine, "SELECT now() - interval '1 day' AS t")[0]["t"]).strftime("%Y-%m-%dT%H:%M")
    r = post(c, "acme", f"/webhooks/{eid}/replay", {"since": since})
    assert r.status_code == 302
    run_jobs()
    assert len(receiver.requests) == 2
    statuses = sorted(d["status"] for d in deliveries(owner_engine))
    assert statuses == ["failed", "succeeded", "succeeded"]
    [ev] = rows(owner_engine, "SELECT metadata FROM audit_events WHERE action = 'webhook.replay_started'")
    assert ev["metadata"]["deliveries"] == 2


def test_the_payload_names_the_event_and_keeps_secrets_out(world, loopback, receiver, make_endpoint, run_jobs):
    make_endpoint(world.acme, receiver.url, ["webhook.secret_rotated"])
    with tenant_context(world.acme.id):
        [e] = services.list_endpoints()
        services.rotate_secret(e)
        db.session.commit()
    run_jobs()
    body = json.loads(receiver.requests[0].body)
    assert body["type"] == "webhook.secret_rotated"
    assert "whsec_" not in receiver.requests[0].body.decode()

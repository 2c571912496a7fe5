"""Audit streaming: each format as a real receiver on loopback sees it (the
https one verified with the Standard Webhooks library), only sealed events
in seal order, the cursor moving only after a 2xx, failures retried with
nothing lost, one batch at a time per stream, auto-disable; and the pages:
plan and permission refusals, bad input 422 beside the field with nothing
saved, stale edits 409, every change audited with before and after."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from app.auditlog.services import EXPORT_COLUMNS
from app.extensions import db
from app.scoping import tenant_context
from app.streaming import delivery, formats
from tests.conftest import UNKNOWN_ID, url
from tests.drills import at_once
from tests.streaming.conftest import actions, make_stream, record_events, run_stream, stream_row

PUBLIC = "https://93.184.215.14/ingest"  # a literal public address: no DNS needed


def ndjson(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().splitlines()]


def concatenated(body: bytes) -> list[dict]:
    """Splunk HEC's batch form: JSON objects one after another."""
    text_, out, i = body.decode(), [], 0
    dec = json.JSONDecoder()
    while i < len(text_):
        obj, i = dec.raw_decode(text_, i)
        out.append(obj)
    return out


# --------------------------------------------------------------------------- formats
def test_https_batches_are_ndjson_in_seal_order_signed_as_webhooks_are(
    enterprise, loopback, receiver, seal, owner_engine
):
    acme = enterprise.acme
    record_events(acme, 3)
    seal()
    sid, secret = make_stream(acme, receiver.url)
    assert secret.startswith("whsec_")
    run_stream(acme, sid)
    [req] = receiver.requests
    assert req.headers["content-type"] == "application/x-ndjson"
    # Verifies with the spec's own library, exactly as a webhook does.
    Webhook(secret).verify(req.body, req.headers, json_parse=False)  # NDJSON: not one JSON document
    events = ndjson(req.body)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(seqs) == stream_row(owner_engine, sid)["cursor_seq"] == seqs[-1]
    assert set(events[0]) == {"seq", *EXPORT_COLUMNS}
    assert [e["action"] for e in events].count("project.updated") == 3
    assert req.headers["webhook-id"] == formats.batch_id(sid, 0, seqs[-1])
    assert req.headers["tenantry-batch-first"] == str(seqs[0]) and req.headers["tenantry-batch-last"] == str(seqs[-1])
    # No secret on the wire but the signature.
    assert secret.encode() not in req.body


def test_splunk_hec_gets_its_batch_form_with_the_token(enterprise, loopback, receiver, seal, owner_engine):
    acme = enterprise.acme
    record_events(acme, 2)
    seal()
    sid, secret = make_stream(acme, receiver.url, kind="splunk_hec", token="11111111-2222-3333-4444-555555555555")
    assert secret is None
    run_stream(acme, sid)
    [req] = receiver.requests
    assert req.path == "/hook/services/collector/event"
    assert req.headers["authorization"] == "Splunk 11111111-2222-3333-4444-555555555555"
    objs = concatenated(req.body)
    assert len(objs) == stream_row(owner_engine, sid)["cursor_seq"]
    for o in objs:
        assert set(o) == {"time", "host", "source", "sourcetype", "event"}
        assert o["source"] == "tenantry" and o["sourcetype"] == "tenantry:audit" and o["host"].startswith("acme.")
        assert isinstance(o["time"], float) and set(o["event"]) == {"seq", *EXPORT_COLUMNS}


def test_datadog_gets_a_json_array_of_logs_with_the_api_key(enterprise, loopback, receiver, seal, owner_engine):
    acme = enterprise.acme
    record_events(acme, 2)
    seal()
    sid, _ = make_stream(acme, receiver.url, kind="datadog", token="dd0123456789abcdef")
    run_stream(acme, sid)
    [req] = receiver.requests
    assert req.path == "/hook/api/v2/logs" and req.headers["dd-api-key"] == "dd0123456789abcdef"
    logs = json.loads(req.body)
    assert isinstance(logs, list) and len(logs) == stream_row(owner_engine, sid)["cursor_seq"]
    for entry in logs:
        assert entry["ddsource"] == "tenantry" and entry["service"] == "tenantry-audit"
        assert json.loads(entry["message"]) == entry["tenantry"]
        assert "action:" in entry["ddtags"] and entry["hostname"].startswith("acme.")


# --------------------------------------------------------------------------- cursor
def test_only_sealed_events_are_sent_and_a_new_stream_can_start_after_the_newest(
    enterprise, loopback, receiver, seal, owner_engine
):
    acme = enterprise.acme
    record_events(acme, 2)
    seal()
    sid, _ = make_stream(acme, receiver.url, start="new")
    start = stream_row(owner_engine, sid)["cursor_seq"]
    assert start > 0
    record_events(acme, 4)  # committed, not sealed yet
    run_stream(acme, sid)
    assert receiver.requests == []
    seal()
    run_stream(acme, sid)
    events = [e for r in receiver.requests for e in ndjson(r.body)]
    assert [e["seq"] for e in events] == list(range(start + 1, start + 1 + len(events)))
    assert sum(e["action"] == "project.updated" for e in events) == 4


def test_the_cursor_moves_only_after_a_2xx_and_a_failed_batch_is_retried_later_nothing_lost(
    enterprise, loopback, receiver, seal, owner_engine, advance_jobs
):
    acme = enterprise.acme
    record_events(acme, 5)
    seal()
    receiver.mode, receiver.status = "status", 503
    sid, _ = make_stream(acme, receiver.url)
    run_stream(acme, sid)
    row = stream_row(owner_engine, sid)
    assert row["cursor_seq"] == 0 and row["failure_count"] == 1 and "503" in row["last_error"]
    assert row["next_attempt_at"] is not None and row["inflight_through"] is not None
    # Not due yet: running again sends nothing.
    run_stream(acme, sid)
    assert len(receiver.requests) == 1
    receiver.mode = "ok"
    advance_jobs()  # the retry's job, brought forward
    row = stream_row(owner_engine, sid)
    assert row["failure_count"] == 0 and row["next_attempt_at"] is None and row["inflight_through"] is None
    first, retry = receiver.requests[0], receiver.requests[-1]
    # The retry is the same batch, under the same id.
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert ndjson(first.body) == ndjson(retry.body)
    assert row["cursor_seq"] == ndjson(retry.body)[-1]["seq"] and row["delivered_count"] == row["cursor_seq"]


def test_batches_are_cut_at_the_batch_size_each_with_its_own_id(
    app, enterprise, loopback, receiver, seal, owner_engine, monkeypatch
):
    monkeypatch.setitem(app.config, "AUDIT_STREAM_BATCH", 3)
    acme = enterprise.acme
    record_events(acme, 7)
    seal()
    sid, _ = make_stream(acme, receiver.url)
    run_stream(acme, sid)
    total = stream_row(owner_engine, sid)["cursor_seq"]
    sizes = [len(ndjson(r.body)) for r in receiver.requests]
    assert sum(sizes) == total and max(sizes) == 3
    assert len(set(receiver.ids())) == len(receiver.requests)
    seqs = [e["seq"] for r in receiver.requests for e in ndjson(r.body)]
    assert seqs == list(range(1, total + 1))


def test_two_runs_at_once_never_send_a_batch_twice(
    app, enterprise, loopback, receiver, seal, owner_engine, monkeypatch
):
    monkeypatch.setitem(app.config, "AUDIT_STREAM_BATCH", 2)
    acme = enterprise.acme
    record_events(acme, 6)
    seal()
    sid, _ = make_stream(acme, receiver.url)
    receiver.delay = 0.3  # each batch takes a while: the runs overlap

    def run():
        with app.app_context():
            return run_stream(acme, sid)

    results = at_once(run, run)
    assert any("another job holds the stream" in r for r in results)
    seqs = [e["seq"] for r in receiver.requests for e in ndjson(r.body)]
    assert len(seqs) == len(set(seqs)) and stream_row(owner_engine, sid)["cursor_seq"] == max(seqs)


def test_the_sweep_wakes_a_stream_with_sealed_events_past_its_cursor(
    enterprise, loopback, receiver, seal, owner_engine, run_jobs
):
    from app.streaming import tasks

    acme = enterprise.acme
    sid, _ = make_stream(acme, receiver.url)
    run_jobs()
    assert receiver.requests == []
    record_events(acme, 2)
    seal()
    assert tasks.sweep.body(timestamp=0) == 1
    db.session.commit()  # as the job's end would
    run_jobs()
    assert stream_row(owner_engine, sid)["cursor_seq"] > 0
    assert tasks.sweep.body(timestamp=0) == 0  # caught up: nothing to wake


def test_five_days_of_failures_disable_the_stream_and_tell_the_admins(
    enterprise, loopback, receiver, seal, owner_engine, mailbox
):
    acme = enterprise.acme
    record_events(acme, 1)
    seal()
    receiver.mode, receiver.status = "status", 500
    sid, _ = make_stream(acme, receiver.url)
    run_stream(acme, sid)
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE audit_streams SET failing_since = now() - interval '6 days', next_attempt_at = NULL WHERE id = :i"
            ),
            {"i": sid},
        )
    run_stream(acme, sid)
    row = stream_row(owner_engine, sid)
    assert not row["enabled"] and row["disabled_reason"] == "failing" and row["cursor_seq"] == 0
    assert actions(owner_engine, acme.id)[-1] == "audit_stream.disabled"
    to = sorted(m["To"] for m in mailbox.messages if "audit stream" in m["Subject"])
    assert to == ["admin@acme.test", "owner@acme.test"]  # who may manage streams


# --------------------------------------------------------------------------- pages
def test_a_plan_without_audit_streaming_gets_the_not_on_your_plan_page(world, login):
    c = login(world.users["owner"], "acme")  # acme is on pro here
    r = c.get(url("acme", "/audit-streams/"))
    assert r.status_code == 403 and b"Not on your plan" in r.data
    g = login(world.users["globex_owner"], "globex")
    assert g.get(url("globex", "/audit-streams/new")).status_code == 403


@pytest.mark.parametrize("role,status", [("owner", 200), ("admin", 200), ("manager", 403), ("viewer", 403)])
def test_owners_and_admins_may_stream_the_log(enterprise, login, role, status):
    c = login(enterprise.users[role], "acme")
    assert c.get(url("acme", "/audit-streams/")).status_code == status


def create(post, c, **data):
    form = {"name": "SIEM", "kind": "https", "url": PUBLIC, "token": "", "start": "new"}
    form.update(data)
    return post(c, "acme", "/audit-streams/", form)


def streams(owner_engine):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM audit_streams ORDER BY created_at")).mappings().all()


def test_an_admin_creates_an_https_stream_and_sees_its_secret_once(enterprise, login, post, owner_engine):
    c = login(enterprise.users["admin"], "acme")
    assert c.get(url("acme", "/audit-streams/new")).status_code == 200
    r = create(post, c)
    assert r.status_code == 201
    secret = re.search(rb'value="(whsec_[A-Za-z0-9+/=]+)"', r.data).group(1).decode()
    [row] = streams(owner_engine)
    assert row["kind"] == "https" and row["enabled"] and secret not in row["secret_encrypted"]
    page = c.get(url("acme", f"/audit-streams/{row['id']}"))
    assert page.status_code == 200 and secret.encode() not in page.data and b"Events behind" in page.data
    assert c.get(url("acme", "/audit-streams/")).status_code == 200


BAD = [
    ({"name": ""}, "name", "Name the stream"),
    ({"name": "x" * 81}, "name", "at most 80"),
    ({"url": ""}, "url", "Enter the URL"),
    ({"url": "not a url"}, "url", "Enter a valid URL"),
    ({"url": "ftp://93.184.215.14/x"}, "url", "Enter a valid URL"),
    ({"url": "https://10.0.0.5/x"}, "url", "a private address"),
    ({"url": "https://127.0.0.1:8088/x"}, "url", "a loopback address"),
    ({"url": "https://169.254.169.254/latest"}, "url", "a cloud metadata address"),
    ({"kind": "kafka"}, "kind", "Choose where the events go"),
    ({"kind": "splunk_hec", "token": ""}, "token", "Enter the HEC token"),
    ({"kind": "datadog", "token": ""}, "token", "Enter the API key"),
    ({"kind": "datadog", "token": "two words"}, "token", "no spaces"),
    ({"start": "yesterday"}, "start", "Choose where the stream starts"),
]


@pytest.mark.parametrize("data,field,message", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_422_beside_the_field_and_saves_nothing(
    enterprise, login, post, owner_engine, data, field, message
):
    c = login(enterprise.users["admin"], "acme")
    r = create(post, c, **data)
    assert r.status_code == 422
    body = r.data.decode()
    m = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', body)
    assert m and message in m.group(1), body[body.find("field__error") - 200 : body.find("field__error") + 300]
    assert streams(owner_engine) == [] and actions(owner_engine, enterprise.acme.id) == []


def test_plain_http_is_refused_in_production(app, enterprise, login, post, owner_engine, monkeypatch):
    monkeypatch.setitem(app.config, "DEVELOPMENT", False)
    c = login(enterprise.users["admin"], "acme")
    r = create(post, c, url="http://93.184.215.14/x")
    assert r.status_code == 422 and b"only streamed over TLS" in r.data
    assert streams(owner_engine) == []


def test_every_change_is_audited_with_before_and_after_and_never_the_token(
    enterprise, login, post, owner_engine, loopback, receiver
):
    c = login(enterprise.users["owner"], "acme")
    assert create(post, c, kind="splunk_hec", token="tok-ONE-secret", url=receiver.url).status_code == 302
    [row] = streams(owner_engine)
    sid = row["id"]
    r = post(
        c,
        "acme",
        f"/audit-streams/{sid}",
        {"name": "Splunk", "url": receiver.url, "token": "tok-TWO-secret", "version": row["version"]},
    )
    assert r.status_code == 302
    assert post(c, "acme", f"/audit-streams/{sid}/disable").status_code == 302
    assert post(c, "acme", f"/audit-streams/{sid}/enable").status_code == 302
    assert post(c, "acme", f"/audit-streams/{sid}/test").status_code == 302
    assert receiver.requests and receiver.requests[-1].headers["authorization"] == "Splunk tok-TWO-secret"
    assert c.get(url("acme", f"/audit-streams/{sid}/delete")).status_code == 200
    assert post(c, "acme", f"/audit-streams/{sid}/delete").status_code == 302
    assert streams(owner_engine) == []
    assert actions(owner_engine, enterprise.acme.id) == [
        "audit_stream.created",
        "audit_stream.updated",
        "audit_stream.disabled",
        "audit_stream.enabled",
        "audit_stream.test_sent",
        "audit_stream.deleted",
    ]
    with owner_engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT action, changes::text AS changes, metadata::text AS meta FROM audit_events WHERE action LIKE 'audit_stream.%'"
                )
            )
            .mappings()
            .all()
        )
    updated = next(r for r in rows if r["action"] == "audit_stream.updated")
    assert "SIEM" in updated["changes"] and "Splunk" in updated["changes"] and '"token"' in updated["meta"]
    assert not any("tok-" in (r["changes"] or "") + (r["meta"] or "") for r in rows)


def test_a_stale_edit_is_409_and_saves_nothing(enterprise, login, post, owner_engine):
    c = login(enterprise.users["admin"], "acme")
    create(post, c)
    [row] = streams(owner_engine)
    assert c.get(url("acme", f"/audit-streams/{row['id']}/edit")).status_code == 200
    ok = post(c, "acme", f"/audit-streams/{row['id']}", {"name": "First", "url": PUBLIC, "version": row["version"]})
    assert ok.status_code == 302
    stale = post(c, "acme", f"/audit-streams/{row['id']}", {"name": "Second", "url": PUBLIC, "version": row["version"]})
    assert stale.status_code == 409
    assert streams(owner_engine)[0]["name"] == "First"


def test_a_test_event_to_a_failing_destination_says_why(enterprise, login, post, loopback, receiver, owner_engine):
    receiver.mode, receiver.status = "status", 401
    c = login(enterprise.users["admin"], "acme")
    create(post, c, url=receiver.url)
    [row] = streams(owner_engine)
    r = post(c, "acme", f"/audit-streams/{row['id']}/test")
    assert r.status_code == 302
    page = c.get(url("acme", f"/audit-streams/{row['id']}"))
    assert b"HTTP 401" in page.data
    [req] = receiver.requests
    assert req.headers["webhook-id"].startswith("test_") and ndjson(req.body)[0]["action"] == "audit_stream.test"
    assert stream_row(owner_engine, row["id"])["cursor_seq"] == row["cursor_seq"]  # a test never moves the cursor


def test_another_organizations_stream_is_404(enterprise, login, owner_engine):
    sid, _ = make_stream(enterprise.acme, PUBLIC)
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE slug = 'globex'"))
    g = login(enterprise.users["globex_owner"], "globex")
    assert g.get(url("globex", f"/audit-streams/{sid}")).status_code == 404
    assert g.get(url("globex", f"/audit-streams/{UNKNOWN_ID}")).status_code == 404
    assert g.get(url("globex", "/audit-streams/nonsense")).status_code == 404


def test_status_shows_events_behind(enterprise, login, seal, owner_engine):
    acme = enterprise.acme
    record_events(acme, 4)
    seal()
    sid, _ = make_stream(acme, PUBLIC)
    with tenant_context(acme.id):
        from app.streaming.services import find_stream

        behind = delivery.lag(find_stream(sid))
    assert behind >= 4
    c = login(enterprise.users["owner"], "acme")
    r = c.get(url("acme", f"/audit-streams/{sid}"), headers={"HX-Request": "true"})
    assert r.status_code == 200 and b"<html" not in r.data and "HX-Request" in r.headers.get("Vary", "")
    assert f'data-testid="stream-behind">{behind:,}<'.encode() in r.data


def test_backoff_grows_and_is_capped():
    assert 4 <= delivery.backoff(1) <= 6
    assert 9 <= delivery.backoff(2) <= 11
    assert delivery.backoff(50) <= delivery.BACKOFF_CAP * 1.1
    assert timedelta(days=5) == delivery.AUTO_DISABLE_AFTER

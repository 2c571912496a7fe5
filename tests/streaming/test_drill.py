"""The streaming drill: thousands of sealed events, a real ``flask worker``
process sending them to a real receiver on loopback, the worker restarted
mid-stream. Gracefully (SIGTERM, then a new worker): every event arrives
exactly once. Killed (SIGKILL between a batch's send and its cursor's
commit, then a new worker): every event arrives, the one batch in flight
arrives twice under the same batch id, and once repeats are dropped by that
id (what a receiver does: at-least-once on the wire, exactly-once per batch
id) every event is there exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from app.streaming.delivery import JOB_SECONDS
from tests.conftest import APEX
from tests.streaming.conftest import make_stream, record_events, stream_row

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2000
BATCH = 50
RESTART_AT = 6  # the request during which the first worker is stopped


@pytest.fixture
def worker_process(app, database_url, tmp_path):
    """``start(name)`` → a running ``flask --app wsgi worker`` (killed at the end if still running)."""
    procs = []

    def start(name: str):
        env = dict(os.environ)
        env.update(
            {
                "TENANTRY_ENV": "test",
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret-key-not-for-production",
                "SERVER_NAME": APEX,
                "MAIL_URL": "smtp://127.0.0.1:9",
                "TENANTRY_INSTANCE_DIR": str(tmp_path),
                "JOBS_CONCURRENCY": "2",
                "JOBS_HEARTBEAT_SECONDS": "0.5",
                "JOBS_STALLED_SECONDS": "2",
                "WEBHOOKS_ALLOW_LOOPBACK": "1",
                "AUDIT_STREAM_BATCH": str(BATCH),
                # The test app's key (its SECRET_KEY is set after the environment is read).
                "ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
                "LOG_LEVEL": "INFO",
                "LOG_JSON": "0",
            }
        )
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        p = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        p.log_path, p.log_file = tmp_path / f"{name}.log", log
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.log_file.close()


def _wait(predicate, timeout: float, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def _sealed_seqs(owner_engine, org_id) -> list[int]:
    with owner_engine.connect() as c:
        return list(
            c.execute(
                text("SELECT seq FROM audit_seals WHERE organization_id = :o ORDER BY seq"), {"o": org_id}
            ).scalars()
        )


def _drill(enterprise, receiver, seal, owner_engine, worker_process, stop: signal.Signals):
    acme = enterprise.acme
    record_events(acme, EVENTS)
    seal()
    sid, secret = make_stream(acme, receiver.url, start="all")
    seal()  # the stream's own "created" event is streamed too
    expected = _sealed_seqs(owner_engine, acme.id)
    assert len(expected) > EVENTS

    reached = threading.Event()
    stopped = threading.Event()

    def on_request(got):
        if len(receiver.requests) == RESTART_AT:
            reached.set()
            if stop == signal.SIGKILL:
                stopped.wait(30)  # answer only once the sender is dead: its cursor never moves for this batch

    receiver.on_request = on_request
    # A job sends for at most JOB_SECONDS, and a gracefully stopped worker
    # finishes its job: the whole stream must take longer than two jobs, or a
    # fast machine sends it all before the first worker stops.
    receiver.delay = max(0.05, 2 * JOB_SECONDS * BATCH / len(expected))
    started = time.monotonic()
    first = worker_process("first")
    _wait(reached.is_set, 60, lambda: f"the first batches; worker log:\n{first.log_path.read_text()}")
    first.send_signal(stop)
    code = first.wait(30)
    stopped.set()
    if stop == signal.SIGTERM:
        assert code == 0, first.log_path.read_text()
    sent_by_first = len(receiver.requests)
    assert sent_by_first < len(expected) / BATCH, "the first worker must be stopped mid-stream"
    second = worker_process("second")
    _wait(
        lambda: stream_row(owner_engine, sid)["cursor_seq"] == expected[-1],
        60,
        lambda: (
            f"the stream to catch up (cursor {stream_row(owner_engine, sid)['cursor_seq']}); log:\n{second.log_path.read_text()}"
        ),
    )
    took = time.monotonic() - started
    second.send_signal(signal.SIGTERM)
    second.wait(30)

    for r in receiver.requests:
        Webhook(secret).verify(r.body, r.headers, json_parse=False)
    batches: dict[str, list[int]] = {}
    per_id = Counter()
    for r in receiver.requests:
        seqs = [json.loads(line)["seq"] for line in r.body.decode().splitlines()]
        bid = r.headers["webhook-id"]
        per_id[bid] += 1
        assert batches.setdefault(bid, seqs) == seqs, "a repeated batch id carries the very same events"
    deduped = sorted(s for seqs in batches.values() for s in seqs)
    assert deduped == expected, "after dedupe by batch id: none lost, none twice"
    raw = Counter(s for r in receiver.requests for s in (json.loads(x)["seq"] for x in r.body.decode().splitlines()))
    return per_id, raw, took


def test_drill_graceful_restart_loses_nothing_and_sends_nothing_twice(
    enterprise, loopback, receiver, seal, owner_engine, worker_process
):
    per_id, raw, took = _drill(enterprise, receiver, seal, owner_engine, worker_process, signal.SIGTERM)
    assert max(per_id.values()) == 1 and max(raw.values()) == 1, "a graceful stop sends no batch twice"
    print(f"graceful drill: {sum(raw.values())} events in {len(per_id)} batches, {took:.1f} s")


def test_drill_killed_worker_repeats_one_batch_under_the_same_id(
    enterprise, loopback, receiver, seal, owner_engine, worker_process
):
    per_id, raw, took = _drill(enterprise, receiver, seal, owner_engine, worker_process, signal.SIGKILL)
    repeated = [bid for bid, n in per_id.items() if n > 1]
    assert len(repeated) == 1 and per_id[repeated[0]] == 2, per_id
    print(f"kill drill: {len(raw)} events, {len(per_id)} batch ids, 1 repeated ({repeated[0]}), {took:.1f} s")

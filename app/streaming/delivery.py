"""Sending a stream's sealed audit events: the job, its lock, the cursor, retries.

* **What is sent**: the organization's sealed events in seal order
  (``audit_seals.seq``), never an unsealed one. The sealer hands out ``seq``
  without gaps and only to finished transactions, so the sealed events are
  always a prefix ``1..max`` of the log and no event ever appears below a
  sequence already seen (the high-water-mark argument of
  ``app.audit.rollups``): ``seq > cursor`` is exactly "not sent yet", and a
  transaction that commits late is sent late, never skipped.
* **One batch at a time per stream.** A job holds the stream's
  session-level advisory lock (on a connection of its own, *outside* any
  transaction, so no transaction stays open while a destination answers -
  an open transaction would hold the sealer back for every organization).
  A second job finds the lock taken and leaves: two workers never send two
  batches of one stream at once. A killed worker's connection dies with it,
  and PostgreSQL releases its lock.
* **A batch is fixed before it is sent.** In one short transaction the job
  reads the stream, picks the next batch ``(cursor, through]`` (at most
  ``AUDIT_STREAM_BATCH`` events) and writes ``inflight_through = through``;
  it commits, then sends. A batch sent again (a worker killed after the send
  and before the cursor moved) is the same range, so it carries the same
  batch id (``formats.batch_id``).
* **The cursor moves only after a 2xx**, in its own short transaction
  (``cursor_seq = through``, compare-and-set on the old cursor).
* **Failures** (another status, a timeout, a refused address...) keep the
  cursor, note the error and back off: 5 s, 10 s, 20 s ... up to 10 min
  (±10 %), the retry's job scheduled for then; after five days of nothing
  but failures the stream is disabled (audited, by ``streaming``) and the
  members who may manage streams are e-mailed, as webhooks do.
* **Delivery guarantee**: at-least-once on the wire, exactly-once per batch
  id. A graceful stop (SIGTERM) finishes the batch in hand and moves the
  cursor, so nothing is sent twice; a kill between a 2xx and the cursor's
  commit repeats that one batch, under the same ``webhook-id`` /
  ``tenantry-batch-id``, which the receiver dedupes by.
* **Kicks**: ``wake`` (a job per stream, at most one waiting) after a save,
  an enable, a retry's time; ``streaming.sweep`` every 5 seconds wakes every
  enabled, due stream whose organization has sealed events past its cursor.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, text, update

from app import audit, crypto, jobs
from app.auditlog.services import sealed_events
from app.errors import UserError
from app.extensions import db
from app.scoping import current_org_id
from app.streaming import formats
from app.streaming.models import AuditStream
from app.tenancy import notify
from app.tenancy.models import Organization
from app.util import parse_uuid, utcnow
from app.web import hosts
from app.webhooks import guard
from app.webhooks.delivery import Outcome, post

log = logging.getLogger("tenantry.streaming")

# One job sends batches for at most this long, then hands on to a fresh job
# (a stopping worker waits for one batch at most; other streams get turns).
JOB_SECONDS = 5.0
BACKOFF_BASE = 5
BACKOFF_CAP = 600
JITTER = 0.1
AUTO_DISABLE_AFTER = timedelta(days=5)
WAKE_LOCK = "streaming.deliver:"
ERROR_KEEP = 1000


def backoff(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row (with jitter)."""
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, failures - 1))
    return base * random.uniform(1 - JITTER, 1 + JITTER)


@contextlib.contextmanager
def stream_lock(stream_id):
    """Hold the stream's lock for the block (yields ``False`` when another
    job holds it). Session-level, on a connection of its own and outside any
    transaction; released at the end, or by PostgreSQL when the process dies."""
    conn = db.engine.connect()
    key = {"k": f"tenantry-stream:{stream_id}"}
    got = False
    try:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), key).scalar())
        conn.commit()
        yield got
    finally:
        try:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), key)
                conn.commit()
        except Exception:
            conn.invalidate()  # never hand a connection still holding the lock back to the pool
        conn.close()


@jobs.task("streaming.deliver", queue_name="streaming")
def deliver(stream_id: str | None = None, due_by: str | None = None) -> str:
    """Send the stream's next batches, one at a time, for at most
    ``JOB_SECONDS``; then hand on to a fresh job if more are waiting. Sends
    nothing when another job holds the stream (it goes on), or for a stream
    that is gone, disabled or waiting for a retry (``due_by``: a retry's job,
    due by then). Returns how many events it delivered."""
    sid = parse_uuid(str(stream_id)) if stream_id else None
    if sid is None:
        return "0 events"
    until = datetime.fromisoformat(due_by) if due_by else None
    sent = 0
    with stream_lock(sid) as held:
        if not held:
            return "0 events (another job holds the stream)"
        deadline = time.monotonic() + JOB_SECONDS
        while True:
            n, more = send_batch(sid, until)
            sent += n
            if not more:
                break
            if time.monotonic() >= deadline:
                wake([sid])
                db.session.commit()
                break
    return f"{sent} events"


def _next_through(org_id, after: int, size: int) -> int | None:
    """The last seq of the next batch after ``after`` (at most ``size`` events), or ``None``."""
    return db.session.execute(
        text(
            "SELECT max(seq) FROM (SELECT seq FROM audit_seals WHERE organization_id = :o AND seq > :a"
            " ORDER BY seq LIMIT :n) b"
        ),
        {"o": org_id, "a": after, "n": size},
    ).scalar()


def send_batch(sid, until: datetime | None = None) -> tuple[int, bool]:
    """Send one batch of the stream (the caller holds its lock). Returns
    ``(events delivered, whether to go on)``. No transaction is open while
    the destination answers."""
    now = utcnow()
    stream = db.session.execute(
        select(AuditStream).where(AuditStream.id == sid).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    due_at = max(now, until) if until else now
    if stream is None or not stream.enabled or (stream.next_attempt_at is not None and stream.next_attempt_at > due_at):
        db.session.commit()
        return 0, False
    org_id = current_org_id()
    after, through = stream.cursor_seq, stream.inflight_through
    if through is None or through <= after:
        through = _next_through(org_id, after, current_app.config["AUDIT_STREAM_BATCH"])
        if through is None:
            db.session.commit()
            return 0, False
        db.session.execute(
            update(AuditStream)
            .where(AuditStream.id == sid, AuditStream.cursor_seq == after)
            .values(inflight_through=through)
            .execution_options(synchronize_session=False)
        )
    events = sealed_events(org_id, after, through)
    kind, url, secret = stream.kind, stream.url, crypto.decrypt(stream.secret_encrypted).decode()
    org = db.session.get(Organization, org_id)
    host = hosts.org_host(org)
    db.session.commit()  # the batch is fixed; nothing stays open while the destination answers
    if not events:  # the range was purged by retention meanwhile: nothing to send
        _advance(sid, after, through, 0, now)
        return 0, True
    request = formats.build(kind, url, secret, sid, after, through, events, host, utcnow())
    cfg = current_app.config
    try:
        guard.check_url(request.url)  # again: the name may resolve elsewhere since it was saved
    except UserError as e:
        outcome = Outcome(False, latency_ms=0, error=e.message)
    else:
        outcome = post(
            request.url, request.body, request.headers, cfg["WEBHOOKS_TIMEOUT_SECONDS"], guard.loopback_allowed()
        )
    if outcome.success:
        _advance(sid, after, through, len(events), utcnow())
        return len(events), True
    _failed(sid, outcome, utcnow())
    return 0, False


def _advance(sid, after: int, through: int, count: int, now: datetime) -> None:
    """Move the cursor past the batch (only from ``after``: a cursor moved
    meanwhile is left alone), in its own transaction."""
    db.session.execute(
        update(AuditStream)
        .where(AuditStream.id == sid, AuditStream.cursor_seq == after)
        .values(
            cursor_seq=through,
            inflight_through=None,
            delivered_count=AuditStream.delivered_count + count,
            last_success_at=now,
            failure_count=0,
            failing_since=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _failed(sid, outcome: Outcome, now: datetime) -> None:
    """Note a failed batch: the error, the streak, the next attempt (its job
    scheduled); after ``AUTO_DISABLE_AFTER`` of failures, disable and tell
    the admins. One transaction."""
    stream = db.session.execute(
        select(AuditStream).where(AuditStream.id == sid).execution_options(populate_existing=True)
    ).scalar_one()
    error = (outcome.error or "failed")[:ERROR_KEEP]
    if outcome.status_code:
        error = f"{error} {outcome.response_body[:300]}".strip()[:ERROR_KEEP]
    failing_since = stream.failing_since or now
    failures = stream.failure_count + 1
    due = now + timedelta(seconds=backoff(failures))
    db.session.execute(
        update(AuditStream)
        .where(AuditStream.id == sid)
        .values(
            failure_count=failures,
            failing_since=failing_since,
            last_failure_at=now,
            last_error=error,
            next_attempt_at=due,
        )
        .execution_options(synchronize_session=False)
    )
    if now - failing_since >= AUTO_DISABLE_AFTER and stream.enabled:
        _disable_failing(stream, failing_since)
    else:
        wake([sid], at=due)
    db.session.commit()
    log.info("audit stream %s: batch failed (%s); next attempt at %s", sid, error[:200], due.isoformat())


def _disable_failing(stream: AuditStream, failing_since: datetime) -> None:
    done = db.session.execute(
        update(AuditStream)
        .where(AuditStream.id == stream.id, AuditStream.enabled.is_(True))
        .values(enabled=False, disabled_reason="failing", next_attempt_at=None, version=AuditStream.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        return
    audit.record(
        "audit_stream.disabled",
        target=stream,
        before={"enabled": True},
        after={"enabled": False},
        metadata={"reason": "failing", "failing_since": failing_since},
        actor="streaming",
    )
    org = db.session.get(Organization, current_org_id())
    notify.mail_recipients(
        org,
        "audit_stream_disabled",
        f"An audit stream of {org.name} was disabled",
        "audit_stream_disabled",
        ("streaming.show", {"stream_id": stream.id}),
        stream=stream,
        days=AUTO_DISABLE_AFTER.days,
    )
    log.warning("audit stream %s disabled after five days of failures", stream.id)


# One wake-up per stream waits at a time (its queueing lock); a retry's job
# carries its time in the lock, so it neither blocks nor is blocked by others.
_WAKE = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, queueing_lock, args, scheduled_at)"
    " SELECT CAST(:queue AS text), CAST(:task AS text), CAST(:priority AS integer),"
    " CAST(:lock AS text) || s || COALESCE('@' || CAST(:due_by AS text), ''),"
    " jsonb_strip_nulls(jsonb_build_object("
    "'stream_id', s, 'due_by', CAST(:due_by AS text), CAST(:org_key AS text), CAST(:org AS text))),"
    " CAST(:at AS timestamptz)"
    " FROM unnest(CAST(:streams AS text[])) AS s"
    " ON CONFLICT DO NOTHING"
)


def wake(stream_ids, at: datetime | None = None, org_id=None) -> None:
    """Make sure a job will send these streams' next batches (now, or at
    ``at`` for a retry), in the current transaction of ``db.session``. Never
    fails because one already waits."""
    org = org_id or current_org_id()
    db.session.execute(
        _WAKE,
        {
            "queue": deliver.queue,
            "task": deliver.name,
            "priority": deliver.priority,
            "lock": WAKE_LOCK,
            "due_by": at.isoformat() if at is not None else None,
            "org_key": jobs.ORG_KEY,
            "org": str(org) if org else None,
            "streams": [str(s) for s in stream_ids],
            "at": at,
        },
    )


def lag(stream: AuditStream) -> int:
    """Sealed events of the organization past the stream's cursor (events
    behind): the newest seal's seq minus the cursor (seals have no gaps)."""
    newest = db.session.execute(
        text("SELECT coalesce(max(seq), 0) FROM audit_seals WHERE organization_id = :o"),
        {"o": stream.organization_id},
    ).scalar_one()
    return max(0, newest - stream.cursor_seq)


def newest_seq(org_id) -> int:
    """The organization's newest seal (0 when none)."""
    return db.session.execute(
        text("SELECT coalesce(max(seq), 0) FROM audit_seals WHERE organization_id = :o"), {"o": org_id}
    ).scalar_one()

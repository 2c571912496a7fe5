"""Sending webhook deliveries: the job, Standard Webhooks signing, the retry schedule.

* **Deliveries are the queue; a job drains one endpoint.** An event stores
  one delivery per subscribed endpoint, due at once (``next_attempt_at``),
  and wakes that endpoint's job, ``webhooks.deliver(endpoint_id)``, all in
  the event's transaction (``services.enqueue_for_event``); at most one
  wake-up waits per endpoint (procrastinate's queueing lock), so a burst of
  events costs one job, not one per event. The job runs in the
  organization's scope, so it reads only that organization's endpoint.
* **A batch per transaction.** The job claims up to ``BATCH`` due
  deliveries of its endpoint (``FOR UPDATE SKIP LOCKED``: two jobs of one
  endpoint never take the same delivery), checks the URL with the SSRF
  guard once for the batch, posts them (``WEBHOOKS_SENDERS`` at a time, each
  sender keeping its connection alive), stores every attempt and the
  deliveries' new state, and commits; then the next batch, for at most
  ``JOB_SECONDS``, after which it hands on to a fresh job (a stopping worker
  waits for one batch at most). A batch stops posting after
  ``BATCH_SECONDS`` (a hanging receiver): what it did not post stays due.
* **Signed per Standard Webhooks** with the ``standardwebhooks`` library:
  headers ``webhook-id`` (the delivery's id, the same on every attempt),
  ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64>``; during
  the 24 hours after a rotation, one signature per valid secret, separated
  by a space); the body is the stored payload ``{"type", "timestamp", "data"}``.
* **Any 2xx is success.** Anything else - another status, a timeout
  (10 s), a refused or reset connection, a blocked address, garbage - is a
  failed attempt, stored like a success (status, latency, the first 1 KB of
  the response, the error), never an exception out of the job.
* **Retries on the Standard Webhooks schedule**: immediately, then 5 s,
  5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10 % jitter, so one outage's
  deliveries do not all return in the same second), kept per delivery in
  ``next_attempt_at``; when a job ends it schedules the endpoint's next job
  for the earliest retry (``due_by``: that job sends what is due by then).
  After the eighth failure the delivery stays ``failed`` (resend or replay
  it from the page).
* **Nothing is lost, a success is never repeated.** A delivery is claimed,
  attempted and recorded in one transaction: a worker killed mid-batch
  leaves its deliveries unclaimed and due (the receiver may then see the
  batch's webhook-ids again; a delivery recorded as succeeded is never
  sent again), and stalled-job recovery runs the job again. A periodic
  ``webhooks.sweep`` wakes any endpoint whose due deliveries have waited a
  minute with no job (our own outage, a job that failed).
* **Auto-disable**: an endpoint whose attempts have all failed for five
  days is disabled (audited, by ``system``), and the organization's members
  who may manage webhooks are e-mailed; a person re-enables it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from flask import current_app
from sqlalchemy import func, insert, select, text, update
from standardwebhooks import Webhook

from app import audit, crypto, jobs
from app.errors import UserError
from app.extensions import db
from app.scoping import current_org_id
from app.tenancy import notify
from app.tenancy.models import Organization
from app.util import parse_uuid, utcnow
from app.webhooks import guard
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("tenantry.webhooks")

# Seconds to wait before attempt n+1 after attempt n failed (Standard
# Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.1
RESPONSE_KEEP = 1024
AUTO_DISABLE_AFTER = timedelta(days=5)
TEST_EVENT = "webhook.test"

# Deliveries claimed, posted and recorded per transaction: a worker killed
# mid-batch makes the receiver see at most this many webhook-ids again.
BATCH = 50
# A batch stops posting after this long (a hanging receiver); the rest stay due.
BATCH_SECONDS = 2.0
# One job drains its endpoint for at most this long, then a fresh job goes
# on: a worker told to stop waits for one batch, and other endpoints get turns.
JOB_SECONDS = 5.0
# The queueing lock of an endpoint's wake-up job: at most one waits.
WAKE_LOCK = "webhooks.deliver:"


def next_delay(round_attempts: int) -> float | None:
    """Seconds before the next attempt after ``round_attempts`` failures in
    this round, with jitter; ``None`` once the schedule is exhausted."""
    if round_attempts < 1 or round_attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[round_attempts - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


# --------------------------------------------------------------------------- signing
def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the
    previous one while its 24 hours after a rotation last."""
    now = now or utcnow()
    out = [crypto.decrypt(endpoint.secret_encrypted).decode()]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and now < endpoint.previous_secret_expires_at
    ):
        out.append(crypto.decrypt(endpoint.previous_secret_encrypted).decode())
    return out


def signed_headers(webhook_id: str, payload: str, secrets: list[str], when: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one ``v1`` signature per secret."""
    return _headers([Webhook(s) for s in secrets], webhook_id, payload, when)


def _headers(signers: list[Webhook], webhook_id: str, payload: str, when: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(w.sign(webhook_id, when, payload) for w in signers),
    }


# --------------------------------------------------------------------------- one attempt
@dataclass
class Outcome:
    success: bool
    status_code: int | None = None
    latency_ms: int | None = None
    response_headers: dict = field(default_factory=dict)
    response_body: str = ""
    error: str | None = None


_local = threading.local()
BASE_HEADERS = {
    "user-agent": guard.USER_AGENT,
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
}


def _session(timeout: float, allow_loopback: bool | None = None):
    """One hardened HTTP client per thread (its connections are kept alive
    between deliveries to the same receiver), rebuilt when its settings change."""
    if allow_loopback is None:
        allow_loopback = guard.loopback_allowed()
    key = (timeout, allow_loopback)
    if getattr(_local, "key", None) != key:
        old = getattr(_local, "session", None)
        if old is not None:
            old.close()
        _local.session, _local.key = guard.session(timeout, allow_loopback=allow_loopback), key
    return _local.session


def post(url: str, payload: str, headers: dict, timeout: float, allow_loopback: bool = False) -> Outcome:
    """POST ``payload`` to ``url`` through the hardened client (it resolves
    the host, refuses a blocked address and connects to the address it
    checked; no redirect is followed). Never raises: a refused address, a
    timeout, a reset connection or any other failure is an ``Outcome`` with
    ``error`` set. Needs no application context (it runs on sender threads)."""
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        # Prepared without the session's merging of cookies, auth and
        # environment (a third of the client's time per request): a webhook
        # carries only these headers, and a receiver's cookies never come back.
        request = requests.Request("POST", url, data=payload.encode(), headers={**BASE_HEADERS, **headers}).prepare()
        response = _session(timeout, allow_loopback).send(request, stream=True)
        # Read one byte more than is kept: a body that ended by then leaves the
        # connection reusable for the next delivery (keep-alive); a longer one
        # is not read further (a receiver cannot make us download gigabytes),
        # and its connection is closed.
        raw = b""
        try:
            raw = response.raw.read(RESPONSE_KEEP + 1, decode_content=True) or b""
        finally:
            if len(raw) <= RESPONSE_KEEP:
                response.raw.release_conn()
            else:
                response.close()
        code = response.status_code
        outcome = Outcome(
            success=200 <= code < 300,
            status_code=code,
            latency_ms=took(),
            response_headers={k: v[:500] for k, v in list(response.headers.items())[:30]},
            response_body=raw[:RESPONSE_KEEP].decode("utf-8", "replace").replace("\x00", ""),
        )
        if 300 <= code < 400:
            outcome.error = "Redirects are not followed: point the endpoint at the final URL."
        elif not outcome.success:
            outcome.error = f"The receiver answered HTTP {code}."
        return outcome
    except requests.Timeout:
        return Outcome(False, latency_ms=took(), error=f"No answer within {timeout:g} seconds.")
    except requests.ConnectionError as e:
        return Outcome(False, latency_ms=took(), error=f"Could not connect: {_short(e)}")
    except Exception as e:  # garbage on the wire, or anything else: a failed attempt, not a crashed worker
        return Outcome(False, latency_ms=took(), error=f"{type(e).__name__}: {_short(e)}")


def _short(e: BaseException) -> str:
    return str(e).replace("\x00", "")[:500]


_senders: ThreadPoolExecutor | None = None
_senders_size = 0
_senders_lock = threading.Lock()


def _sender_pool(size: int) -> ThreadPoolExecutor:
    """The worker process's sender threads, shared by its jobs, made on first
    use; their HTTP clients (and kept-alive connections) live as long."""
    global _senders, _senders_size
    with _senders_lock:
        if _senders is None or _senders_size < size:
            if _senders is not None:
                _senders.shutdown(wait=False)  # its threads end once their current lanes do
            _senders = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-sender")
            _senders_size = size
        return _senders


def _post_all(n: int, send, senders: int, jobs_at_once: int) -> list:
    """``[send(0), ..., send(n-1)]`` with at most ``senders`` running at once
    for this job. The shared pool has room for that many per job the worker
    runs at once, so a hanging receiver holds its own job's senders only,
    never another endpoint's."""
    if senders <= 1 or n <= 1:
        return [send(i) for i in range(n)]
    results: list = [None] * n
    indices = iter(range(n))
    lock = threading.Lock()

    def lane() -> None:
        while True:
            with lock:
                i = next(indices, None)
            if i is None:
                return
            results[i] = send(i)

    pool = _sender_pool(senders * max(1, jobs_at_once))
    for f in [pool.submit(lane) for _ in range(min(senders, n))]:
        f.result()
    return results


# --------------------------------------------------------------------------- the job
@jobs.task("webhooks.deliver", queue_name="webhooks")
def deliver(endpoint_id: str | None = None, due_by: str | None = None, delivery_id: str | None = None) -> str:
    """Send the endpoint's due deliveries, a batch per transaction, for at
    most ``JOB_SECONDS``; then wake a fresh job if some are still due, or
    schedule one for the earliest retry. ``due_by`` (a retry's job) also
    sends what is due by then. Returns how many attempts it made.

    Sends nothing for an endpoint that is gone or disabled (its deliveries
    wait; re-enabling it wakes them). ``delivery_id``: a job queued before
    deliveries were batched, which drains that delivery's endpoint.
    """
    if endpoint_id is None and delivery_id is not None:
        did = parse_uuid(delivery_id)
        endpoint_id = db.session.execute(
            select(WebhookDelivery.endpoint_id).where(WebhookDelivery.id == did)
        ).scalar_one_or_none()
    eid = parse_uuid(str(endpoint_id)) if endpoint_id is not None else None
    if eid is None:
        return "0 attempts"
    until = datetime.fromisoformat(due_by) if due_by else None
    deadline = time.monotonic() + JOB_SECONDS
    made = 0
    while True:
        n, more = send_batch(eid, until)
        made += n
        if not more:
            break
        if time.monotonic() >= deadline:
            wake([eid])  # a fresh job goes on (committed by the job's end)
            return f"{made} attempts"
    schedule_next(eid)
    return f"{made} attempts"


def _claim(eid: uuid.UUID, until: datetime | None) -> list:
    """Lock up to ``BATCH`` due deliveries of the endpoint, oldest due first,
    skipping those another job holds. Rows: id, payload, attempts, round_attempts."""
    due = func.now() if until is None else func.greatest(func.now(), until)
    return list(
        db.session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.payload,
                WebhookDelivery.attempts,
                WebhookDelivery.round_attempts,
            )
            .where(
                WebhookDelivery.endpoint_id == eid,
                WebhookDelivery.next_attempt_at.is_not(None),
                WebhookDelivery.next_attempt_at <= due,
                WebhookDelivery.status != "succeeded",
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
    )


def send_batch(eid: uuid.UUID, until: datetime | None = None) -> tuple[int, bool]:
    """One transaction: claim up to ``BATCH`` due deliveries of the endpoint,
    post them, store each attempt and what follows, commit. Returns
    ``(attempts made, whether more may be due)``."""
    endpoint = db.session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.id == eid).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if endpoint is None or not endpoint.enabled:
        db.session.commit()
        return 0, False
    batch = _claim(eid, until)
    if not batch:
        db.session.commit()
        return 0, False
    cfg = current_app.config
    timeout, loopback = cfg["WEBHOOKS_TIMEOUT_SECONDS"], guard.loopback_allowed()
    now = utcnow()
    signers = [Webhook(s) for s in signing_secrets(endpoint, now)]
    headers = [_headers(signers, f"msg_{d.id.hex}", d.payload, now) for d in batch]
    try:
        guard.check_url(endpoint.url)  # once per batch: the name may resolve elsewhere since it was saved
        refused = None
    except UserError as e:  # a blocked address, a name that no longer resolves
        refused = e.message
    if refused is not None:
        outcomes: list[Outcome | None] = [Outcome(False, latency_ms=0, error=refused) for _ in batch]
    else:
        stop_at = time.monotonic() + BATCH_SECONDS

        def send(i: int) -> Outcome | None:
            if time.monotonic() >= stop_at:
                return None  # not attempted: stays due for the next batch
            return post(endpoint.url, batch[i].payload, headers[i], timeout, loopback)

        outcomes = _post_all(len(batch), send, cfg["WEBHOOKS_SENDERS"], cfg["JOBS_CONCURRENCY"])
    made = _record(endpoint, batch, headers, outcomes, now)
    db.session.commit()
    skipped = made < len(batch)
    return made, skipped or len(batch) == BATCH


def _record(endpoint: WebhookEndpoint, batch, headers, outcomes, now: datetime) -> int:
    """Store the attempts of a batch and each delivery's next step; the
    endpoint's failing streak and, after five days of it, the auto-disable."""
    tried = [(d, h, o) for d, h, o in zip(batch, headers, outcomes, strict=True) if o is not None]
    if not tried:
        return 0
    any_success = any(o.success for _, _, o in tried)
    disabled = False
    if any_success:
        if endpoint.failing_since is not None:
            _set_failing_since(endpoint.id, None)
    else:
        disabled = _note_failure(endpoint, now)
    org = current_org_id()
    attempts, updates = [], []
    for d, h, o in tried:
        attempts.append(
            {
                "organization_id": org,
                "id": uuid.uuid4(),
                "delivery_id": d.id,
                "attempted_at": now,
                "success": o.success,
                "status_code": o.status_code,
                "latency_ms": o.latency_ms,
                "request_headers": h,
                "response_headers": o.response_headers,
                "response_body": o.response_body,
                "error": o.error,
            }
        )
        if o.success:
            status, due = "succeeded", None
        else:
            delay = None if disabled else next_delay(d.round_attempts + 1)
            status, due = "failed", (now + timedelta(seconds=delay) if delay is not None else None)
        updates.append(
            {
                "organization_id": org,
                "id": d.id,
                "status": status,
                "attempts": d.attempts + 1,
                "round_attempts": d.round_attempts + 1,
                "last_attempt_at": now,
                "next_attempt_at": due,
            }
        )
    # Two statements for the whole batch (the rows are locked by the claim,
    # so the counters read with them are current).
    db.session.execute(insert(WebhookAttempt), attempts)
    db.session.execute(update(WebhookDelivery), updates)
    return len(tried)


def schedule_next(eid: uuid.UUID) -> None:
    """Schedule the endpoint's job for its earliest waiting retry (none for a
    disabled endpoint, or when nothing waits); committed here."""
    enabled = db.session.execute(select(WebhookEndpoint.enabled).where(WebhookEndpoint.id == eid)).scalar_one_or_none()
    if enabled:
        at = db.session.execute(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.endpoint_id == eid,
                WebhookDelivery.next_attempt_at.is_not(None),
                WebhookDelivery.next_attempt_at > func.now(),
            )
        ).scalar_one_or_none()
        if at is not None:
            wake([eid], at=at)
    db.session.commit()


# One wake-up per endpoint waits at a time (its queueing lock): an INSERT that
# finds one waiting does nothing. A retry's job carries its time in the lock,
# so it neither blocks nor is blocked by the wake-ups of new events.
_WAKE = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, queueing_lock, args, scheduled_at)"
    " SELECT CAST(:queue AS text), CAST(:task AS text), CAST(:priority AS integer),"
    " CAST(:lock AS text) || e || COALESCE('@' || CAST(:due_by AS text), ''),"
    " jsonb_strip_nulls(jsonb_build_object("
    "'endpoint_id', e, 'due_by', CAST(:due_by AS text), CAST(:org_key AS text), CAST(:org AS text))),"
    " CAST(:at AS timestamptz)"
    " FROM unnest(CAST(:endpoints AS text[])) AS e"
    " ON CONFLICT DO NOTHING"
)


def wake(endpoint_ids, at: datetime | None = None, org_id=None) -> None:
    """Make sure a job will send these endpoints' due deliveries (now, or at
    ``at`` for a retry: that job sends what is due by then), in the current
    transaction of ``db.session``. Never fails because one already waits."""
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
            "endpoints": [str(e) for e in endpoint_ids],
            "at": at,
        },
    )


# --------------------------------------------------------------------------- the failing streak
def _set_failing_since(endpoint_id, value) -> None:
    # A plain UPDATE, not the ORM's versioned one: concurrent deliveries to one
    # endpoint must not make each other stale, and this is not a person's edit.
    db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(failing_since=value)
        .execution_options(synchronize_session=False)
    )


def _note_failure(endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Remember when the endpoint started failing; disable it after five
    days of nothing but failures. True when this call disabled it."""
    if endpoint.failing_since is None:
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
            .execution_options(synchronize_session=False)
        )
        return False
    if now - endpoint.failing_since < AUTO_DISABLE_AFTER or not endpoint.enabled:
        return False
    # Exactly one job disables it, however many fail at once.
    done = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason="failing", version=WebhookEndpoint.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        return False
    audit.record(
        "webhook.disabled",
        target=endpoint,
        before={"enabled": True},
        after={"enabled": False},
        metadata={"reason": "failing", "failing_since": endpoint.failing_since},
        actor="webhooks",
    )
    _mail_admins(endpoint)
    log.warning("webhook endpoint %s disabled after five days of failures", endpoint.id)
    return True


def _mail_admins(endpoint: WebhookEndpoint) -> None:
    """Tell the members who may manage webhooks, and did not turn this mail
    off (``app.tenancy.notify``: ``webhook_disabled``), that the endpoint was disabled."""
    org = db.session.get(Organization, current_org_id())
    notify.mail_recipients(
        org,
        "webhook_disabled",
        f"A webhook endpoint of {org.name} was disabled",
        "webhook_disabled",
        ("webhooks.show", {"endpoint_id": endpoint.id}),
        endpoint=endpoint,
        days=AUTO_DISABLE_AFTER.days,
    )

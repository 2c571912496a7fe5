"""Sending one webhook delivery: the job, Standard Webhooks signing, the retry schedule.

* **One job per (event, endpoint)**, ``webhooks.deliver``, enqueued in the
  event's transaction (``services.enqueue_for_event``). It runs in the
  organization's scope, so it reads only that organization's endpoint.
* **Signed per Standard Webhooks** with the ``standardwebhooks`` library:
  headers ``webhook-id`` (the delivery's id, the same on every attempt),
  ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64>``; during
  the 24 hours after a rotation, one signature per valid secret, separated
  by a space); the body is the stored payload ``{"type", "timestamp", "data"}``.
* **Any 2xx is success.** Anything else - another status, a timeout
  (10 s), a refused or reset connection, a blocked address, garbage - is a
  failed attempt, stored like a success (status, latency, the first 1 KB of
  the response, the error) and never an exception that escapes the job
  except the one that asks for the next attempt.
* **Retries on the Standard Webhooks schedule**: immediately, then 5 s,
  5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10 % jitter, so one outage's
  deliveries do not all return in the same second); after the eighth
  failure the delivery stays ``failed`` (resend or replay it from the page).
* The attempt is committed before the job asks procrastinate for the retry,
  so the log keeps it; a worker killed mid-attempt leaves the job to be run
  again (the receiver may see the same ``webhook-id`` twice; a delivery
  that already succeeded is never sent again).
* **Auto-disable**: an endpoint whose attempts have all failed for five
  days is disabled (audited, by ``system``), and the organization's members
  who may manage webhooks are e-mailed; a person re-enables it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import procrastinate
import requests
from flask import current_app, url_for
from procrastinate.retry import RetryDecision
from sqlalchemy import select, update
from standardwebhooks import Webhook

from app import audit, crypto, jobs
from app.errors import UserError
from app.extensions import db
from app.mail import queue_mail
from app.scoping import current_org_id
from app.tenancy.models import Membership, Organization
from app.util import utcnow
from app.web import hosts
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


class AttemptFailed(Exception):
    """This attempt failed and another is due in ``retry_in`` seconds (the job's retry)."""

    def __init__(self, message: str, retry_in: float):
        super().__init__(message)
        self.retry_in = retry_in


class DeliveryRetry(procrastinate.BaseRetryStrategy):
    """The next attempt when the receiver failed (``AttemptFailed`` says
    when); for our own failures (the database away), 30 s doubling to 1 h,
    ten times, so an outage of ours loses no delivery either."""

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        if isinstance(exception, AttemptFailed):
            return RetryDecision(retry_in={"seconds": max(1, round(exception.retry_in))})
        if job.attempts + 1 >= 10:
            return None
        return RetryDecision(retry_in={"seconds": min(3600, 30 * 2**job.attempts)})


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
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(webhook_id, when, payload) for s in secrets),
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


def _session(timeout: float):
    """One hardened HTTP client per worker thread (connections are reused
    between deliveries to the same receiver), rebuilt when its settings change."""
    key = (timeout, guard.loopback_allowed())
    if getattr(_local, "key", None) != key:
        old = getattr(_local, "session", None)
        if old is not None:
            old.close()
        _local.session, _local.key = guard.session(timeout), key
    return _local.session


def post(url: str, payload: str, headers: dict, timeout: float) -> Outcome:
    """POST ``payload`` to ``url`` through the SSRF guard. Never raises: a
    refused address, a timeout, a reset connection or any other failure is an
    ``Outcome`` with ``error`` set."""
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        guard.check_url(url)  # again at delivery: the name may resolve elsewhere now
        response = _session(timeout).post(url, data=payload.encode(), headers=headers, stream=True)
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
    except UserError as e:  # refused by the guard (blocked address, unknown host)
        return Outcome(False, latency_ms=took(), error=e.message)
    except requests.Timeout:
        return Outcome(False, latency_ms=took(), error=f"No answer within {timeout:g} seconds.")
    except requests.ConnectionError as e:
        return Outcome(False, latency_ms=took(), error=f"Could not connect: {_short(e)}")
    except Exception as e:  # garbage on the wire, or anything else: a failed attempt, not a crashed worker
        return Outcome(False, latency_ms=took(), error=f"{type(e).__name__}: {_short(e)}")


def _short(e: BaseException) -> str:
    return str(e).replace("\x00", "")[:500]


# --------------------------------------------------------------------------- the job
@jobs.task("webhooks.deliver", queue_name="webhooks", retry=DeliveryRetry())
def deliver(delivery_id: str) -> str:
    """Make the next attempt of one delivery; returns its status.

    Does nothing for a delivery that already succeeded, is gone, or whose
    endpoint is disabled (it stays as it is; an admin resends it later).
    """
    delivery = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)).scalar_one_or_none()
    if delivery is None or delivery.status == "succeeded":
        return "skipped"
    endpoint = db.session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
    ).scalar_one_or_none()
    if endpoint is None or not endpoint.enabled:
        return "skipped"
    return attempt(endpoint, delivery)


def attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> str:
    """Send ``delivery`` to ``endpoint`` once, store the attempt, and decide what follows."""
    now = utcnow()
    headers = signed_headers(delivery.webhook_id, delivery.payload, signing_secrets(endpoint, now), now)
    outcome = post(endpoint.url, delivery.payload, headers, current_app.config["WEBHOOKS_TIMEOUT_SECONDS"])
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            success=outcome.success,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            request_headers=headers,
            response_headers=outcome.response_headers,
            response_body=outcome.response_body,
            error=outcome.error,
        )
    )
    delivery.attempts += 1
    delivery.round_attempts += 1
    delivery.last_attempt_at = now
    if outcome.success:
        delivery.status, delivery.next_attempt_at = "succeeded", None
        if endpoint.failing_since is not None:
            _set_failing_since(endpoint.id, None)
        return "succeeded"

    delivery.status = "failed"
    disabled = _note_failure(endpoint, now)
    delay = None if disabled else next_delay(delivery.round_attempts)
    delivery.next_attempt_at = now + timedelta(seconds=delay) if delay is not None else None
    if delay is None:
        return "failed"
    db.session.commit()  # keep this attempt; the exception below only schedules the next
    raise AttemptFailed(outcome.error or "failed", delay)


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
    """Tell every active member who may manage webhooks that the endpoint was disabled."""
    org = db.session.get(Organization, current_org_id())
    members = db.session.execute(select(Membership).where(Membership.status == "active")).unique().scalars().all()
    with current_app.test_request_context(base_url=hosts.apex_url("/")):
        link = hosts.org_url(org, url_for("webhooks.show", endpoint_id=endpoint.id))
    for m in members:
        if "webhooks:manage" in m.permissions and m.user is not None:
            queue_mail(
                m.user.email,
                f"A webhook endpoint of {org.name} was disabled",
                "webhook_disabled",
                user=m.user,
                org=org,
                endpoint=endpoint,
                link=link,
                days=AUTO_DISABLE_AFTER.days,
            )

"""Webhook endpoints and their deliveries: the rules every page (and, later, the API) obeys.

Like every area's services: runs inside the current organization (ORM
filter + RLS), raises ``UserError`` naming the form field with nothing
changed, records one audit event per change in the same transaction, and
never commits (the view does).

* An endpoint's URL passes the SSRF guard when saved (``guard.check_url``),
  its event types are actions of the audit catalogue (one catalogue for the
  audit viewer's filter and for webhooks), and the plan's ``max_webhooks``
  holds (``entitlements.limit``), counted under a per-organization lock so
  two simultaneous creates cannot both take the last place.
* The signing secret (``whsec_`` + 32 random bytes, base64) is returned once
  by ``create_endpoint`` / ``rotate_secret`` and stored only encrypted
  (``app.crypto``). A rotation keeps the previous secret valid for 24 hours;
  deliveries carry both signatures meanwhile.
* ``enqueue_for_event`` (connected to ``hooks.event_recorded``) turns every
  audit event an enabled endpoint subscribes to into a delivery, due now,
  and wakes its endpoint's job, in the event's transaction: a rolled-back
  change sends nothing. The organization's ``webhook_actions`` (loaded with
  it by the request's entry statement, kept by a trigger) lets an event no
  endpoint receives skip webhooks without a statement; one statement
  otherwise. Endpoint changes here expire that loaded copy.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.orm.util import identity_key

from app import audit, crypto, hooks, jobs
from app.audit import catalogue
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.scoping import current_org_id
from app.tenancy.entitlements import limit
from app.tenancy.models import Organization
from app.util import parse_uuid, utcnow
from app.webhooks import guard
from app.webhooks.delivery import TEST_EVENT, WAKE_LOCK, deliver, wake
from app.webhooks.models import DESCRIPTION_MAX, URL_MAX, WebhookAttempt, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
ROTATION_GRACE = timedelta(hours=24)
PAGE_SIZE = 50
STATUS_FILTERS = ("all", "succeeded", "failed", "pending")


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form (``whsec_`` + base64 of 32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def event_groups() -> list[tuple[str, list]]:
    """The events an endpoint may receive, grouped as the audit viewer groups them."""
    return catalogue.groups()


def _printable(text_: str) -> str:
    return "".join(ch for ch in text_ if ord(ch) >= 32)


def _clean(url, description, event_types) -> tuple[str, str, list[str]]:
    url = _printable(url or "").strip()
    if not url:
        raise UserError("Enter the URL that receives the webhooks.", "url")
    if len(url) > URL_MAX:
        raise UserError(f"Use at most {URL_MAX:,} characters.", "url")
    description = _printable(description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise UserError(f"Use at most {DESCRIPTION_MAX:,} characters.", "description")
    chosen = []
    for name in event_types or []:
        if name not in catalogue.ALL:
            raise UserError(
                f"“{str(name)[:64]}” is not an event webhooks can send: choose from the list.", "event_types"
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise UserError("Choose at least one event to send.", "event_types")
    guard.check_url(url, field="url")  # last: it resolves the host
    return url, description, sorted(chosen)


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
    }


# --------------------------------------------------------------------------- reading
def list_endpoints() -> list[WebhookEndpoint]:
    """The organization's endpoints, oldest first."""
    return list(db.session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)).scalars())


def find_endpoint(endpoint_id) -> WebhookEndpoint | None:
    """The current organization's endpoint, or ``None`` (malformed and foreign ids alike)."""
    eid = parse_uuid(endpoint_id)
    if eid is None:
        return None
    return db.session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == eid)).scalar_one_or_none()


def count_endpoints() -> int:
    return db.session.execute(select(func.count()).select_from(WebhookEndpoint)).scalar_one()


@hooks.usage_of.connect
def _endpoints_in_use(_org) -> dict[str, int]:
    """Webhook endpoints in use against ``max_webhooks`` (plan and usage pages, the platform console)."""
    return {"max_webhooks": count_endpoints()}


# --------------------------------------------------------------------------- writing
def create_endpoint(org, url: str, description: str, event_types) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its signing secret (to show once). Raises ``UserError``."""
    url, description, event_types = _clean(url, description, event_types)
    # One create at a time per organization, so the count below is the truth.
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"webhooks:{org.id}"})
    most = limit(org, "max_webhooks")
    if most is not None and count_endpoints() >= most:
        raise UserError(
            f"Your plan allows {most} webhook endpoint{'s' if most != 1 else ''}: "
            "delete one, or change plans, to add another.",
            "url",
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        description=description,
        event_types=event_types,
        enabled=True,
        secret_encrypted=crypto.encrypt(secret),
    )
    db.session.add(endpoint)
    db.session.flush()
    _forget_actions()
    audit.record("webhook.created", target=endpoint, after=_snapshot(endpoint))
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, url: str, description: str, event_types, version=None) -> dict:
    """Apply an edit; ``{field: (before, after)}`` of what changed. Stale version: ``StaleEdit`` (409)."""
    url, description, event_types = _clean(url, description, event_types)
    lock_for_edit(endpoint, version)
    wanted = {"url": url, "description": description, "event_types": event_types}
    changes = {}
    for key, value in wanted.items():
        current = list(getattr(endpoint, key)) if key == "event_types" else getattr(endpoint, key)
        if current != value:
            changes[key] = (current, value)
            setattr(endpoint, key, value)
    if changes:
        db.session.flush()
        _forget_actions()
        audit.record(
            "webhook.updated",
            target=endpoint,
            before={k: b for k, (b, _) in changes.items()},
            after={k: a for k, (_, a) in changes.items()},
        )
    return changes


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint, its deliveries and their attempts; the audit event keeps what it was."""
    audit.record("webhook.deleted", target=endpoint, before=_snapshot(endpoint))
    db.session.delete(endpoint)
    db.session.flush()
    _forget_actions()


def rotate_secret(endpoint: WebhookEndpoint, now: datetime | None = None) -> str:
    """A new signing secret (returned to show once); the current one stays
    valid for ``ROTATION_GRACE`` and deliveries carry both signatures meanwhile."""
    now = now or utcnow()
    lock_for_edit(endpoint)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_encrypted = crypto.encrypt(secret)
    db.session.flush()
    audit.record(
        "webhook.secret_rotated",
        target=endpoint,
        metadata={"previous_valid_until": endpoint.previous_secret_expires_at},
    )
    return secret


def disable_endpoint(endpoint: WebhookEndpoint) -> bool:
    """Stop sending to the endpoint (by a person). ``False`` when it already was disabled."""
    if not endpoint.enabled:
        return False
    endpoint.enabled, endpoint.disabled_reason = False, "manual"
    db.session.flush()
    _forget_actions()
    audit.record(
        "webhook.disabled",
        target=endpoint,
        before={"enabled": True},
        after={"enabled": False},
        metadata={"reason": "manual"},
    )
    return True


def enable_endpoint(endpoint: WebhookEndpoint) -> bool:
    """Send to the endpoint again (after a person's or the auto-disable). ``False`` when it was enabled."""
    if endpoint.enabled:
        return False
    reason = endpoint.disabled_reason
    endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    db.session.flush()
    _forget_actions()
    wake([endpoint.id])  # deliveries that waited while it was disabled
    audit.record(
        "webhook.enabled",
        target=endpoint,
        before={"enabled": False},
        after={"enabled": True},
        metadata={"was_disabled": reason},
    )
    return True


# --------------------------------------------------------------------------- deliveries
def payload_text(event_type: str, occurred_at: datetime, data: dict) -> str:
    """The body of a delivery: ``{"type", "timestamp", "data"}`` as compact JSON (the signed text)."""
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def event_data(row: dict) -> dict:
    """What a receiver learns of an audit event: what happened, to what, by whom, and the (redacted) change."""
    return {
        "id": row["id"],
        "action": row["action"],
        "occurred_at": row["occurred_at"].isoformat().replace("+00:00", "Z"),
        "actor": {"type": row["actor_type"], "id": _s(row["actor_id"]), "label": row["actor_label"]},
        "target": {"type": row["target_type"], "id": row["target_id"], "label": row["target_label"]},
        "changes": row["changes"],
        "metadata": row["metadata"],
        "request_id": row["request_id"],
    }


def _s(v):
    return str(v) if v is not None else None


def _known_actions(org_id) -> list[str] | None:
    """The actions the organization's enabled endpoints receive, as loaded
    with the organization in this transaction (a request's entry statement),
    without a query; ``None`` when it is not loaded (a job, a command) or was
    expired by an endpoint change."""
    org = db.session.identity_map.get(identity_key(Organization, org_id))
    if org is None or "webhook_actions" in inspect(org).unloaded:
        return None
    return org.webhook_actions


def _forget_actions() -> None:
    """After an endpoint change: the trigger rewrote ``webhook_actions``, so
    the loaded organization's copy is stale (the next event asks the table)."""
    org = db.session.identity_map.get(identity_key(Organization, current_org_id()))
    if org is not None:
        db.session.expire(org, ["webhook_actions"])


# One statement: a delivery for each enabled endpoint that receives the
# action, and a wake-up of each one's job (skipped where one already waits).
_ENQUEUE = text(
    "WITH e AS ("
    " SELECT id FROM webhook_endpoints"
    " WHERE organization_id = CAST(:org AS uuid) AND enabled AND CAST(:action AS varchar) = ANY(event_types)"
    "), d AS ("
    " INSERT INTO webhook_deliveries"
    " (organization_id, id, endpoint_id, event_type, event_id, payload, status, next_attempt_at)"
    " SELECT CAST(:org AS uuid), gen_random_uuid(), e.id, :action, :event_id, :payload, 'pending', now() FROM e"
    ")"
    " INSERT INTO procrastinate_jobs (queue_name, task_name, priority, queueing_lock, args)"
    " SELECT CAST(:queue AS text), CAST(:task AS text), CAST(:priority AS integer),"
    " CAST(:lock AS text) || e.id::text,"
    " jsonb_build_object('endpoint_id', e.id::text, CAST(:org_key AS text), CAST(:org AS text))"
    " FROM e ON CONFLICT DO NOTHING"
)


@hooks.event_recorded.connect
def enqueue_for_event(row: dict) -> None:
    """A delivery for each enabled endpoint that receives this event's
    action, and its endpoint's job woken, in the event's transaction: no
    statement at all when the organization (loaded with the request) has no
    endpoint for the action, one otherwise (or when that is not known)."""
    actions = _known_actions(row["organization_id"])
    if actions is not None and row["action"] not in actions:
        return
    db.session.execute(
        _ENQUEUE,
        {
            "org": str(row["organization_id"]),
            "action": row["action"],
            "event_id": row["id"],
            "payload": payload_text(row["action"], row["occurred_at"], event_data(row)),
            "queue": deliver.queue,
            "task": deliver.name,
            "priority": deliver.priority,
            "lock": WAKE_LOCK,
            "org_key": jobs.ORG_KEY,
        },
    )


def new_delivery(endpoint_id, event_type: str, body: str, event_id: int | None = None) -> uuid.UUID:
    """Store a delivery of ``body`` to the endpoint, due now, and wake its job, in this transaction."""
    delivery_id = uuid.uuid4()
    db.session.execute(
        insert(WebhookDelivery).values(
            organization_id=current_org_id(),
            id=delivery_id,
            endpoint_id=endpoint_id,
            event_type=event_type,
            event_id=event_id,
            payload=body,
            status="pending",
            next_attempt_at=func.now(),
        )
    )
    wake([endpoint_id])
    return delivery_id


def send_test_event(endpoint: WebhookEndpoint) -> uuid.UUID:
    """Queue a ``webhook.test`` delivery to the endpoint (which must be enabled); audited."""
    if not endpoint.enabled:
        raise UserError("Enable the endpoint to send it a test event.")
    now = utcnow()
    body = payload_text(
        TEST_EVENT,
        now,
        {
            "message": "A test event from Tenantry: your endpoint receives and verifies webhooks.",
            "endpoint_id": str(endpoint.id),
        },
    )
    delivery_id = new_delivery(endpoint.id, TEST_EVENT, body)
    audit.record("webhook.test_sent", target=endpoint, metadata={"delivery_id": delivery_id})
    return delivery_id


def _restart(endpoint: WebhookEndpoint, delivery_ids: list) -> None:
    """A new round of attempts for these deliveries of the endpoint, due now
    (the retry schedule starts over), and the endpoint's job woken."""
    if not delivery_ids:
        return
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.endpoint_id == endpoint.id)
        .values(status="pending", round_attempts=0, next_attempt_at=func.now())
        .execution_options(synchronize_session=False)
    )
    wake([endpoint.id])


def resend(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> None:
    """Send one delivery again now (same ``webhook-id``), with a fresh retry schedule."""
    if not endpoint.enabled:
        raise UserError("Enable the endpoint to resend deliveries to it.")
    _restart(endpoint, [delivery.id])
    audit.record(
        "webhook.redelivered", target=endpoint, metadata={"delivery_id": delivery.id, "event_type": delivery.event_type}
    )


def replay_failed(endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery to the endpoint created since ``since``; how many."""
    if not endpoint.enabled:
        raise UserError("Enable the endpoint to replay deliveries to it.", "since")
    if since > utcnow():
        raise UserError("Choose a time in the past.", "since")
    ids = (
        db.session.execute(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.status == "failed",
                WebhookDelivery.created_at >= since,
            )
        )
        .scalars()
        .all()
    )
    _restart(endpoint, list(ids))
    audit.record("webhook.replay_started", target=endpoint, metadata={"since": since, "deliveries": len(ids)})
    return len(ids)


# --------------------------------------------------------------------------- the log
@dataclass(frozen=True)
class DeliveryQuery:
    """The delivery log's filters, as in the URL; ``from_args`` never raises."""

    status: str = "all"
    event_type: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args) -> DeliveryQuery:
        status = args.get("status") if args.get("status") in STATUS_FILTERS else "all"
        event_type = args.get("event_type") or ""
        if event_type not in catalogue.ALL and event_type != TEST_EVENT:
            event_type = ""
        try:
            page = max(1, min(int(args.get("page") or 1), 100_000))
        except (TypeError, ValueError):
            page = 1
        return cls(status, event_type, page)

    def args(self, **changes) -> dict:
        new = replace(self, **changes)
        out = {}
        if new.status != "all":
            out["status"] = new.status
        if new.event_type:
            out["event_type"] = new.event_type
        if new.page != 1:
            out["page"] = new.page
        return out

    @property
    def is_filtered(self) -> bool:
        return self.status != "all" or bool(self.event_type)


def list_deliveries(endpoint: WebhookEndpoint, query: DeliveryQuery) -> tuple[list[WebhookDelivery], bool]:
    """One page of the endpoint's deliveries, newest first, and whether another page follows."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if query.status != "all":
        stmt = stmt.where(WebhookDelivery.status == query.status)
    if query.event_type:
        stmt = stmt.where(WebhookDelivery.event_type == query.event_type)
    rows = (
        db.session.execute(
            stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(PAGE_SIZE + 1)
            .offset((query.page - 1) * PAGE_SIZE)
        )
        .scalars()
        .all()
    )
    return list(rows[:PAGE_SIZE]), len(rows) > PAGE_SIZE


def find_delivery(endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery | None:
    did = parse_uuid(delivery_id)
    if did is None:
        return None
    return db.session.execute(
        select(WebhookDelivery).where(WebhookDelivery.id == did, WebhookDelivery.endpoint_id == endpoint.id)
    ).scalar_one_or_none()


def attempts_of(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    """Every attempt of the delivery, newest first."""
    return list(
        db.session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.attempted_at.desc())
        ).scalars()
    )

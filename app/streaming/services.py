"""Audit streams: the rules every page obeys.

Like every area's services: runs inside the current organization (ORM
filter + RLS), raises ``UserError`` naming the form field with nothing
changed, records one audit event per change (before/after) in the same
transaction, and never commits (the view does).

* The URL passes the webhooks' SSRF guard when saved (``guard.check_url``:
  https only outside development, no private, loopback, link-local or
  metadata address) and again before every batch.
* ``https`` streams are signed with a secret we make (``whsec_...``, shown
  once, as webhooks' are); Splunk HEC and Datadog streams need the token /
  API key their service gave, kept encrypted (``app.crypto``) and never
  shown again nor recorded in the audit log (only that it changed).
* The kind is fixed once made (a different format is a different stream).
* A new stream starts after the newest sealed event ("new events only") or
  from the start of the retained log.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from sqlalchemy import select

from app import audit, crypto
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.streaming import delivery, formats
from app.streaming.models import KINDS, NAME_MAX, TOKEN_MAX, URL_MAX, AuditStream
from app.tenancy.models import Organization
from app.util import parse_uuid, utcnow
from app.web import hosts
from app.webhooks import guard
from app.webhooks.services import new_secret

FEATURE = "audit_streaming"
STARTS = {"new": "New events only", "all": "Everything the audit log still holds"}
TEST_ACTION = "audit_stream.test"


def _printable(value: str) -> str:
    return "".join(ch for ch in (value or "") if ord(ch) >= 32).strip()


def _check_url(url: str) -> str:
    url = _printable(url)
    if not url:
        raise UserError("Enter the URL the events are sent to.", "url")
    if len(url) > URL_MAX:
        raise UserError(f"Use at most {URL_MAX:,} characters.", "url")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme == "http" and not guard.http_allowed():
        raise UserError("Use an https:// URL: audit events are only streamed over TLS.", "url")
    try:
        guard.check_url(url, field="url")  # resolves the host: last
    except guard.BlockedAddress as e:
        raise UserError(
            e.message.replace("Webhooks cannot be sent to", "Audit events cannot be streamed to"), "url"
        ) from None
    return url


def _clean(name: str, kind: str, url: str, token: str | None, *, token_required: bool) -> tuple[str, str, str, str]:
    name = _printable(name)
    if not name:
        raise UserError("Name the stream, e.g. “SIEM”.", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    if kind not in KINDS:
        raise UserError("Choose where the events go.", "kind")
    token = _printable(token or "")
    if kind != "https":
        if not token and token_required:
            what = "HEC token" if kind == "splunk_hec" else "API key"
            raise UserError(f"Enter the {what} the stream authenticates with.", "token")
        if len(token) > TOKEN_MAX or any(ch.isspace() for ch in token):
            raise UserError("Paste the token as your service shows it: one word, no spaces.", "token")
    url = _check_url(url)
    return name, kind, url, token


def _snapshot(stream: AuditStream) -> dict:
    return {"name": stream.name, "kind": stream.kind, "url": stream.url, "enabled": stream.enabled}


# --------------------------------------------------------------------------- reading
def list_streams() -> list[AuditStream]:
    """The organization's streams, oldest first."""
    return list(db.session.execute(select(AuditStream).order_by(AuditStream.created_at)).scalars())


def find_stream(stream_id) -> AuditStream | None:
    """The current organization's stream, or ``None`` (malformed and foreign ids alike)."""
    sid = parse_uuid(stream_id)
    if sid is None:
        return None
    return db.session.execute(select(AuditStream).where(AuditStream.id == sid)).scalar_one_or_none()


def status(stream: AuditStream) -> dict:
    """What the status panel shows: events behind, delivered, last success and error, next attempt."""
    return {
        "behind": delivery.lag(stream),
        "delivered": stream.delivered_count,
        "cursor": stream.cursor_seq,
        "last_success_at": stream.last_success_at,
        "last_failure_at": stream.last_failure_at,
        "last_error": stream.last_error if stream.failure_count else None,
        "failures": stream.failure_count,
        "next_attempt_at": stream.next_attempt_at,
    }


# --------------------------------------------------------------------------- writing
def create_stream(org, name: str, kind: str, url: str, token: str | None, start: str = "new"):
    """A new enabled stream; returns ``(stream, signing secret to show once or None)``. Raises ``UserError``."""
    name, kind, url, token = _clean(name, kind, url, token, token_required=True)
    if start not in STARTS:
        raise UserError("Choose where the stream starts.", "start")
    secret = new_secret() if kind == "https" else None
    stream = AuditStream(
        id=uuid.uuid4(),
        name=name,
        kind=kind,
        url=url,
        secret_encrypted=crypto.encrypt(secret or token),
        enabled=True,
        cursor_seq=delivery.newest_seq(org.id) if start == "new" else 0,
    )
    db.session.add(stream)
    db.session.flush()
    audit.record(
        "audit_stream.created",
        target=stream,
        after=_snapshot(stream),
        metadata={"start": start, "from_seq": stream.cursor_seq},
    )
    delivery.wake([stream.id])
    return stream, secret


def update_stream(stream: AuditStream, name: str, url: str, token: str | None, version=None) -> dict:
    """Apply an edit (the kind stays); a blank token keeps the stored one.
    ``{field: (before, after)}`` of what changed. Stale version: ``StaleEdit`` (409)."""
    name, _, url, token = _clean(name, stream.kind, url, token, token_required=False)
    lock_for_edit(stream, version)
    changes = {}
    for key, value in {"name": name, "url": url}.items():
        if getattr(stream, key) != value:
            changes[key] = (getattr(stream, key), value)
            setattr(stream, key, value)
    token_changed = bool(token) and stream.kind != "https" and crypto.decrypt(stream.secret_encrypted).decode() != token
    if token_changed:
        stream.secret_encrypted = crypto.encrypt(token)
    if changes or token_changed:
        db.session.flush()
        audit.record(
            "audit_stream.updated",
            target=stream,
            before={k: b for k, (b, _) in changes.items()},
            after={k: a for k, (_, a) in changes.items()},
            metadata={"token": "replaced"} if token_changed else None,
        )
        delivery.wake([stream.id])  # a fixed URL or token: try again now
    return changes


def delete_stream(stream: AuditStream) -> None:
    """Delete the stream; the audit event keeps what it was (never its secret)."""
    audit.record(
        "audit_stream.deleted",
        target=stream,
        before={**_snapshot(stream), "cursor_seq": stream.cursor_seq},
    )
    db.session.delete(stream)
    db.session.flush()


def disable_stream(stream: AuditStream) -> bool:
    """Stop sending (by a person); the cursor stays. ``False`` when already disabled."""
    if not stream.enabled:
        return False
    lock_for_edit(stream)
    stream.enabled, stream.disabled_reason, stream.next_attempt_at = False, "manual", None
    db.session.flush()
    audit.record(
        "audit_stream.disabled",
        target=stream,
        before={"enabled": True},
        after={"enabled": False},
        metadata={"reason": "manual"},
    )
    return True


def enable_stream(stream: AuditStream) -> bool:
    """Send again from the cursor (after a person's or the auto-disable);
    the failure streak starts over. ``False`` when already enabled."""
    if stream.enabled:
        return False
    lock_for_edit(stream)
    reason = stream.disabled_reason
    stream.enabled, stream.disabled_reason = True, None
    stream.failure_count, stream.failing_since, stream.next_attempt_at = 0, None, None
    db.session.flush()
    audit.record(
        "audit_stream.enabled",
        target=stream,
        before={"enabled": False},
        after={"enabled": True},
        metadata={"was_disabled": reason},
    )
    delivery.wake([stream.id])
    return True


def test_request(stream: AuditStream) -> formats.Request:
    """A one-event batch in the stream's format: a ``audit_stream.test``
    event (seq 0, under a fresh ``test_`` batch id), as a receiver will see
    real ones. Reads only; the caller sends it with no transaction open."""
    now = utcnow()
    org = db.session.get(Organization, stream.organization_id)
    event = {
        "seq": 0,
        "id": 0,
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "action": TEST_ACTION,
        "actor_type": "system",
        "actor_id": None,
        "actor_label": "Tenantry",
        "impersonator_id": None,
        "target_type": "audit_stream",
        "target_id": str(stream.id),
        "target_label": stream.name,
        "changes": {},
        "metadata": {"test": True},
        "ip": None,
        "user_agent": None,
        "request_id": None,
    }
    secret = crypto.decrypt(stream.secret_encrypted).decode()
    req = formats.build(stream.kind, stream.url, secret, stream.id, -1, 0, [event], hosts.org_host(org), now)
    test_id = f"test_{uuid.uuid4().hex}"
    headers = dict(req.headers)
    if stream.kind == "https":
        from standardwebhooks import Webhook

        headers["webhook-id"] = test_id
        headers["webhook-signature"] = Webhook(secret).sign(test_id, now, req.body)
    else:
        headers["tenantry-batch-id"] = test_id
    return formats.Request(req.url, req.body, headers)


def send_test(stream: AuditStream):
    """Send a test event now and record that it was sent (with the answer).
    Commits the read before sending (no transaction stays open while the
    destination answers); the caller commits the audit event. Returns the outcome."""
    from flask import current_app

    request = test_request(stream)
    db.session.commit()
    try:
        guard.check_url(request.url)
    except UserError as e:
        outcome = delivery.Outcome(False, latency_ms=0, error=e.message)
    else:
        outcome = delivery.post(
            request.url,
            request.body,
            request.headers,
            current_app.config["WEBHOOKS_TIMEOUT_SECONDS"],
            guard.loopback_allowed(),
        )
    audit.record(
        "audit_stream.test_sent",
        target=stream,
        metadata={"ok": outcome.success, "status_code": outcome.status_code, "error": outcome.error},
    )
    return outcome

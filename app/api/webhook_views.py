"""``/api/v1/webhooks``: the organization's webhook endpoints (list, read,
create, update, delete, rotate the signing secret, enable, disable, send a
test event) and each one's deliveries (list, redeliver one, replay the
failed ones since a time), through the webhooks area's services.

The webhooks pages' rules, because they are the same service calls: the
URL passes the SSRF guard (``app.webhooks.guard``: https, public addresses
only), event types come from the audit catalogue, the plan's
``max_webhooks`` holds; each change records its audit event (as the key).
``webhooks:view`` reads, ``webhooks:manage`` changes, as on the pages. The
signing secret is in the answer of a create or a rotation only, once (an
``Idempotency-Key`` replay of that answer is stored encrypted).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from flask import g, request, url_for
from pydantic import Field

from app.api.http import Model, Out, Reply, Timestamp, check_if_match, etag_of, operation
from app.api.problems import Problem
from app.api.views import Page, _decode, _encode, _reply_page, bp
from app.audit import catalogue
from app.errors import UserError
from app.extensions import db
from app.webhooks import services as hooks
from app.webhooks.models import DESCRIPTION_MAX, URL_MAX
from app.webhooks.services import DeliveryQuery

EVENT_TYPES_MAX = len(catalogue.ALL)


class EndpointOut(Out):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: Literal["manual", "failing"] | None = Field(
        description="Why it is disabled: by a person, or after five days of failed deliveries."
    )
    created_at: Timestamp
    updated_at: Timestamp


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_…): shown in this answer only. Verify every delivery with it."
    )
    previous_secret_expires_at: Timestamp | None = Field(
        description="After a rotation: until when the previous secret stays valid (deliveries carry both signatures)."
    )


class EndpointCreate(Model):
    url: str = Field(min_length=1, max_length=URL_MAX, description="https URL of a public address.")
    description: str = Field("", max_length=DESCRIPTION_MAX)
    event_types: list[str] = Field(
        min_length=1, max_length=EVENT_TYPES_MAX, description="Audit actions to send (the audit catalogue)."
    )


class EndpointUpdate(Model):
    url: str | None = Field(None, min_length=1, max_length=URL_MAX)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    event_types: list[str] | None = Field(None, min_length=1, max_length=EVENT_TYPES_MAX)


class Replay(Model):
    since: datetime = Field(description="RFC 3339 time: every failed delivery created at or after it is sent again.")


class Queued(Out):
    queued: int = Field(description="How many deliveries were queued again.")


class TestQueued(Out):
    delivery_id: uuid.UUID


class EndpointList(Out):
    data: list[EndpointOut]


class DeliveryOut(Out):
    id: uuid.UUID
    event_type: str
    event_id: int | None
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    created_at: Timestamp
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None


class DeliveryPage(Page):
    data: list[DeliveryOut]


class DeliveryQueryIn(Model):
    status: Literal["all", "pending", "succeeded", "failed"] = "all"
    event_type: str = Field("", max_length=64)
    cursor: str = Field("", max_length=200)


def _fields(e) -> dict:
    return {
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "event_types": list(e.event_types),
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


def _endpoint_out(e) -> EndpointOut:
    return EndpointOut(**_fields(e))


def _with_secret(e, secret: str) -> EndpointWithSecret:
    return EndpointWithSecret(**_fields(e), secret=secret, previous_secret_expires_at=e.previous_secret_expires_at)


def _etag(e) -> str:
    return etag_of("webhook", e.id, e.version)


def _endpoint_or_404(endpoint_id: str):
    e = hooks.find_endpoint(endpoint_id)
    if e is None:
        raise Problem("not-found", "No such webhook endpoint in this organization.")
    return e


def _delivery_or_404(endpoint, delivery_id: str):
    d = hooks.find_delivery(endpoint, delivery_id)
    if d is None:
        raise Problem("not-found", "No such delivery of this endpoint.")
    return d


def _delivery_out(d) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_type=d.event_type,
        event_id=d.event_id,
        status=d.status,
        attempts=d.attempts,
        created_at=d.created_at,
        last_attempt_at=d.last_attempt_at,
        next_attempt_at=d.next_attempt_at,
    )


@operation(
    bp,
    "GET",
    "/webhooks",
    scope="webhooks:view",
    summary="List webhook endpoints",
    tag="Webhooks",
    response=EndpointList,
)
def list_webhooks():
    """The organization's endpoints (never their signing secrets)."""
    return Reply({"data": [_endpoint_out(e) for e in hooks.list_endpoints()]})


@operation(
    bp,
    "GET",
    "/webhooks/<endpoint_id>",
    scope="webhooks:view",
    summary="Read a webhook endpoint",
    tag="Webhooks",
    response=EndpointOut,
    etag=True,
    errors=(404,),
)
def get_webhook(endpoint_id: str):
    """One endpoint; its ``ETag`` is what an update sends in ``If-Match``."""
    e = _endpoint_or_404(endpoint_id)
    return Reply(_endpoint_out(e), etag=_etag(e))


@operation(
    bp,
    "GET",
    "/webhooks/<endpoint_id>/deliveries",
    scope="webhooks:view",
    summary="List an endpoint's deliveries",
    tag="Webhooks",
    query=DeliveryQueryIn,
    response=DeliveryPage,
    list_page=True,
    errors=(400, 404, 422),
)
def list_deliveries(endpoint_id: str, query: DeliveryQueryIn):
    """The endpoint's delivery log, newest first, filtered by status and event; follow ``next``."""
    endpoint = _endpoint_or_404(endpoint_id)
    page = 1
    if query.cursor:
        (raw,) = _decode(query.cursor, 1)
        if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
            raise Problem("invalid-cursor", "This cursor is not one of ours: start again without it.")
        page = int(raw)
    q = DeliveryQuery.from_args({"status": query.status, "event_type": query.event_type, "page": page})
    rows, more = hooks.list_deliveries(endpoint, q)
    return _reply_page([_delivery_out(d) for d in rows], _encode(page + 1) if more else None)


# --------------------------------------------------------------------------- writes
@operation(
    bp,
    "POST",
    "/webhooks",
    scope="webhooks:manage",
    summary="Create a webhook endpoint",
    tag="Webhooks",
    body=EndpointCreate,
    response=EndpointWithSecret,
    status=201,
    etag=True,
    errors=(409, 422),
)
def create_webhook(body: EndpointCreate):
    """A new enabled endpoint and its signing secret, **shown in this answer
    only**. The URL must be https on a public address (private, loopback,
    link-local and metadata addresses are refused, also behind a name), the
    event types actions of the audit catalogue, and the plan's endpoint limit
    must hold: otherwise 422 naming the field. Send an ``Idempotency-Key``
    to make a retry safe."""
    e, secret = hooks.create_endpoint(g.org, body.url, body.description, body.event_types)
    return Reply(
        _with_secret(e, secret),
        status=201,
        etag=_etag(e),
        location=url_for("api.get_webhook", endpoint_id=e.id, _external=True),
        secret=True,
    )


@operation(
    bp,
    "PATCH",
    "/webhooks/<endpoint_id>",
    scope="webhooks:manage",
    summary="Update a webhook endpoint",
    tag="Webhooks",
    body=EndpointUpdate,
    response=EndpointOut,
    etag=True,
    if_match=True,
    errors=(404, 412, 422, 428),
)
def update_webhook(endpoint_id: str, body: EndpointUpdate):
    """Change the fields sent (others stay), with the create's rules. Needs
    ``If-Match`` with the endpoint's ETag: a stale one is 412."""
    e = _endpoint_or_404(endpoint_id)
    check_if_match(_etag(e))
    sent = body.model_fields_set
    url = body.url if "url" in sent and body.url is not None else e.url
    description = body.description if "description" in sent and body.description is not None else e.description
    events = body.event_types if "event_types" in sent and body.event_types is not None else list(e.event_types)
    hooks.update_endpoint(e, url, description, events, version=e.version)
    return Reply(_endpoint_out(e), etag=_etag(e))


@operation(
    bp,
    "DELETE",
    "/webhooks/<endpoint_id>",
    scope="webhooks:manage",
    summary="Delete a webhook endpoint",
    tag="Webhooks",
    status=204,
    errors=(404, 412),
)
def delete_webhook(endpoint_id: str):
    """Delete the endpoint and its delivery log. With ``If-Match``, only if unchanged since read."""
    e = _endpoint_or_404(endpoint_id)
    if request.headers.get("If-Match"):
        check_if_match(_etag(e))
    hooks.delete_endpoint(e)
    return Reply(None, status=204)


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/rotate-secret",
    scope="webhooks:manage",
    summary="Rotate a webhook endpoint's signing secret",
    tag="Webhooks",
    response=EndpointWithSecret,
    etag=True,
    errors=(404,),
)
def rotate_webhook_secret(endpoint_id: str):
    """A new signing secret, **shown in this answer only**; the previous one
    stays valid for 24 hours (``previous_secret_expires_at``) and deliveries
    carry both signatures meanwhile."""
    e = _endpoint_or_404(endpoint_id)
    secret = hooks.rotate_secret(e)
    return Reply(_with_secret(e, secret), etag=_etag(e), secret=True)


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/disable",
    scope="webhooks:manage",
    summary="Disable a webhook endpoint",
    tag="Webhooks",
    response=EndpointOut,
    etag=True,
    errors=(404,),
)
def disable_webhook(endpoint_id: str):
    """Stop sending to the endpoint (events meanwhile are not queued for it).
    Disabling a disabled endpoint changes nothing."""
    e = _endpoint_or_404(endpoint_id)
    hooks.disable_endpoint(e)
    return Reply(_endpoint_out(e), etag=_etag(e))


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/enable",
    scope="webhooks:manage",
    summary="Enable a webhook endpoint",
    tag="Webhooks",
    response=EndpointOut,
    etag=True,
    errors=(404,),
)
def enable_webhook(endpoint_id: str):
    """Send to the endpoint again (also after the five-day auto-disable).
    Enabling an enabled endpoint changes nothing."""
    e = _endpoint_or_404(endpoint_id)
    hooks.enable_endpoint(e)
    return Reply(_endpoint_out(e), etag=_etag(e))


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/test",
    scope="webhooks:manage",
    summary="Send a test event",
    tag="Webhooks",
    response=TestQueued,
    status=202,
    errors=(404, 422),
)
def send_test_event(endpoint_id: str):
    """Queue a ``webhook.test`` delivery to the endpoint (which must be enabled: 422 otherwise)."""
    e = _endpoint_or_404(endpoint_id)
    delivery_id = hooks.send_test_event(e)
    return Reply(TestQueued(delivery_id=delivery_id), status=202)


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/deliveries/<delivery_id>/redeliver",
    scope="webhooks:manage",
    summary="Redeliver one delivery",
    tag="Webhooks",
    response=DeliveryOut,
    status=202,
    errors=(404, 422),
)
def redeliver(endpoint_id: str, delivery_id: str):
    """Send the delivery again now, with the same ``webhook-id`` and a fresh
    retry schedule (the endpoint must be enabled: 422 otherwise)."""
    e = _endpoint_or_404(endpoint_id)
    d = _delivery_or_404(e, delivery_id)
    hooks.resend(e, d)
    db.session.refresh(d)  # the service restarts it with one UPDATE statement
    return Reply(_delivery_out(d), status=202)


@operation(
    bp,
    "POST",
    "/webhooks/<endpoint_id>/replay",
    scope="webhooks:manage",
    summary="Replay failed deliveries",
    tag="Webhooks",
    body=Replay,
    response=Queued,
    status=202,
    errors=(404, 422),
)
def replay_failed(endpoint_id: str, body: Replay):
    """Send again every delivery to the endpoint that failed and was created
    at or after ``since`` (recovery after the receiver's outage). ``since``
    must carry its offset and lie in the past; the endpoint must be enabled."""
    e = _endpoint_or_404(endpoint_id)
    if body.since.tzinfo is None:
        raise UserError("Give the time with its offset, e.g. 2026-11-29T14:00:00Z.", "since")
    return Reply(Queued(queued=hooks.replay_failed(e, body.since)), status=202)

"""``/api/v1/webhooks``: the organization's webhook endpoints and each one's
deliveries (read), through the webhooks area's services."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from app.api.http import Model, Out, Reply, Timestamp, operation
from app.api.problems import Problem
from app.api.views import Page, _decode, _encode, _reply_page, bp
from app.webhooks import services as hooks
from app.webhooks.services import DeliveryQuery


class EndpointOut(Out):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: Timestamp


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


def _endpoint_out(e) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types),
        enabled=e.enabled,
        created_at=e.created_at,
    )


def _endpoint_or_404(endpoint_id: str):
    e = hooks.find_endpoint(endpoint_id)
    if e is None:
        raise Problem("not-found", "No such webhook endpoint in this organization.")
    return e


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
    errors=(404,),
)
def get_webhook(endpoint_id: str):
    """One endpoint."""
    return Reply(_endpoint_out(_endpoint_or_404(endpoint_id)))


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
    out = [
        DeliveryOut(
            id=d.id,
            event_type=d.event_type,
            event_id=d.event_id,
            status=d.status,
            attempts=d.attempts,
            created_at=d.created_at,
            last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at,
        )
        for d in rows
    ]
    return _reply_page(out, _encode(page + 1) if more else None)

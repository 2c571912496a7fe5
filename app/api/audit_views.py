"""``/api/v1/audit-events``: the audit log with the viewer's filters, newest
first, by keyset (the viewer's own index-backed pages, ``app.auditlog.services``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from flask import current_app, g
from pydantic import Field

from app import audit
from app.api.http import Model, Out, Reply, Timestamp, operation
from app.api.problems import Problem
from app.api.views import Page, _reply_page, bp
from app.auditlog import services as log
from app.web.downloads import download

MAX_AUDIT_LIMIT = 100


class Actor(Out):
    type: str
    id: uuid.UUID | None
    label: str | None


class Target(Out):
    type: str | None
    id: str | None
    label: str | None


class AuditEventOut(Out):
    id: int
    occurred_at: Timestamp
    action: str
    actor: Actor
    target: Target
    changes: dict[str, Any]
    metadata: dict[str, Any]
    ip: str | None
    user_agent: str | None
    request_id: str | None


class AuditEventPage(Page):
    data: list[AuditEventOut]


class AuditFilters(Model):
    actor: uuid.UUID | None = Field(None, description="Events by this user (or key) id.")
    person: uuid.UUID | None = Field(None, description="Events by or about this member.")
    action: str = Field("", max_length=64, description="One action of the catalogue, e.g. member.role_changed.")
    target_type: str = Field("", max_length=32)
    target: str = Field("", max_length=128, description="The target's id.")
    date_from: date | None = Field(None, alias="from", description="First day (UTC), inclusive.")
    date_to: date | None = Field(None, alias="to", description="Last day (UTC), inclusive.")
    q: str = Field("", max_length=200, description="Words of the actor's or target's name.")


class AuditQuery(AuditFilters):
    limit: int = Field(log.PAGE_SIZE, ge=1, le=MAX_AUDIT_LIMIT)
    cursor: str = Field("", max_length=40)


def _out(e) -> AuditEventOut:
    return AuditEventOut(
        id=e.id,
        occurred_at=e.occurred_at,
        action=e.action,
        actor=Actor(type=e.actor_type, id=e.actor_id, label=e.actor_label),
        target=Target(type=e.target_type, id=e.target_id, label=e.target_label),
        changes=e.changes or {},
        metadata=e.meta or {},
        ip=str(e.ip) if e.ip is not None else None,
        user_agent=e.user_agent,
        request_id=e.request_id,
    )


def _filters(query: AuditFilters) -> log.Filters:
    """The viewer's filters from the query (problems: 400 bad cursor, 422 bad filter)."""
    args = {
        "actor": str(query.actor) if query.actor else "",
        "person": str(query.person) if query.person else "",
        "action": query.action,
        "target_type": query.target_type,
        "target": query.target,
        "from": query.date_from.isoformat() if query.date_from else "",
        "to": query.date_to.isoformat() if query.date_to else "",
        "q": query.q,
        "before": getattr(query, "cursor", ""),
    }
    f = log.Filters.from_args(args)
    if "before" in f.errors:
        raise Problem("invalid-cursor", "This cursor is not one of ours: start again without it.")
    if f.errors:
        names = {"from": "from", "to": "to"}
        raise Problem(
            "validation",
            "Some filters are not valid.",
            [{"pointer": f"#/query/{names.get(k, k)}", "detail": v} for k, v in f.errors.items()],
        )
    return f


@operation(
    bp,
    "GET",
    "/audit-events",
    scope="audit:view",
    summary="List audit events",
    tag="Audit",
    query=AuditQuery,
    response=AuditEventPage,
    list_page=True,
    errors=(400, 422),
)
def list_audit_events(query: AuditQuery):
    """The organization's audit log, newest first, with the viewer's filters
    (actor, person, action, target, dates, words); follow ``next`` for older events."""
    f = _filters(query)
    page = log.page(g.org.id, f, size=query.limit, columns=log.DETAIL_COLUMNS)
    return _reply_page([_out(e) for e in page.events], str(page.older) if page.older else None)


class ExportQuery(AuditFilters):
    format: Literal["jsonl", "csv"] = "jsonl"


@operation(
    bp,
    "GET",
    "/audit-events/export",
    scope="audit:export",
    summary="Export audit events",
    tag="Audit",
    query=ExportQuery,
    media=("application/x-ndjson", "text/csv"),
    errors=(422,),
)
def export_audit_events(query: ExportQuery):
    """Every event matching the filters, newest first, streamed (JSON lines or
    CSV) in constant memory; the export itself is audited (``audit.exported``)."""
    f = _filters(query)
    fmt = query.format
    audit.record("audit.exported", target=g.org, metadata={"format": fmt, "filters": f.params(), "via": "api"})
    stream = log.export_stream(current_app._get_current_object(), g.org.id, f, fmt)
    if fmt == "csv":
        return Reply(stream=download(stream, f"{g.org.slug}-audit.csv"))
    return Reply(stream=download(stream, f"{g.org.slug}-audit.jsonl", "application/x-ndjson"))

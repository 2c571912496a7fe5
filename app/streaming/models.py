"""Audit streams (tenant table, RLS: migration 0035).

A stream sends an organization's **sealed** audit events, in seal order, to
one destination. Its cursor is the seal sequence of the last event the
destination acknowledged (``cursor_seq``); ``inflight_through`` is the last
sequence of the batch being sent (written before the send), so a batch sent
again after a crash is the same batch, under the same batch id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

NAME_MAX = 80
URL_MAX = 2000
TOKEN_MAX = 500
# The destination's format, and what pages call it.
KINDS = {
    "https": "HTTPS endpoint (NDJSON, signed)",
    "splunk_hec": "Splunk HTTP Event Collector",
    "datadog": "Datadog logs",
}


class AuditStream(TenantScoped, db.Model):
    __tablename__ = "audit_streams"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    url: Mapped[str] = mapped_column(String(URL_MAX), nullable=False)
    # https: the signing secret (whsec_..., made by us, shown once); Splunk:
    # the HEC token; Datadog: the API key. Encrypted with app.crypto, never shown.
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default="true")
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    cursor_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    inflight_through: Mapped[int | None] = mapped_column(BigInteger)
    delivered_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    version: Mapped[int] = versioned()

    __table_args__ = (
        CheckConstraint("kind IN ('https', 'splunk_hec', 'datadog')", name="kind"),
        CheckConstraint("disabled_reason IS NULL OR disabled_reason IN ('manual', 'failing')", name="disabled_reason"),
        Index("ix_audit_streams_org_created", "organization_id", "created_at"),
    )
    __mapper_args__ = {"version_id_col": version}

    def __audit_target__(self):
        return ("audit_stream", str(self.id), self.name)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

"""Webhook endpoints, deliveries and attempts (tenant tables, RLS: migration 0011).

A delivery is one audit event (or test event) for one endpoint: its
``id`` is the ``webhook-id`` every attempt sends, so a receiver recognises a
repeat. Its payload is stored as the exact text that is signed and sent.
Each attempt keeps its status, latency, the first 1 KB of the response and
any error.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

URL_MAX = 2000
DESCRIPTION_MAX = 500
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
# Why an endpoint is disabled: by a person, or by the delivery job after
# five days of continuous failure.
DISABLED_REASONS = ("manual", "failing")


class WebhookEndpoint(TenantScoped, db.Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(URL_MAX), nullable=False)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), nullable=False, default="", server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default="true")
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    # The signing secret (whsec_...), encrypted with app.crypto; shown once.
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    # After a rotation the old secret stays valid (both signatures are sent)
    # until previous_secret_expires_at.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # First failed attempt since the last success; five days of it disable the endpoint.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    version: Mapped[int] = versioned()

    __table_args__ = (
        CheckConstraint("disabled_reason IS NULL OR disabled_reason IN ('manual', 'failing')", name="disabled_reason"),
        Index("ix_webhook_endpoints_org_created", "organization_id", "created_at"),
    )
    __mapper_args__ = {"version_id_col": version}

    def __audit_target__(self):
        return ("webhook", str(self.id), self.url)


class WebhookDelivery(TenantScoped, db.Model):
    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigInteger)  # the audit event; None for a test event
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # the exact JSON text signed and sent
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Attempts in the current round of the retry schedule (a resend starts a new round).
    round_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the next attempt is due (a new delivery: at once); NULL once it
    # succeeded or its round of attempts is over. The delivery job sends what is due.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        ForeignKeyConstraint(
            ["organization_id", "endpoint_id"],
            ["webhook_endpoints.organization_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint",
            ondelete="CASCADE",
        ),
        Index("ix_webhook_deliveries_endpoint_created", "organization_id", "endpoint_id", "created_at"),
        # The deliveries waiting for an attempt, per endpoint, by due time (the job's claim; 0015).
        Index(
            "ix_webhook_deliveries_waiting",
            "organization_id",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
        # The analytics chart of deliveries per day (migration 0021).
        Index("ix_webhook_deliveries_org_created", "organization_id", "created_at"),
    )

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: the same for every attempt of this delivery."""
        return f"msg_{self.id.hex}"


class WebhookAttempt(TenantScoped, db.Model):
    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    request_headers: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    response_headers: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    response_body: Mapped[str] = mapped_column(Text, nullable=False, default="")  # the first 1 KB
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "delivery_id"],
            ["webhook_deliveries.organization_id", "webhook_deliveries.id"],
            name="fk_webhook_attempts_delivery",
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_delivery", "organization_id", "delivery_id", "attempted_at"),
    )

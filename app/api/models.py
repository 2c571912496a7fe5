"""API keys, idempotency records and daily usage (tenant tables, RLS: migration 0016).

A key is ``tnt_<key_id>_<secret><crc>`` (``app.api.keys``); the table keeps
the public ``key_id`` and the SHA-256 of the whole key, never the key.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

NAME_MAX = 100
IDEMPOTENCY_KEY_MAX = 255


class ApiKey(TenantScoped, db.Model):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The key that replaced this one (rotation); this one stays valid until expires_at.
    rotated_to: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_ip: Mapped[str | None] = mapped_column(String(45))
    version: Mapped[int] = versioned()

    creator = relationship("User", lazy="joined", viewonly=True)

    __table_args__ = (
        db.UniqueConstraint("organization_id", "key_id"),
        Index("ix_api_keys_org_created", "organization_id", "created_at"),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def prefix(self) -> str:
        """What identifies the key in lists and logs (not secret): ``tnt_<key_id>``."""
        return f"tnt_{self.key_id}"

    def __audit_target__(self):
        return ("api_key", str(self.id), f"{self.name} ({self.prefix})")


class ApiIdempotency(TenantScoped, db.Model):
    """The stored answer to a POST sent with an ``Idempotency-Key``."""

    __tablename__ = "api_idempotency"

    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    location: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "api_key_id"],
            ["api_keys.organization_id", "api_keys.id"],
            name="fk_api_idempotency_key",
            ondelete="CASCADE",
        ),
        Index("ix_api_idempotency_org_created", "organization_id", "created_at"),
    )


class ApiUsageDaily(TenantScoped, db.Model):
    """Requests per key per UTC day (and how many the rate limit refused)."""

    __tablename__ = "api_usage_daily"

    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    throttled: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "api_key_id"],
            ["api_keys.organization_id", "api_keys.id"],
            name="fk_api_usage_daily_key",
            ondelete="CASCADE",
        ),
        Index("ix_api_usage_daily_org_day", "organization_id", "day"),
    )

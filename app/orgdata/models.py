"""An export of an organization's data: its progress, then its archive for 24 hours."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.extensions import db
from app.scoping import TenantScoped

STATUSES = ("queued", "running", "ready", "failed")


class OrgExport(TenantScoped, db.Model):
    """One requested export. The job fills ``done``/``total`` as it writes
    (the page's progress bar) and then ``archive``; the archive may be
    downloaded until ``expires_at`` (24 hours), after which a periodic job
    drops its bytes and keeps the row as history."""

    __tablename__ = "org_exports"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_label: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", server_default="queued")
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    archive: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
        Index("ix_org_exports_org_created", "organization_id", "created_at"),
    )

    @property
    def percent(self) -> int:
        """How far the job is, 0–100 (100 only once the archive is stored)."""
        if self.status == "ready":
            return 100
        if not self.total:
            return 0
        return min(99, int(self.done * 100 / self.total))

    @property
    def finished(self) -> bool:
        return self.status in ("ready", "failed")

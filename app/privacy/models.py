"""Tables of the privacy area: a person's data exports and account deletions
(global tables: they belong to a person, not to an organization)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.extensions import db

EXPORT_STATUSES = ("pending", "ready", "expired", "failed")


class PersonalExport(db.Model):
    """One export of everything Tenantry holds about a person (a ZIP of JSON files).

    The archive is kept in the row - out of any web root, backed up and
    removed with the database - for 24 hours after it was built; then
    ``privacy.purge_exports`` empties it and the row says ``expired``."""

    __tablename__ = "personal_exports"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    downloaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    archive: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'ready', 'expired', 'failed')", name="status"),
        Index("ix_personal_exports_user", "user_id", "requested_at"),
        Index("ix_personal_exports_expiry", "expires_at", postgresql_where=text("archive IS NOT NULL")),
    )


class AccountDeletion(db.Model):
    """That an account was deleted, and when its erasure finished.

    ``labels_encrypted`` carries the person's e-mail and name (encrypted)
    from the request to the erasure job, which clears it: afterwards only
    the user id stays, and it names nobody."""

    __tablename__ = "account_deletions"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    labels_encrypted: Mapped[str | None] = mapped_column(Text)
    redacted_events: Mapped[int | None] = mapped_column(BigInteger)

"""The organization's logo (tenant table, RLS; migration 0020_org_settings)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.scoping import TenantScoped

LOGO_MAX_BYTES = 512 * 1024


class OrganizationLogo(TenantScoped, db.Model):
    """The logo's bytes, as checked at upload (``app.settings.branding``).

    In the database, not on disk: every web machine serves it without a
    shared file system, and it is backed up, isolated (RLS) and purged with
    the organization's other rows. Pages never load it with the organization:
    only the logo route reads this row.
    """

    __tablename__ = "organization_logos"

    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"octet_length(data) <= {LOGO_MAX_BYTES}", name="size"),
        CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name="content_type"),
    )

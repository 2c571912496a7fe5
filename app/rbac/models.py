"""Custom roles: per organization, any subset of the permission catalogue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped


class Role(TenantScoped, db.Model):
    __tablename__ = "roles"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    # Bumped by every update; the permission editor carries it (app.concurrency).
    version: Mapped[int] = versioned()

    __table_args__ = (Index("uq_roles_org_name", "organization_id", func.lower(name), unique=True),)
    __mapper_args__ = {"version_id_col": version}

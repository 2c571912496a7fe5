"""Custom roles: per organization, any subset of the permission catalogue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.tenancy.scoping import TenantScoped


class HoldsRole:
    """For rows that carry exactly one role: a system role key in ``role`` or
    a custom role in ``custom_role`` (memberships and invitations)."""

    @property
    def role_key(self) -> str:
        """``owner`` … ``viewer``, or ``custom:<id>``."""
        return self.role if self.role else f"custom:{self.custom_role_id}"

    @property
    def role_name(self) -> str:
        from app.rbac.catalogue import SYSTEM_ROLES

        if self.role:
            return SYSTEM_ROLES[self.role].name
        return self.custom_role.name if self.custom_role else "Custom role"


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

    __table_args__ = (Index("uq_roles_org_name", "organization_id", func.lower(name), unique=True),)

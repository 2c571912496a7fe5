"""Projects: the example tenant-owned business resource.

Copy this pattern for product data: ``TenantScoped`` first, ``organization_id``
leading every key and index, foreign keys that include ``organization_id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

STATUSES = ("active", "archived")
# Lengths a person may type: the column below, the form and the service all
# take them from here.
NAME_MAX = 120
DESCRIPTION_MAX = 5000


class Project(TenantScoped, db.Model):
    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    # Bumped by every update; edit forms carry it (app.concurrency).
    version: Mapped[int] = versioned()

    # The owner must be a member of the same organization: the foreign key
    # goes to memberships and includes organization_id.
    owner = relationship(
        "Membership",
        primaryjoin="and_(Project.organization_id == foreign(Membership.organization_id),"
        " Project.owner_id == foreign(Membership.user_id))",
        viewonly=True,
        uselist=False,
        lazy="joined",
    )

    __table_args__ = (
        CheckConstraint("status IN ('active', 'archived')", name="status"),
        ForeignKeyConstraint(
            ["organization_id", "owner_id"],
            ["memberships.organization_id", "memberships.user_id"],
            name="fk_projects_owner_membership",
        ),
        Index("ix_projects_org_name", "organization_id", func.lower(name)),
        Index("ix_projects_org_updated", "organization_id", "updated_at"),
    )
    __mapper_args__ = {"version_id_col": version}

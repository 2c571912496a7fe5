"""SCIM tables (migration 0024_scim): tokens, provisioned users, groups."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.scoping import TenantScoped

TOKEN_PREFIX = "scim_"
NAME_MAX = 80
USER_NAME_MAX = 256
DISPLAY_NAME_MAX = 256


class ScimToken(TenantScoped, db.Model):
    """A bearer token of the organization's identity provider: only the
    SHA-256 of the whole token is stored (see ``app.scim.tokens``)."""

    __tablename__ = "scim_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    creator = relationship("User", lazy="joined")

    __table_args__ = (Index("uq_scim_tokens_org_key_id", "organization_id", "key_id", unique=True),)

    @property
    def prefix(self) -> str:
        """What the settings page shows of the token: ``scim_<key_id>``."""
        return f"{TOKEN_PREFIX}{self.key_id}"


class ScimUser(TenantScoped, db.Model):
    """A member provisioned by SCIM: the SCIM view of them (``document``),
    its ``userName`` and e-mails for filters, and its version (the ETag)."""

    __tablename__ = "scim_users"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(USER_NAME_MAX), nullable=False)
    emails: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    document: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["memberships.organization_id", "memberships.user_id"],
            name="fk_scim_users_membership",
            ondelete="CASCADE",
        ),
        Index("uq_scim_users_org_user_name", "organization_id", text("lower(user_name)"), unique=True),
        Index("ix_scim_users_org_created", "organization_id", "created_at", "user_id"),
    )

    def __audit_target__(self):
        return ("member", str(self.user_id), self.user_name)


class ScimGroup(TenantScoped, db.Model):
    """A group of the organization's identity provider; its members' roles
    follow the group → role mappings (``app.rbac.group_roles``)."""

    __tablename__ = "scim_groups"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_MAX), nullable=False)
    external_id: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        Index("ix_scim_groups_org_display_name", "organization_id", text("lower(display_name)")),
        Index("ix_scim_groups_org_created", "organization_id", "created_at", "id"),
    )

    def __audit_target__(self):
        return ("scim_group", str(self.id), self.display_name)


class ScimGroupMember(TenantScoped, db.Model):
    """One member of a SCIM group."""

    __tablename__ = "scim_group_members"

    group_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "group_id"],
            ["scim_groups.organization_id", "scim_groups.id"],
            name="fk_scim_group_members_group",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["scim_users.organization_id", "scim_users.user_id"],
            name="fk_scim_group_members_user",
            ondelete="CASCADE",
        ),
        Index("ix_scim_group_members_org_user", "organization_id", "user_id"),
    )

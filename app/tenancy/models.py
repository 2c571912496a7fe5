"""Organizations (global), plans (global) and memberships (tenant-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.concurrency import versioned
from app.extensions import db
from app.permissions import ALL, SYSTEM_ROLES
from app.scoping import TenantScoped


class Plan(db.Model):
    """A plan and its limits: the one place quotas are defined (seeded by migration)."""

    __tablename__ = "plans"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    max_members: Mapped[int | None] = mapped_column(Integer)  # None = unlimited
    api_requests_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    audit_retention_days: Mapped[int] = mapped_column(Integer, nullable=False)
    max_webhooks: Mapped[int] = mapped_column(Integer, nullable=False)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Sellable features (``app.tenancy.entitlements.entitled``), one column each.
    feature_api: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_custom_roles: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_branding: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_custom_domains: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_ip_allowlist: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_sso: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_scim: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    feature_audit_streaming: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Bumped by every update; the console's plan form carries it.
    version: Mapped[int] = versioned()

    __mapper_args__ = {"version_id_col": version}


class Organization(db.Model):
    """A customer organization, reached at ``<slug>.<SERVER_NAME>``."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    plan_key: Mapped[str] = mapped_column(String(32), ForeignKey("plans.key"), nullable=False, default="free")
    # No Python default: the runtime role may not write the status (only the
    # platform suspends), so an INSERT leaves it to the server.
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    # Why the platform suspended it (shown to its members); only the
    # cross-organization role writes it (app.rls); FetchedValue: an INSERT
    # leaves it out (NULL) instead of writing a column it may not.
    suspension_reason: Mapped[str | None] = mapped_column(Text, server_default=FetchedValue())
    settings: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb"))
    # The audit actions some enabled webhook endpoint of this organization
    # receives, kept exact by a trigger on webhook_endpoints (migration 0015)
    # and loaded with the organization in the request's entry statement: an
    # event no endpoint receives costs webhooks no statement. Only the
    # trigger writes it (an INSERT leaves it to the server).
    webhook_actions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'::text[]"))
    custom_domain: Mapped[str | None] = mapped_column(String(253))
    custom_domain_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The organization's entitlement overrides as {name: {"value", "until"}},
    # kept by a trigger on entitlement_overrides (migration 0018): loaded with
    # the organization, so entitlements cost no statement of their own.
    # No Python default: an INSERT leaves it to the server (the runtime role
    # may not write it).
    entitlement_overrides: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    # Active members as last counted by the platform's periodic job
    # (app.platform.stats; NULL: not counted yet): the console filters by
    # size on it. Only the cross-organization role writes it.
    member_count: Mapped[int | None] = mapped_column(Integer, server_default=FetchedValue())
    # Bumped by every update; the settings form carries it (app.concurrency).
    version: Mapped[int] = versioned()

    plan: Mapped[Plan] = relationship(lazy="select")

    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        # Slugs are unique among live organizations only: a deleted one frees its slug.
        Index("uq_organizations_live_slug", "slug", unique=True, postgresql_where=text("deleted_at IS NULL")),
        # The console's keyset sorts and size filter (0019_platform_scale).
        Index("ix_organizations_name_id", text("lower(name)"), "id"),
        Index("ix_organizations_created_id", "created_at", "id"),
        Index("ix_organizations_member_count", "member_count"),
        Index(
            "uq_organizations_custom_domain",
            "custom_domain",
            unique=True,
            postgresql_where=text("custom_domain IS NOT NULL AND deleted_at IS NULL"),
        ),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def is_live(self) -> bool:
        return self.deleted_at is None

    @property
    def is_suspended(self) -> bool:
        return self.status == "suspended"


class PlatformStats(db.Model):
    """Figures the console shows that would cost a scan of a big table per
    request, cached by the periodic job ``platform.refresh_stats``
    (``app.platform.stats``). Global; only the cross-organization role writes it."""

    __tablename__ = "platform_stats"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class EntitlementOverride(TenantScoped, db.Model):
    """An organization's own limit or feature switch (a trial, a contract),
    optionally until a date; beats its plan's value (``app.tenancy.entitlements``).

    Written only by the cross-organization role (the platform console); a
    trigger copies the organization's overrides into
    ``Organization.entitlement_overrides``, which is what requests read.
    """

    __tablename__ = "entitlement_overrides"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    limit_value: Mapped[int | None] = mapped_column(Integer)  # kind limit; None = unlimited
    enabled: Mapped[bool | None] = mapped_column(Boolean)  # kind feature
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('limit', 'feature')", name="kind"),
        CheckConstraint(
            "(kind = 'feature' AND enabled IS NOT NULL AND limit_value IS NULL)"
            " OR (kind = 'limit' AND enabled IS NULL AND (limit_value IS NULL OR limit_value >= 0))",
            name="value",
        ),
    )


class HoldsRole:
    """For rows that carry exactly one role: a system role key in ``role`` or
    a custom role in ``custom_role`` (memberships and invitations)."""

    @property
    def role_key(self) -> str:
        """``owner`` … ``viewer``, or ``custom:<id>``."""
        return self.role if self.role else f"custom:{self.custom_role_id}"

    @property
    def role_name(self) -> str:
        if self.role:
            return SYSTEM_ROLES[self.role].name
        return self.custom_role.name if self.custom_role else "Custom role"


class Membership(HoldsRole, TenantScoped, db.Model):
    """A user's place in an organization, with exactly one role.

    The role is a system role key (``owner`` … ``viewer``) or a custom role of
    the same organization.
    """

    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str | None] = mapped_column(String(32))
    custom_role_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # No Python default: the runtime role may not write the status (only the
    # platform suspends), so an INSERT leaves it to the server.
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Lower-cased copies of the user's name and e-mail, maintained by database
    # triggers (migration 0003_invitations): the members page sorts, pages and
    # searches on them from indexes that lead with organization_id.
    search_name: Mapped[str | None] = mapped_column(Text, server_default=FetchedValue(), deferred=True)
    search_email: Mapped[str | None] = mapped_column(Text, server_default=FetchedValue(), deferred=True)
    # Where the role comes from: ``manual`` (an admin, an invitation),
    # ``sso`` or ``scim`` (mapped from the identity provider's groups,
    # ``app.rbac.group_roles``). An admin's change makes it ``manual`` again.
    # Declared after the columns above, in the table's order: the request's
    # entry statement names the columns of ``enter_organization`` by position.
    role_source: Mapped[str] = mapped_column(String(8), nullable=False, default="manual", server_default="manual")
    # The identity provider's ``externalId`` for this member (SCIM), unique here.
    scim_external_id: Mapped[str | None] = mapped_column(Text)

    user = relationship("User", lazy="joined")
    custom_role = relationship(
        "Role",
        primaryjoin="and_(Membership.organization_id == foreign(Role.organization_id),"
        " Membership.custom_role_id == foreign(Role.id))",
        viewonly=True,
        uselist=False,
        lazy="joined",
    )

    @property
    def permissions(self) -> frozenset[str]:
        """Every permission this membership's role grants (never more)."""
        if self.status != "active":
            return frozenset()
        if self.role:
            return SYSTEM_ROLES[self.role].permissions
        return frozenset(self.custom_role.permissions or ()) & ALL if self.custom_role else frozenset()

    __table_args__ = (
        CheckConstraint("(role IS NULL) <> (custom_role_id IS NULL)", name="one_role"),
        CheckConstraint("status IN ('active', 'deactivated')", name="status"),
        CheckConstraint("role_source IN ('manual', 'sso', 'scim')", name="role_source"),
        ForeignKeyConstraint(
            ["organization_id", "custom_role_id"],
            ["roles.organization_id", "roles.id"],
            name="fk_memberships_custom_role",
        ),
        Index(
            "uq_memberships_org_scim_external_id",
            "organization_id",
            "scim_external_id",
            unique=True,
            postgresql_where=text("scim_external_id IS NOT NULL"),
        ),
        # The apex lists a user's organizations: reached through RLS's
        # member-self policy, so it needs an index on user_id.
        Index("ix_memberships_user", "user_id"),
        Index("ix_memberships_org_role", "organization_id", "role"),
        # Members page keyset indexes (0003_invitations).
        Index("ix_memberships_org_search_name", "organization_id", "search_name", "user_id"),
        Index("ix_memberships_org_search_email", "organization_id", "search_email", "user_id"),
        Index("ix_memberships_org_created", "organization_id", "created_at", "user_id"),
        Index(
            "ix_memberships_org_last_seen",
            "organization_id",
            text("coalesce(last_seen_at, '-infinity'::timestamptz)"),
            "user_id",
        ),
    )


class RetiredSlug(db.Model):
    """An address an organization gave up by changing its slug: for 30 days
    its old host redirects to the new one and no one else may take it.

    Global (``org_id``, not ``organization_id``): the host is resolved before
    any organization is known, so the row is read without one.
    """

    __tablename__ = "retired_slugs"

    slug: Mapped[str] = mapped_column(String(63), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_retired_slugs_org", "org_id"),)


class SessionReach(TenantScoped, db.Model):
    """A sign-in (``user_sessions`` row) that reached this organization's
    host: recorded on the session's first request there
    (``app.tenancy.request``). An organization's admins see and revoke only
    these sessions of a member, never the member's sessions elsewhere."""

    __tablename__ = "session_organizations"

    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_session_organizations_org_user", "organization_id", "user_id"),)

"""Verified domains (tenant table, RLS: migration 0017_verified_domains).

An organization adds a domain it owns (``acme.com``) and proves it by
publishing a TXT record; once verified the domain can serve the
organization on a custom host and let people with an address at it join.

A domain is verified by one organization at most: the partial unique index
``uq_domains_verified_name`` (on the name, across organizations, where the
status is ``verified``) refuses a second, whatever races.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

NAME_MAX = 253
STATUSES = ("pending", "verified", "failed")
# What a verified domain does for people with an address at it.
AUTO_JOIN_MODES = ("off", "suggest", "auto")
# The TXT record lives on _tenantry.<domain> (or, accepted too, on the domain itself).
RECORD_PREFIX = "tenantry-verification="
RECORD_LABEL = "_tenantry"


class Domain(TenantScoped, db.Model):
    __tablename__ = "domains"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # Lower-case ASCII (IDNA) name without a trailing dot: what DNS is asked.
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    token: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # The last DNS check (by a person or the daily job) and what it found.
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_check_error: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time the record was seen while verified: 7 days without it unverify.
    record_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    auto_join: Mapped[str] = mapped_column(String(16), nullable=False, default="off", server_default="off")
    # A system role key (never owner): the role people who join by this domain get.
    auto_join_role: Mapped[str] = mapped_column(String(32), nullable=False, default="member", server_default="member")
    version: Mapped[int] = versioned()

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'verified', 'failed')", name="status"),
        CheckConstraint("auto_join IN ('off', 'suggest', 'auto')", name="auto_join"),
        CheckConstraint("auto_join_role IN ('admin', 'manager', 'member', 'viewer')", name="auto_join_role"),
        CheckConstraint("name = lower(name)", name="name_lower"),
        CheckConstraint("(status = 'verified') = (verified_at IS NOT NULL)", name="verified_at"),
        Index("uq_domains_org_name", "organization_id", "name", unique=True),
        # One organization per verified domain, and the look-up of auto-join
        # (a verified address's domain -> its organization) across organizations.
        Index("uq_domains_verified_name", "name", unique=True, postgresql_where=text("status = 'verified'")),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def record_name(self) -> str:
        return f"{RECORD_LABEL}.{self.name}"

    @property
    def record_value(self) -> str:
        return f"{RECORD_PREFIX}{self.token}"

    @property
    def is_verified(self) -> bool:
        return self.status == "verified"

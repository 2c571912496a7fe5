"""What a SAML sign-in must remember (tenant tables, RLS: migration 0030_saml).

* ``SamlRequest``: an AuthnRequest we sent, so that a response is accepted
  only ``InResponseTo`` one of ours, once, within ``REQUEST_TTL``, and only
  in the browser that started it (``browser`` is a SHA-256 of a random
  value kept in that browser's signed, host-only session cookie). The ACS
  fills ``identity`` with the checked assertion's facts; the browser then
  finishes the sign-in, which sets ``used_at``.
* ``SamlAssertionSeen``: the id of every accepted assertion until its
  ``NotOnOrAfter`` (+ clock skew): a second use of the same assertion is
  refused (the primary key), whatever request it claims to answer.
  Rows past their end are purged by the daily job.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.scoping import TenantScoped

# How long a started SAML sign-in may take at the identity provider.
REQUEST_TTL = timedelta(minutes=10)


class SamlRequest(TenantScoped, db.Model):
    __tablename__ = "saml_requests"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    browser: Mapped[str] = mapped_column(String(64), nullable=False)
    next_url: Mapped[str] = mapped_column(String(512), nullable=False, default="/")
    # "sign_in" or "test" (the portal's connection test: shows what arrived, signs no one in)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="sign_in")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    identity: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint("purpose IN ('sign_in', 'test')", name="purpose"),
        ForeignKeyConstraint(
            ["organization_id", "connection_id"],
            ["sso_connections.organization_id", "sso_connections.id"],
            name="fk_saml_requests_connection",
            ondelete="CASCADE",
        ),
        Index("ix_saml_requests_org_expires", "organization_id", "expires_at"),
    )


class SamlAssertionSeen(TenantScoped, db.Model):
    __tablename__ = "saml_assertions_seen"

    assertion_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_saml_assertions_seen_org_expires", "organization_id", "expires_at"),)

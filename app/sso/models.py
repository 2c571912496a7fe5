"""Single sign-on tables (tenant tables under RLS: migration 0023_sso).

* ``SsoConnection``: one identity provider an organization signs its people
  in through (OIDC or SAML), its provider-specific configuration (JSONB), its
  secret (the OIDC client secret) encrypted with ``app.crypto``, its state
  (draft → tested → enabled ⇄ disabled) and the last connection test's result.
  At most one connection per organization is enabled (partial unique index
  ``uq_sso_connections_enabled``): home-realm discovery and "Sign in with
  SSO" always know which provider to use.
* ``SsoIdentity``: the link between a connection's subject (``sub`` /
  NameID) and a user, made at the first sign-in; later sign-ins find the user
  by it, so a changed e-mail at the provider still reaches the same account.
* ``SsoSetupLink``: a link an admin gives an IT contact who has no account:
  24 hours, opened once (the browser that opened it keeps access until it
  expires), revocable. Only the SHA-256 of its token is stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

PROTOCOLS = ("oidc", "saml")
STATUSES = ("draft", "tested", "enabled", "disabled")
PROVIDERS = {
    "okta": "Okta",
    "entra": "Microsoft Entra ID",
    "google": "Google Workspace",
    "generic": "Another provider",
}
NAME_MAX = 120


class SsoConnection(TenantScoped, db.Model):
    __tablename__ = "sso_connections"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    protocol: Mapped[str] = mapped_column(String(8), nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False, default="generic", server_default="generic")
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft", server_default="draft")
    # Protocol settings a person typed (issuer, client id, scopes, groups
    # claim, default role…); never a secret.
    config: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb"))
    # app.crypto token of the OIDC client secret (None: none set yet).
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    last_tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the last test received: {"ok": bool, "error"?, "identity"?: {...}}.
    last_test: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    version: Mapped[int] = versioned()

    __table_args__ = (
        CheckConstraint("protocol IN ('oidc', 'saml')", name="protocol"),
        CheckConstraint("status IN ('draft', 'tested', 'enabled', 'disabled')", name="status"),
        CheckConstraint("provider IN ('okta', 'entra', 'google', 'generic')", name="provider"),
        Index(
            "uq_sso_connections_enabled", "organization_id", unique=True, postgresql_where=text("status = 'enabled'")
        ),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def provider_label(self) -> str:
        return PROVIDERS.get(self.provider, self.provider)

    @property
    def protocol_label(self) -> str:
        return "OpenID Connect" if self.protocol == "oidc" else "SAML 2.0"


class SsoIdentity(TenantScoped, db.Model):
    __tablename__ = "sso_identities"

    connection_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "connection_id"],
            ["sso_connections.organization_id", "sso_connections.id"],
            name="fk_sso_identities_connection",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sso_identities_user", ondelete="CASCADE"),
        Index("ix_sso_identities_org_user", "organization_id", "user_id"),
    )


class SsoSetupLink(TenantScoped, db.Model):
    __tablename__ = "sso_setup_links"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # Who it is for (a name or address, shown in the list) and who issued it.
    label: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_sso_setup_links_creator", ondelete="SET NULL"),
        Index("uq_sso_setup_links_token", "organization_id", "token_hash", unique=True),
    )

    @property
    def state(self) -> str:
        """revoked, expired, opened (live, in the browser that opened it) or waiting (not opened yet)."""
        from app.util import utcnow

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= utcnow():
            return "expired"
        return "opened" if self.used_at is not None else "waiting"

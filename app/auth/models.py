"""Global identity tables: users, their sessions and sign-in hand-offs."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, FetchedValue, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import BYTEA, INET, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db


class User(UserMixin, db.Model):
    """A person. Global: one identity across every organization."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # No Python default: an INSERT leaves the column to the server, because
    # the runtime role may not write it at all (app.rls).
    is_superadmin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    # Set by a super-admin (platform console): no sign-in, sessions ended.
    # Only the cross-organization role writes it (app.rls); FetchedValue: an
    # INSERT leaves it out (NULL) instead of writing a column it may not.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=FetchedValue())
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The kinds of security e-mail the user turned off (app.auth.notifications).
    security_mail_muted: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), nullable=False, default=list, server_default="{}"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("uq_users_email_lower", func.lower(email), unique=True),)

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_id(self) -> str:  # Flask-Login: we key sessions, not users
        return str(self.id)


class UserSession(db.Model):
    """One sign-in. Every host's cookie points at one of these; revoking it
    signs the user out everywhere that sign-in reached."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time the person proved who they are in this sign-in: the
    # password and their second factor (or the password alone for an account
    # that has none), or a passkey. Set at log-in and by a step-up
    # (``app.auth.stepup``); never by the hand-off, never for a support
    # session. Sensitive actions need it within ``STEP_UP_MAX_AGE``.
    authenticated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a super-admin acts as this session's user (support impersonation).
    impersonator_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    # Loaded only when read (the audit recorder labels a support session).
    impersonator: Mapped[User | None] = relationship(foreign_keys=[impersonator_id], lazy="select", viewonly=True)

    __table_args__ = (Index("ix_user_sessions_user_created", "user_id", "created_at"),)


class AuthHandoff(db.Model):
    """A single-use, short-lived ticket that carries a sign-in from the apex to
    an organization's host (each host has its own host-only cookie)."""

    __tablename__ = "auth_handoffs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_sessions.id", ondelete="CASCADE"), nullable=False
    )
    host: Mapped[str] = mapped_column(String(253), nullable=False)
    # SHA-256 of the nonce the target host put in the asking browser's cookie.
    nonce_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(db.Model):
    """A forgotten-password link: only its hash is stored; single use, 1 hour."""

    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TotpFactor(db.Model):
    """A TOTP authenticator of a user (RFC 6238, 30-second steps, 6 digits).

    The secret is stored encrypted (``app.crypto``). A row is pending until
    confirmed by a code (``confirmed_at``); removed rows stay (``removed_at``:
    the runtime role deletes nothing from global tables). At most one row per
    user is not removed (partial unique index). ``last_used_step`` is the
    time step of the last accepted code: a code is accepted only for a later
    step, so a code cannot be used twice.
    """

    __tablename__ = "totp_factors"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_totp_factors_user_current", "user_id", unique=True, postgresql_where=text("removed_at IS NULL")),
    )


class RecoveryCode(db.Model):
    """A one-time recovery code: only its SHA-256 is stored. ``used_at`` when
    it was used; ``revoked_at`` when newer codes replaced it or 2FA was turned off."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_recovery_codes_user_hash", "user_id", "code_hash"),)


class WebAuthnCredential(db.Model):
    """A passkey (WebAuthn public-key credential) of a user.

    ``credential_id`` is the authenticator's id for it (unique everywhere);
    ``public_key`` its COSE public key; ``sign_count`` the last signature
    counter seen (an assertion must carry a larger one, unless the
    authenticator keeps none: both 0). Removed rows stay (``removed_at``:
    the runtime role deletes nothing from global tables) and never sign in.
    """

    __tablename__ = "webauthn_credentials"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    credential_id: Mapped[bytes] = mapped_column(BYTEA, nullable=False)
    public_key: Mapped[bytes] = mapped_column(BYTEA, nullable=False)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    transports: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backed_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_webauthn_credentials_credential_id", "credential_id", unique=True),
        Index("ix_webauthn_credentials_user", "user_id"),
    )


class WebAuthnChallenge(db.Model):
    """A WebAuthn challenge the server handed out: single use, short-lived,
    and bound to what it was drawn for (``purpose``), to the user it was
    drawn for (``user_id``; none for a passkey sign-in, where nobody is known
    yet) and to the session it was drawn in (``session_id``, when signed in).
    The browser's cookie names the row; ``used_at`` is set by the one
    UPDATE that may claim it."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)
    challenge: Mapped[bytes] = mapped_column(BYTEA, nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_sessions.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

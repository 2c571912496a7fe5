"""Invitations: a pending seat in an organization, claimed through a mailed link.

Only the SHA-256 of the link's token is stored, so the table cannot be used to
accept an invitation. An invitation is *pending* until it is accepted,
revoked or past ``expires_at``; at most one pending invitation exists per
organization and (lower-cased) e-mail address.

A pending invitation's role can be changed: the edit carries ``version``
(``app.concurrency``), and accepting claims the row with an UPDATE that
waits for an edit in progress, so the new member gets the role the
invitation holds when it is accepted, never a half-edited one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped
from app.tenancy.models import HoldsRole
from app.util import utcnow

MESSAGE_MAX = 500  # characters of an invitation's personal message


class Invitation(HoldsRole, TenantScoped, db.Model):
    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    # Exactly one of: a system role key, or a custom role of this organization.
    role: Mapped[str | None] = mapped_column(String(32))
    custom_role_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A note from the inviter, shown (escaped) in the mail and on the accept page.
    message: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = versioned()

    inviter = relationship("User", foreign_keys=[invited_by], lazy="joined")
    custom_role = relationship(
        "Role",
        primaryjoin="and_(Invitation.organization_id == foreign(Role.organization_id),"
        " Invitation.custom_role_id == foreign(Role.id))",
        viewonly=True,
        uselist=False,
        lazy="joined",
    )

    __table_args__ = (
        CheckConstraint("(role IS NULL) <> (custom_role_id IS NULL)", name="one_role"),
        CheckConstraint("NOT (accepted_at IS NOT NULL AND revoked_at IS NOT NULL)", name="accepted_or_revoked"),
        CheckConstraint(f"char_length(message) <= {MESSAGE_MAX}", name="message_length"),
        ForeignKeyConstraint(
            ["organization_id", "custom_role_id"],
            ["roles.organization_id", "roles.id"],
            name="fk_invitations_custom_role",
        ),
        Index("uq_invitations_org_token", "organization_id", "token_hash", unique=True),
        Index(
            "uq_invitations_pending_email",
            "organization_id",
            func.lower(email),
            unique=True,
            postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    @property
    def state(self) -> str:
        """``pending``, ``accepted``, ``revoked`` or ``expired``."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "pending"

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"

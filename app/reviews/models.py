"""Access reviews: campaigns, their reviewers and the members they review.

Tenant tables (``organization_id`` leading every key), under row-level
security. An item keeps a snapshot of the member's access when the review
started (what the reviewer judged, and what the evidence shows), and the
decision taken on it; its ``version`` makes two reviewers deciding the same
item at once take turns (the second gets a 409, never a silent overwrite).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.scoping import TenantScoped

NAME_MAX = 120
NOTE_MAX = 500
SCOPES = ("all", "permissions")
# Months between one campaign and the next (None: it does not recur).
RECURRENCES = {"none": None, "monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}
RECURRENCE_LABELS = {
    "none": "Does not repeat",
    "monthly": "Every month",
    "quarterly": "Every quarter",
    "semiannual": "Every six months",
    "yearly": "Every year",
}
DECISIONS = {"keep": "Keep", "change_role": "Change role", "remove": "Remove"}


class AccessReview(TenantScoped, db.Model):
    """A review campaign: who is reviewed (everyone, or holders of chosen
    permissions), by whom, by when, and whether it repeats."""

    __tablename__ = "access_reviews"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    scope: Mapped[str] = mapped_column(String(16), nullable=False, default="all", server_default="all")
    scope_permissions: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default=text("'{}'::varchar[]")
    )
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    deadline: Mapped[date] = mapped_column(Date, nullable=False)
    recurrence: Mapped[str] = mapped_column(String(16), nullable=False, default="none", server_default="none")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The day reviewers were last reminded (the daily job mails once a day at most).
    reminded_on: Mapped[date | None] = mapped_column(Date)
    # The campaign that repeated this one (set once, by the recurrence job).
    successor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    version: Mapped[int] = versioned()

    __table_args__ = (
        CheckConstraint("scope IN ('all', 'permissions')", name="scope"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("recurrence IN ('none', 'monthly', 'quarterly', 'semiannual', 'yearly')", name="recurrence"),
        CheckConstraint("deadline >= starts_on", name="deadline"),
        Index("ix_access_reviews_org_status_deadline", "organization_id", "status", "deadline"),
        Index("ix_access_reviews_org_created", "organization_id", "created_at"),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def is_overdue(self, today: date) -> bool:
        return self.is_open and self.deadline < today


class AccessReviewer(TenantScoped, db.Model):
    """A person who may decide on a campaign's items (an Owner or Admin when it started)."""

    __tablename__ = "access_review_reviewers"

    review_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "review_id"],
            ["access_reviews.organization_id", "access_reviews.id"],
            name="fk_access_review_reviewers_review",
            ondelete="CASCADE",
        ),
        Index("ix_access_review_reviewers_org_user", "organization_id", "user_id"),
    )


class AccessReviewItem(TenantScoped, db.Model):
    """One member under review: their access when the campaign started, and the decision."""

    __tablename__ = "access_review_items"

    review_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    role_key: Mapped[str] = mapped_column(String(64), nullable=False)
    role_name: Mapped[str] = mapped_column(String(64), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, default=list)
    # The member's second factors' kinds ("TOTP"); empty: none.
    second_factor: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(16))
    new_role_key: Mapped[str | None] = mapped_column(String(64))
    new_role_name: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_by_label: Mapped[str | None] = mapped_column(String(400))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = versioned()

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "review_id"],
            ["access_reviews.organization_id", "access_reviews.id"],
            name="fk_access_review_items_review",
            ondelete="CASCADE",
        ),
        CheckConstraint("decision IS NULL OR decision IN ('keep', 'change_role', 'remove')", name="decision"),
        CheckConstraint("(decision = 'change_role') = (new_role_key IS NOT NULL)", name="new_role"),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decided_at"),
        Index("ix_access_review_items_org_review_decision", "organization_id", "review_id", "decision"),
    )
    __mapper_args__ = {"version_id_col": version}

    @property
    def factor_kinds(self) -> list[str]:
        return self.second_factor.split() if self.second_factor else []

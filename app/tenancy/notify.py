"""Who receives an organization's notification e-mails.

Every area that mails "the admins" about something asks ``recipients(org,
kind)``: the active members whose role may act on it (``KINDS``: the
permission) and who have not turned that kind off on their notifications
page. Members choose per organization (one ``notification_preferences`` row
per membership, holding what they turned off, so a new kind reaches
everyone until they opt out).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from sqlalchemy import ARRAY, DateTime, ForeignKeyConstraint, String, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.concurrency import versioned
from app.extensions import db
from app.mail import queue_mail
from app.scoping import TenantScoped
from app.tenancy.models import Membership
from app.web import hosts


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    description: str
    permission: str  # who may receive it: members whose role holds this


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind("member_joined", "A member joined", "Someone accepted an invitation or joined.", "members:update_role"),
        Kind("role_changed", "A role changed", "A member's role was changed.", "members:update_role"),
        Kind(
            "webhook_disabled",
            "A webhook endpoint was disabled",
            "An endpoint kept failing and was turned off.",
            "webhooks:manage",
        ),
        Kind(
            "audit_stream_disabled",
            "An audit stream was disabled",
            "A stream of the audit log kept failing and was turned off.",
            "audit:stream",
        ),
        Kind(
            "domain_unverified",
            "A domain became unverified",
            "A verified domain's DNS record went missing.",
            "settings:domain",
        ),
        Kind(
            "security_changed",
            "The security policy changed",
            "Session lifetimes, the IP allowlist or sign-in rules changed.",
            "settings:security",
        ),
    )
}


class NotificationPreference(TenantScoped, db.Model):
    """The kinds of e-mail one member turned off in one organization."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    muted: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list, server_default="{}")
    version: Mapped[int] = versioned()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["memberships.organization_id", "memberships.user_id"],
            name="fk_notification_preferences_membership",
            ondelete="CASCADE",
        ),
    )
    __mapper_args__ = {"version_id_col": version}


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown notification kind {kind!r}; known: {sorted(KINDS)}") from None


def receives(membership: Membership, kind: str, muted=()) -> bool:
    """True when ``membership`` may receive ``kind`` (its role) and has not turned it off."""
    k = _kind(kind)
    return k.permission in membership.permissions and kind not in (muted or ())


def recipients(org, kind: str) -> list[Membership]:
    """The active members of ``org`` (the current organization) who receive
    ``kind``: their role holds the kind's permission and they did not turn it
    off. One statement; an unknown kind raises ``KeyError``."""
    _kind(kind)
    rows = (
        db.session.execute(
            # As text: a row holding an array cannot be uniqued (the joined user needs it).
            select(Membership, func.array_to_string(NotificationPreference.muted, ","))
            .outerjoin(
                NotificationPreference,
                (NotificationPreference.organization_id == Membership.organization_id)
                & (NotificationPreference.user_id == Membership.user_id),
            )
            .where(Membership.organization_id == org.id, Membership.status == "active")
        )
        .unique()
        .all()
    )
    return [m for m, muted in rows if m.user is not None and receives(m, kind, muted)]


def preference_of(user_id) -> NotificationPreference | None:
    """The current organization's preference row of ``user_id`` (``None``: nothing turned off yet)."""
    return db.session.execute(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    ).scalar_one_or_none()


def mail_recipients(org, kind: str, subject: str, template: str, page: tuple[str, dict], **context) -> int:
    """E-mail ``template`` with ``subject`` to every ``recipients(org, kind)``,
    each with ``user``, ``org``, ``context`` and ``link``: the absolute
    address, on the organization's host, of the page ``page`` (an endpoint and
    its values). Works outside a request (jobs). Returns how many were queued."""
    with current_app.test_request_context(base_url=hosts.apex_url("/")):
        link = hosts.org_url(org, url_for(page[0], **page[1]))
    sent = 0
    for m in recipients(org, kind):
        queue_mail(m.user.email, subject, template, user=m.user, org=org, link=link, **context)
        sent += 1
    return sent

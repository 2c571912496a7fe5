"""``/api/v1/invitations``: list, create, resend, revoke, through the
members area's invitation service (the invitations page's rules: the
inviter's assignable roles, the plan's seats, duplicates skipped)."""

from __future__ import annotations

import uuid
from typing import Literal

from flask import g
from pydantic import Field

from app.api.http import Model, Out, Reply, Timestamp, operation
from app.api.problems import Problem
from app.api.views import DEFAULT_LIMIT, MAX_LIMIT, Page, _reply_page, bp, listing_page
from app.members import invitations, listing
from app.members.models import MESSAGE_MAX
from app.rbac import services as rbac
from app.util import utcnow


class InvitationOut(Out):
    id: uuid.UUID
    email: str
    role: str
    role_name: str
    status: Literal["pending", "expired"]
    created_at: Timestamp
    expires_at: Timestamp | None


class InvitationPage(Page):
    data: list[InvitationOut]


class InvitationQuery(Model):
    q: str = Field("", max_length=listing.MAX_QUERY)
    role: str = Field("", max_length=80)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str = Field("", max_length=1000)


class InvitationCreate(Model):
    emails: list[str] = Field(min_length=1, max_length=50)
    role: str = Field(min_length=1, max_length=80)
    message: str | None = Field(None, max_length=MESSAGE_MAX)


class Skipped(Out):
    email: str
    reason: str


class InviteResult(Out):
    invited: list[InvitationOut]
    skipped: list[Skipped]


def _names() -> dict:
    return {r.key: r.name for r in rbac.all_roles()}


def _out(inv, names: dict) -> InvitationOut:
    key = inv.role if inv.role else f"custom:{inv.custom_role_id}"
    expired = inv.expires_at is not None and inv.expires_at <= utcnow()
    return InvitationOut(
        id=inv.id,
        email=inv.email,
        role=key,
        role_name=names.get(key, key),
        status="expired" if expired else "pending",
        created_at=inv.created_at,
        expires_at=inv.expires_at,
    )


def _row_out(r: listing.Row, names: dict) -> InvitationOut:
    return InvitationOut(
        id=r.id,
        email=r.email,
        role=r.role_key,
        role_name=names.get(r.role_key, r.role_key),
        status="expired" if r.is_expired else "pending",
        created_at=r.created_at,
        expires_at=r.expires_at,
    )


def _invitation_or_404(invitation_id: str):
    inv = invitations.get_invitation(invitation_id)
    if inv is None or inv.accepted_at is not None or inv.revoked_at is not None:
        raise Problem("not-found", "No such pending invitation in this organization.")
    return inv


@operation(
    bp,
    "GET",
    "/invitations",
    scope="members:view",
    summary="List pending invitations",
    tag="Invitations",
    query=InvitationQuery,
    response=InvitationPage,
    list_page=True,
    errors=(400, 422),
)
def list_invitations(query: InvitationQuery):
    """Pending (and expired, not yet renewed) invitations, newest first; follow ``next``."""
    names = _names()
    args = {"q": query.q, "role": query.role, "status": "invited", "sort": "joined", "per_page": query.limit}
    page = listing_page(args, names, query.cursor, invitations=True)
    return _reply_page([_row_out(r, names) for r in page.rows], page.next_cursor)


@operation(
    bp,
    "POST",
    "/invitations",
    scope="members:invite",
    summary="Invite people",
    tag="Invitations",
    body=InvitationCreate,
    response=InviteResult,
    status=201,
    errors=(422,),
)
def create_invitations(body: InvitationCreate):
    """Invite every address with one role; members and people already invited
    are skipped (and say why). The invitation mails leave with the commit."""
    outcome = invitations.invite(", ".join(body.emails), body.role, g.membership, g.org, message=body.message)
    invitations.queue_mails(outcome.invited, g.org, g.membership.user.name)
    names = _names()
    return Reply(
        InviteResult(
            invited=[_out(inv, names) for inv, _token in outcome.invited],
            skipped=[Skipped(email=e, reason=why) for e, why in outcome.skipped],
        ),
        status=201,
    )


@operation(
    bp,
    "POST",
    "/invitations/<invitation_id>/resend",
    scope="members:invite",
    summary="Resend an invitation",
    tag="Invitations",
    response=InvitationOut,
    errors=(404, 422),
)
def resend_invitation(invitation_id: str):
    """A fresh link (the old one stops working) and a new expiry, mailed again."""
    inv = _invitation_or_404(invitation_id)
    token = invitations.resend(inv, g.membership, g.org)
    invitations.queue_mails([(inv, token)], g.org, g.membership.user.name)
    return Reply(_out(inv, _names()))


@operation(
    bp,
    "DELETE",
    "/invitations/<invitation_id>",
    scope="members:invite",
    summary="Revoke an invitation",
    tag="Invitations",
    status=204,
    errors=(404, 422),
)
def revoke_invitation(invitation_id: str):
    """The invitation's link stops working; the seat is free again."""
    inv = _invitation_or_404(invitation_id)
    invitations.revoke(inv, g.membership)
    return Reply(None, status=204)

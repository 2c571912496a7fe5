"""Memberships: look-ups, seats, and changing a member (deactivate, reactivate, remove).

Like every members service, each function works inside the current
organization (the ORM hook and RLS scope every query), checks its own
guardrails (role guardrails come from ``app.rbac.services``: last Owner,
Owners only by Owners, no escalation), raises ``UserError`` with a message
fit for the user, records one audit event per change, and never commits: the
view commits, so a change and its audit event land together or not at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError

from app import audit, hooks
from app.audit.models import AuditEvent
from app.errors import UserError
from app.extensions import db
from app.members.models import Invitation
from app.rbac import services as rbac
from app.tenancy.entitlements import limit
from app.tenancy.models import Membership
from app.util import parse_uuid


# --------------------------------------------------------------------------- look-ups
def get_membership(user_id) -> Membership | None:
    """The membership of ``user_id`` in the current organization (any status), or ``None``.

    A malformed id or a member of another organization is ``None`` alike.
    """
    uid = parse_uuid(user_id)
    if uid is None:
        return None
    return db.session.execute(select(Membership).where(Membership.user_id == uid)).unique().scalar_one_or_none()


def recent_events(m: Membership, count: int = 20) -> list[AuditEvent]:
    """The organization's newest audit events by or about the member (newest first)."""
    uid = m.user_id
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.actor_id == uid,
                    (AuditEvent.target_type.in_(("user", "member"))) & (AuditEvent.target_id == str(uid)),
                )
            )
            .order_by(AuditEvent.id.desc())
            .limit(count)
        ).scalars()
    )


# --------------------------------------------------------------------------- seats
# The one definition of a seat, enforced by ``Seats.refusal`` and shown by
# every page that shows a seat figure (dashboard, members list, invite form).
SEAT_DEFINITION = (
    "A seat is an active member or a pending invitation; deactivated members and expired invitations take none."
)


@dataclass(frozen=True)
class Seats:
    used: int | None  # active members + pending (unexpired) invitations; None: not counted (unlimited plan)
    limit: int | None  # None: unlimited
    plan_name: str
    definition = SEAT_DEFINITION

    @property
    def left(self) -> int | None:
        return None if self.limit is None or self.used is None else max(self.limit - self.used, 0)

    @property
    def summary(self) -> str:
        """The figure as every page words it: ``207 of 250 seats used on the Pro plan``."""
        if self.limit is None:
            if self.used is None:
                return f"The {self.plan_name} plan has no seat limit"
            return f"{self.used:,} seats used; the {self.plan_name} plan has no seat limit"
        return f"{self.used:,} of {self.limit:,} seats used on the {self.plan_name} plan"

    @property
    def hint(self) -> str:
        """The dashboard's line under the figure: the limit, if any, and what a seat is."""
        limit_text = f"of {self.limit:,} seats" if self.limit is not None else "no seat limit"
        return f"{limit_text} · active members and pending invitations"

    def refusal(self, wanted: int) -> str | None:
        """Why ``wanted`` more seats cannot be taken, or ``None``."""
        if self.limit is None or self.used + wanted <= self.limit:
            return None
        left = self.left
        return (
            f"The {self.plan_name} plan allows {self.limit} members, counting pending invitations; "
            f"{self.used} are taken, so {'no more people' if left == 0 else f'only {left} more'} "
            f"can be invited{'' if wanted == 1 else f' (you asked for {wanted})'}. "
            "Upgrade the plan, or remove members or invitations first."
        )


def _lock_seats(org_id) -> None:
    # Two admins inviting at once must not both take the last seat: serialise
    # seat-taking per organization for the rest of this transaction.
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('seats:' || :org, 0))"), {"org": str(org_id)}
    )


def seats(org, lock: bool = False, count_unlimited: bool = False) -> Seats:
    """Seats in use against the organization's ``seats`` limit (``lock``: hold them until commit).

    The only place seats are counted (``SEAT_DEFINITION``): the limit refuses
    with this number and every page shows this number. An unlimited plan is
    counted only with ``count_unlimited`` (the dashboard): the members list of
    an organization of 50,000 would pay a full count on every page for a
    number nothing depends on.
    """
    allowed = limit(org, "seats")
    if allowed is None and not count_unlimited:
        return Seats(None, None, org.plan.name)
    if lock:
        _lock_seats(org.id)
    # One statement for both counts: every page showing seats pays one round trip.
    used = db.session.execute(select(seats_used_column())).scalar_one()
    return Seats(used, allowed, org.plan.name)


@functools.cache
def seats_used_column():
    """The seats in use (``SEAT_DEFINITION``) as one SQL expression, so that a
    page can ask it in the same statement as its other counts.

    Built once per process, the same object every time (building it cost
    more than PostgreSQL's answer): it names no organization (the ORM adds
    the current one's filter when it runs) and no instant (an invitation is
    pending until ``statement_timestamp()``, the database's clock)."""
    members = select(func.count()).select_from(Membership).where(Membership.status == "active")
    pending = (
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > func.statement_timestamp(),
        )
    )
    return members.scalar_subquery() + pending.scalar_subquery()


def seats_from(org, used: int | None) -> Seats:
    """``seats(org)`` from a ``seats_used_column()`` value the caller selected
    itself (``None`` where ``seats(org)`` would not count)."""
    allowed = limit(org, "seats")
    return Seats(used if allowed is not None else None, allowed, org.plan.name)


def seats_counted(org) -> bool:
    """Whether ``seats(org)`` counts (it does not for an unlimited plan)."""
    return limit(org, "seats") is not None


@hooks.usage_of.connect
def _seats_in_use(org) -> dict[str, int]:
    """Seats in use (``seats``) for the platform console's usage figures."""
    return {"seats": seats(org, count_unlimited=True).used}


def dashboard_figure(org) -> tuple:
    """The dashboard's figure: seats used (``seats``, the number the limit
    enforces, as a SQL expression the dashboard selects with its others) and its hint."""
    return seats_used_column(), Seats(None, limit(org, "seats"), org.plan.name).hint


# --------------------------------------------------------------------------- member changes
def is_demotion(target: Membership, new_role_key: str) -> bool:
    """True when the new role takes away any permission the member holds now."""
    new = rbac.get_role(new_role_key)
    if new is None:
        return False
    return bool(rbac.role_of(target).permissions - new.permissions)


def refuse_self(target: Membership, actor: Membership, verb: str) -> None:
    """Refuse (``UserError``) when the actor would ``verb`` themselves: leaving is not done from the member list."""
    if target.user_id == actor.user_id:
        raise UserError(f"You cannot {verb} yourself here.")


def deactivate(target: Membership, actor: Membership) -> bool:
    """Deactivate a member: they keep their row (and role) but lose every
    permission and cannot open the organization. Refused for yourself, for
    the last Owner, and for anyone more powerful than the actor.
    Records ``member.deactivated``; ``False`` when already deactivated."""
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow deactivating members.")
    refuse_self(target, actor, "deactivate")
    if target.status == "deactivated":
        return False
    rbac.check_can_remove(target, actor)
    target.status = "deactivated"
    db.session.flush()
    audit.record(
        "member.deactivated",
        target=target.user,
        before={"status": "active"},
        after={"status": "deactivated"},
        metadata={"user_id": str(target.user_id), "email": target.user.email, "role": target.role_name},
    )
    return True


def reactivate(target: Membership, actor: Membership, org) -> bool:
    """Reactivate a deactivated member, if a seat is free on the plan.
    Records ``member.reactivated``; ``False`` when already active."""
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow reactivating members.")
    if target.status == "active":
        return False
    reason = rbac.may_touch(target, actor, "reactivate")
    if reason:
        raise UserError(reason)
    problem = seats(org, lock=True).refusal(1)
    if problem:
        raise UserError(problem)
    target.status = "active"
    db.session.flush()
    audit.record(
        "member.reactivated",
        target=target.user,
        before={"status": "deactivated"},
        after={"status": "active"},
        metadata={"user_id": str(target.user_id), "email": target.user.email, "role": target.role_name},
    )
    return True


def remove(target: Membership, actor: Membership) -> None:
    """Remove a member from the organization (their account stays).

    Refused for yourself, the last Owner and anyone more powerful than the
    actor. Other areas let go of the membership through ``hooks.member_removed``
    (projects they owned keep existing without an owner). Records
    ``member.removed`` with the role they had and what the hook reported.
    """
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow removing members.")
    refuse_self(target, actor, "remove")
    rbac.check_can_remove(target, actor)
    user = target.user
    role_name, status = target.role_name, target.status
    # Whatever refers to the membership lets go of it first (projects lose
    # their owner), and says what it did for the audit event.
    facts = {}
    for answer in hooks.member_removed.send(target):
        facts.update(answer or {})
    try:
        with db.session.begin_nested():
            db.session.delete(target)
            db.session.flush()
    except IntegrityError:
        raise UserError(
            f"{user.name} is still referenced by this organization's records; deactivate them instead."
        ) from None
    audit.record(
        "member.removed",
        target=user,
        before={"role": role_name, "status": status},
        metadata={"user_id": str(user.id), "email": user.email, **facts},
    )


def leave(actor: Membership) -> None:
    """The signed-in member leaves the organization (their account stays).

    No permission is needed to leave; the last active Owner is refused
    (``UserError`` telling them to transfer ownership or delete the
    organization), checked under the Owners' row lock so two last Owners
    cannot both leave. Other areas let go of the membership through
    ``hooks.member_removed``, as for a removal. Records ``member.left``.
    """
    rbac.check_can_remove(actor, actor)
    user = actor.user
    role_name, status = actor.role_name, actor.status
    facts = {}
    for answer in hooks.member_removed.send(actor):
        facts.update(answer or {})
    try:
        with db.session.begin_nested():
            db.session.delete(actor)
            db.session.flush()
    except IntegrityError:
        raise UserError(
            "Your membership is still referenced by this organization's records; ask an administrator to remove you."
        ) from None
    audit.record(
        "member.left",
        target=user,
        before={"role": role_name, "status": status},
        metadata={"user_id": str(user.id), "email": user.email, **facts},
    )


def assignable_role(role_key: str, actor: Membership) -> rbac.RoleInfo:
    """The role ``role_key`` if ``actor`` may give it (``UserError`` beside the role field otherwise)."""
    keys = {k for k, _ in rbac.role_choices(actor)}
    info = rbac.get_role(role_key)
    if info is None or info.key not in keys:
        raise UserError("Choose a role you are allowed to give.", "role")
    return info

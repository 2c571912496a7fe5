"""Members and invitations: every change the members area makes.

Each function works inside the current organization (the ORM hook and RLS
scope every query), checks its own guardrails (role guardrails come from
``app.rbac.services``: last Owner, Owners only by Owners, no escalation),
raises ``UserError`` with a message fit for the user, records one audit
event per change, and never commits — the view commits, so a change and its
audit event land together or not at all. Mail is sent by the view *after*
the commit, so nobody is invited to something that rolled back.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from app import audit, hooks
from app.audit.models import AuditEvent
from app.auth import services as auth_services
from app.auth.models import User, UserSession
from app.errors import UserError
from app.extensions import db
from app.members.models import Invitation
from app.rbac import services as rbac
from app.tenancy.entitlements import limit
from app.tenancy.models import Membership
from app.util import parse_uuid, utcnow

log = logging.getLogger("tenantry.members")

INVITATION_TTL = timedelta(days=7)
MAX_EMAILS_PER_INVITE = 100
TOKEN_BYTES = 32


# --------------------------------------------------------------------------- look-ups
def get_membership(user_id) -> Membership | None:
    """The membership of ``user_id`` in the current organization (any status), or ``None``.

    A malformed id or a member of another organization is ``None`` alike.
    """
    uid = parse_uuid(user_id)
    if uid is None:
        return None
    return db.session.execute(select(Membership).where(Membership.user_id == uid)).unique().scalar_one_or_none()


def get_invitation(invitation_id) -> Invitation | None:
    """An invitation of the current organization by id, or ``None``."""
    iid = parse_uuid(invitation_id)
    if iid is None:
        return None
    return db.session.execute(select(Invitation).where(Invitation.id == iid)).unique().scalar_one_or_none()


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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token and its hash (only the hash is stored)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def find_invitation_by_token(token: str) -> Invitation | None:
    """The current organization's invitation whose link carries ``token`` (any state), or ``None``."""
    if not token or len(token) > 200:
        return None
    return (
        db.session.execute(select(Invitation).where(Invitation.token_hash == hash_token(token)))
        .unique()
        .scalar_one_or_none()
    )


# --------------------------------------------------------------------------- seats
@dataclass(frozen=True)
class Seats:
    used: int | None  # active members + pending (unexpired) invitations; not counted when unlimited
    limit: int | None  # None: unlimited
    plan_name: str

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

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


def seats(org, lock: bool = False) -> Seats:
    """Seats in use against the organization's ``seats`` limit (``lock``: hold them until commit).

    An unlimited plan is not counted: an organization of 50,000 members would
    pay a full count on every page for a number nothing depends on.
    """
    allowed = limit(org, "seats")
    if allowed is None:
        return Seats(None, None, org.plan.name)
    if lock:
        _lock_seats(org.id)
    members = db.session.execute(
        select(func.count()).select_from(Membership).where(Membership.status == "active")
    ).scalar_one()
    pending = db.session.execute(
        select(func.count())
        .select_from(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())
    ).scalar_one()
    return Seats(members + pending, allowed, org.plan.name)


def dashboard_figure(org) -> tuple[int, str | None]:
    """The dashboard's figure: every membership (any status), and the seat limit when there is one."""
    members = db.session.execute(select(func.count()).select_from(Membership)).scalar_one()
    allowed = limit(org, "seats")
    return members, (f"of {allowed} seats" if allowed else None)


# --------------------------------------------------------------------------- member changes
def is_demotion(target: Membership, new_role_key: str) -> bool:
    """True when the new role takes away any permission the member holds now."""
    new = rbac.get_role(new_role_key)
    if new is None:
        return False
    return bool(rbac.role_of(target).permissions - new.permissions)


def _refuse_self(target: Membership, actor: Membership, verb: str) -> None:
    if target.user_id == actor.user_id:
        raise UserError(f"You cannot {verb} yourself here.")


def deactivate(target: Membership, actor: Membership) -> bool:
    """Deactivate a member: they keep their row (and role) but lose every
    permission and cannot open the organization. Refused for yourself, for
    the last Owner, and for anyone more powerful than the actor.
    Records ``member.deactivated``; ``False`` when already deactivated."""
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow deactivating members.")
    _refuse_self(target, actor, "deactivate")
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
    _refuse_self(target, actor, "remove")
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


def sessions_reaching(user: User, host: str) -> set[uuid.UUID]:
    """Ids of the user's sessions known to have reached ``host`` (through a sign-in hand-off)."""
    from app.auth.models import AuthHandoff

    return set(
        db.session.execute(
            select(AuthHandoff.session_id)
            .join(UserSession, UserSession.id == AuthHandoff.session_id)
            .where(UserSession.user_id == user.id, AuthHandoff.host == host.lower(), AuthHandoff.used_at.is_not(None))
        ).scalars()
    )


def revoke_session(target: Membership, session_id, actor: Membership) -> None:
    """Sign a member out of one sign-in (on every host it reached).

    The session must belong to ``target`` (``LookupError`` otherwise); the
    actor needs ``members:remove`` and may not act on someone more powerful.
    The revoking, and its ``auth.session_revoked`` event (in this
    organization's log and the platform's), is ``app.auth.services.revoke_session``.
    """
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow signing members out.")
    reason = rbac.may_touch(target, actor, "sign out")
    if reason:
        raise UserError(reason)
    if auth_services.revoke_session(target.user, session_id) is None:
        raise LookupError("no such session")


# --------------------------------------------------------------------------- invitations
_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class ParsedEmails:
    valid: list[str] = field(default_factory=list)  # normalised, first occurrence order
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (as typed, why)
    repeated: list[str] = field(default_factory=list)


def parse_emails(raw: str) -> ParsedEmails:
    """Split a comma/semicolon/whitespace separated list and validate each address.

    ``Name <a@b.c>`` is accepted for the address inside the brackets.
    """
    from app.auth.services import normalise_email

    out = ParsedEmails()
    seen = set()
    text_in = re.sub(r"[^<>,;\s]*<([^<>]+)>", r" \1 ", raw or "")
    for entry in (e for e in _SPLIT.split(text_in) if e):
        try:
            email = normalise_email(entry)
        except ValueError:
            out.invalid.append((entry, "is not a valid e-mail address"))
            continue
        if email in seen:
            if email not in out.repeated:
                out.repeated.append(email)
            continue
        seen.add(email)
        out.valid.append(email)
    return out


@dataclass
class InviteOutcome:
    """What an invite did: who was invited (with their one-time tokens) and who was skipped, and why."""

    invited: list[tuple[Invitation, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _assignable(role_key: str, actor: Membership):
    keys = {k for k, _ in rbac.role_choices(actor)}
    info = rbac.get_role(role_key)
    if info is None or info.key not in keys:
        raise UserError("Choose a role you are allowed to give.", "role")
    return info


def _set_role(obj, info) -> None:
    obj.role = info.key if info.system else None
    obj.custom_role_id = None if info.system else info.role.id


def invite(raw_emails: str, role_key: str, actor: Membership, org) -> InviteOutcome:
    """Invite every address in ``raw_emails`` with one role.

    Refused as a whole (``UserError``, nothing saved) when an address is
    malformed, there are too many, the role is not one the actor may give, or
    the plan's seats (active members + pending invitations) would be exceeded.
    Addresses of members and of people already invited are skipped and
    reported individually; an address listed twice is invited once. An
    expired invitation to the same address is renewed. Records
    ``member.invited`` per invitation.
    """
    if "members:invite" not in actor.permissions:
        raise UserError("Your role does not allow inviting people.")
    parsed = parse_emails(raw_emails)
    if parsed.invalid:
        raise UserError("; ".join(f"{e} {why}" for e, why in parsed.invalid) + ".", "emails")
    if not parsed.valid:
        raise UserError("Enter at least one e-mail address.", "emails")
    if len(parsed.valid) > MAX_EMAILS_PER_INVITE:
        raise UserError(f"Invite at most {MAX_EMAILS_PER_INVITE} people at once.", "emails")
    info = _assignable(role_key, actor)
    seat_state = seats(org, lock=True)

    outcome = InviteOutcome()
    for email in parsed.repeated:
        outcome.skipped.append((email, "was listed more than once (invited once)"))
    wanted = set(parsed.valid)
    members = {
        m.user.email.lower(): m
        for m in db.session.execute(
            select(Membership).join(User, User.id == Membership.user_id).where(func.lower(User.email).in_(wanted))
        )
        .unique()
        .scalars()
    }
    open_invites = {
        inv.email.lower(): inv
        for inv in db.session.execute(
            select(Invitation).where(
                func.lower(Invitation.email).in_(wanted),
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
        )
        .unique()
        .scalars()
    }
    todo = []
    for email in parsed.valid:
        m = members.get(email)
        if m is not None:
            outcome.skipped.append(
                (
                    email,
                    "is already a member"
                    if m.status == "active"
                    else "is a deactivated member (reactivate them instead)",
                )
            )
            continue
        inv = open_invites.get(email)
        if inv is not None and not inv.is_expired:
            outcome.skipped.append((email, "has already been invited (resend the invitation instead)"))
            continue
        todo.append((email, inv))
    problem = seat_state.refusal(len(todo)) if todo else None
    if problem:
        raise UserError(problem, "emails")
    now = utcnow()
    for email, expired in todo:
        token, token_hash = new_token()
        inv = expired or Invitation(email=email)
        _set_role(inv, info)
        inv.token_hash, inv.invited_by, inv.expires_at, inv.sent_at = (
            token_hash,
            actor.user_id,
            now + INVITATION_TTL,
            None,
        )
        if expired is None:
            db.session.add(inv)
        db.session.flush()
        audit.record(
            "member.invited",
            target=inv,
            after={"email": email, "role": info.name, "role_key": info.key},
            metadata={"expires_at": inv.expires_at.isoformat(), "renewed": expired is not None},
        )
        outcome.invited.append((inv, token))
    return outcome


def resend(inv: Invitation, actor: Membership, org) -> str:
    """A new link for an open invitation; the old link stops working at once.

    The invitation is valid for another 7 days. Reviving an expired one takes
    a seat again, so the plan limit is checked. Records ``member.invitation_resent``;
    returns the new token (for the mail).
    """
    if "members:invite" not in actor.permissions:
        raise UserError("Your role does not allow managing invitations.")
    if inv.accepted_at is not None:
        raise UserError(f"The invitation to {inv.email} was already accepted.")
    if inv.revoked_at is not None:
        raise UserError(f"The invitation to {inv.email} was revoked; invite them again instead.")
    if inv.is_expired:
        problem = seats(org, lock=True).refusal(1)
        if problem:
            raise UserError(problem)
    token, token_hash = new_token()
    inv.token_hash, inv.expires_at, inv.sent_at = token_hash, utcnow() + INVITATION_TTL, None
    db.session.flush()
    audit.record(
        "member.invitation_resent", target=inv, metadata={"email": inv.email, "expires_at": inv.expires_at.isoformat()}
    )
    return token


def revoke(inv: Invitation, actor: Membership) -> None:
    """Revoke an open invitation: its link stops working and its seat is freed. Records ``member.invitation_revoked``."""
    if "members:invite" not in actor.permissions:
        raise UserError("Your role does not allow managing invitations.")
    if inv.accepted_at is not None:
        raise UserError(f"The invitation to {inv.email} was already accepted.")
    if inv.revoked_at is not None:
        raise UserError(f"The invitation to {inv.email} was already revoked.")
    inv.revoked_at = utcnow()
    db.session.flush()
    audit.record(
        "member.invitation_revoked",
        target=inv,
        before={"state": "pending"},
        after={"state": "revoked"},
        metadata={"email": inv.email},
    )


@hooks.role_in_use.connect
def _offered_in_pending_invitations(role) -> str | None:
    """A custom role offered by a pending invitation is in use: deleting it
    would leave the link promising a role that no longer exists."""
    pending = (
        db.session.execute(
            select(Invitation.email).where(
                Invitation.custom_role_id == role.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
        .scalars()
        .all()
    )
    if not pending:
        return None
    return (
        f"{role.name} is offered in pending invitations. Revoke or resend them with another role "
        f"first: {', '.join(sorted(pending))}."
    )


@hooks.role_deleted.connect
def _forget_deleted_role(role) -> None:
    """Accepted, revoked or expired invitations keep only a historical
    reference to a deleted role: they fall back to Viewer."""
    db.session.execute(
        update(Invitation).where(Invitation.custom_role_id == role.id).values(custom_role_id=None, role="viewer"),
        execution_options={"synchronize_session": False},
    )


def mark_sent(inv: Invitation) -> None:
    inv.sent_at = utcnow()


def send_invitation_mail(inv: Invitation, token: str, org, inviter_name: str | None) -> None:
    """Mail the invitation link (on the organization's host). Raises on SMTP failure."""
    from flask import url_for

    from app.mail import send_mail
    from app.tenancy import hosts

    link = hosts.org_url(org, url_for("members.accept", token=token))
    inviter = inviter_name or "Someone"
    send_mail(
        inv.email,
        f"{inviter} invited you to join {org.name} on Tenantry",
        "invitation",
        org=org,
        inviter=inviter,
        link=link,
        role_name=inv.role_name,
        expires_at=inv.expires_at,
    )


def deliver(pairs, org, inviter_name: str | None) -> list[str]:
    """Send the mails of ``(invitation, token)`` pairs after their commit;
    stamps ``sent_at`` and returns the addresses that could not be mailed."""
    failed = []
    for inv, token in pairs:
        try:
            send_invitation_mail(inv, token, org, inviter_name)
            mark_sent(inv)
        except Exception:  # SMTP down or refused: the invitation stands; Resend retries
            log.exception("invitation mail to %s failed", inv.email)
            failed.append(inv.email)
    return failed


# --------------------------------------------------------------------------- accepting
class InvitationUnusable(Exception):
    """The link cannot be used: ``reason`` is ``unknown``, ``expired``, ``revoked`` or ``used``."""

    def __init__(self, reason: str, invitation: Invitation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.invitation = invitation


def usable_invitation(token: str) -> Invitation:
    """The pending invitation a link carries, or ``InvitationUnusable`` saying why not."""
    inv = find_invitation_by_token(token)
    if inv is None:
        raise InvitationUnusable("unknown")
    state = inv.state
    if state == "accepted":
        raise InvitationUnusable("used", inv)
    if state != "pending":
        raise InvitationUnusable(state, inv)
    return inv


def email_matches(inv: Invitation, user: User) -> bool:
    return (user.email or "").strip().lower() == inv.email.strip().lower()


def accept(inv: Invitation, user: User) -> Membership:
    """``user`` joins the organization with the invitation's role.

    The invitation is claimed with one atomic UPDATE (still pending, not
    expired), so a link works exactly once even when clicked twice at the
    same moment. The user's e-mail must be the invited one (and counts as
    verified from now on: the link reached that mailbox). Someone already a
    member keeps their role; a deactivated member is refused. Records
    ``member.joined``.
    """
    if not email_matches(inv, user):
        raise UserError(f"This invitation is for {inv.email}.", status=409)
    now = utcnow()
    if user.email_verified_at is None:
        user.email_verified_at = now  # the link reached this mailbox: that is what verification proves
    claimed = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == inv.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(accepted_at=now, accepted_by=user.id)
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        db.session.expire(inv)
        raise InvitationUnusable(inv.state if inv.state != "accepted" else "used", inv)
    db.session.expire(inv)
    m = db.session.execute(select(Membership).where(Membership.user_id == user.id)).unique().scalar_one_or_none()
    if m is not None and m.status != "active":
        # Deactivated on purpose by an administrator: an old link does not undo that.
        raise UserError(
            "Your membership of this organization is deactivated. Ask an administrator to reactivate it.", status=409
        )
    already = m is not None
    if m is None:
        m = Membership(user_id=user.id, role=inv.role, custom_role_id=inv.custom_role_id)
        db.session.add(m)
    db.session.flush()
    audit.record(
        "member.joined",
        target=user,
        after={"role": inv.role_name, "role_key": inv.role_key},
        metadata={
            "invitation_id": str(inv.id),
            "email": user.email,
            "already_member": already,
            "invited_by": str(inv.invited_by) if inv.invited_by else None,
        },
    )
    return m


def create_invited_account(inv: Invitation, name: str, password: str) -> User:
    """Create a verified account for the invited address: the token proves
    the mailbox, so no verification mail is needed. Raises ``UserError``
    (``field``: name / password) on bad input or when the account exists.
    Records ``auth.signup``."""
    from app.auth.services import create_user, find_user

    name = " ".join((name or "").split())
    if not name:
        raise UserError("Enter your name.", "name")
    if len(name) > 120:
        raise UserError("Use at most 120 characters.", "name")
    if find_user(inv.email) is not None:
        raise UserError(f"An account for {inv.email} already exists. Log in to accept.", "password")
    try:
        with db.session.begin_nested():
            user = create_user(inv.email, name, password, verified=True)
    except ValueError as e:
        raise UserError(str(e), "password") from None
    except IntegrityError:
        raise UserError(f"An account for {inv.email} already exists. Log in to accept.", "password") from None
    audit.record("auth.signup", target=user, actor=user, metadata={"via": "invitation", "invitation_id": str(inv.id)})
    return user


# --------------------------------------------------------------------------- bulk
BULK_ACTIONS = {
    # action: (permission, label, past tense, applies to)
    "role": ("members:update_role", "Change role to", "changed", "member"),
    "deactivate": ("members:remove", "Deactivate", "deactivated", "member"),
    "reactivate": ("members:remove", "Reactivate", "reactivated", "member"),
    "remove": ("members:remove", "Remove", "removed", "member"),
    "resend": ("members:invite", "Resend invitation", "resent", "invitation"),
    "revoke": ("members:invite", "Revoke invitation", "revoked", "invitation"),
}
BULK_LIMIT = 5000


def parse_row_keys(values) -> list[tuple[str, uuid.UUID]]:
    """``m:<uuid>`` / ``i:<uuid>`` values from a bulk form; ``UserError`` on anything else."""
    out, seen = [], set()
    for v in values:
        kind, _, raw = (v or "").partition(":")
        rid = parse_uuid(raw)
        if kind not in ("m", "i") or rid is None:
            raise UserError("The selection contains a row that is not valid. Reload the page and try again.", "ids")
        key = ("member" if kind == "m" else "invitation", rid)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


@dataclass
class BulkResult:
    action: str
    changed: int = 0
    unchanged: int = 0
    refused: dict = field(default_factory=dict)  # reason -> count
    not_found: int = 0
    wrong_kind: int = 0
    truncated: bool = False
    mails: list = field(default_factory=list)  # (invitation, token) to send after commit
    mail_failures: list = field(default_factory=list)

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())

    @property
    def ok(self) -> bool:
        return not (self.refused or self.not_found or self.mail_failures)

    def summary(self) -> str:
        """``12 changed, 1 refused: X is the last Owner…``"""
        _perm, _label, past, applies = BULK_ACTIONS[self.action]
        parts = [f"{self.changed} {past}"]
        if self.unchanged:
            parts.append(f"{self.unchanged} already {'so' if self.action != 'role' else 'in that role'}")
        if self.refused:
            reasons = "; ".join(f"{r}{f' (×{n})' if n > 1 else ''}" for r, n in self.refused.items())
            parts.append(f"{self.refused_count} refused: {reasons}")
        if self.not_found:
            parts.append(f"{self.not_found} not found")
        if self.wrong_kind:
            parts.append(f"{self.wrong_kind} skipped: not {'members' if applies == 'member' else 'invitations'}")
        if self.mail_failures:
            parts.append(f"mail could not be sent to {', '.join(self.mail_failures)}")
        text_out = ", ".join(parts) + "."
        if self.truncated:
            text_out += f" Only the first {BULK_LIMIT} rows were processed; run it again for the rest."
        return text_out


def bulk(
    action: str, keys: list[tuple[str, uuid.UUID]], actor: Membership, org, new_role: str | None = None
) -> BulkResult:
    """Apply ``action`` to each selected row, one at a time, each in its own savepoint.

    Every id is looked up again inside the current organization (another
    organization's id is "not found") and every change goes through the same
    service as the single-row action, with its guardrails and its own audit
    event. A refusal is counted with its reason and never undoes the others:
    the result is a summary, not all-or-nothing.
    """
    if action not in BULK_ACTIONS:
        raise UserError("Choose an action.", "action")
    perm, _label, _past, applies = BULK_ACTIONS[action]
    if perm not in actor.permissions:
        raise UserError("Your role does not allow this action.", "action")
    if action == "role":
        _assignable(new_role or "", actor)
    if not keys:
        raise UserError("Select at least one row.", "ids")
    result = BulkResult(action)
    if len(keys) > BULK_LIMIT:
        keys, result.truncated = keys[:BULK_LIMIT], True
    wanted = [rid for kind, rid in keys if kind == applies]
    result.wrong_kind = len(keys) - len(wanted)
    targets = {}
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        if applies == "member":
            stmt = select(Membership).where(Membership.user_id.in_(chunk))
            targets.update((m.user_id, m) for m in db.session.execute(stmt).unique().scalars())
        else:
            stmt = select(Invitation).where(Invitation.id.in_(chunk))
            targets.update((inv.id, inv) for inv in db.session.execute(stmt).unique().scalars())
    for rid in wanted:
        target = targets.get(rid)
        if target is None:
            result.not_found += 1
            continue
        try:
            with db.session.begin_nested():
                changed = _bulk_one(action, target, actor, org, new_role, result)
        except UserError as e:
            result.refused[e.message] = result.refused.get(e.message, 0) + 1
            continue
        except IntegrityError:
            log.exception("bulk %s failed for %s", action, rid)
            result.refused["could not be changed"] = result.refused.get("could not be changed", 0) + 1
            continue
        if changed:
            result.changed += 1
        else:
            result.unchanged += 1
    return result


def _bulk_one(action, target, actor, org, new_role, result: BulkResult) -> bool:
    if action == "role":
        _refuse_self(target, actor, "change the role of")
        return rbac.change_role(target, new_role, actor)
    if action == "deactivate":
        return deactivate(target, actor)
    if action == "reactivate":
        return reactivate(target, actor, org)
    if action == "remove":
        remove(target, actor)
        return True
    if action == "resend":
        result.mails.append((target, resend(target, actor, org)))
        return True
    if action == "revoke":
        revoke(target, actor)
        return True
    raise UserError("Choose an action.")

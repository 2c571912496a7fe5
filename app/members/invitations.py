"""Invitations: inviting by e-mail, resending, revoking, mailing the link, and accepting it.

Same rules as every members service: the current organization only, the
guardrails checked here (the plan's seats count pending invitations), one
audit event per change, no commit. Each mail is a job queued in the same
transaction (``queue_mails``), so nobody is invited to something that
rolled back, and no request waits on SMTP.
Members also answers rbac's role hooks here: a custom role offered by a
pending invitation is in use.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from flask import url_for
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import audit, concurrency, hooks
from app.auth.models import User
from app.auth.services import create_user, find_user, normalise_email
from app.errors import UserError
from app.extensions import db
from app.mail import on_sent, queue_mail
from app.members.memberships import assignable_role, seats
from app.members.models import MESSAGE_MAX, Invitation
from app.rbac import services as rbac
from app.tenancy.models import Membership
from app.util import parse_uuid, utcnow
from app.web import hosts

log = logging.getLogger("tenantry.members")

INVITATION_TTL = timedelta(days=7)
MAX_EMAILS_PER_INVITE = 100
TOKEN_BYTES = 32


def get_invitation(invitation_id) -> Invitation | None:
    """An invitation of the current organization by id, or ``None``."""
    iid = parse_uuid(invitation_id)
    if iid is None:
        return None
    return db.session.execute(select(Invitation).where(Invitation.id == iid)).unique().scalar_one_or_none()


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


def _set_role(obj, info) -> None:
    obj.role = info.key if info.system else None
    obj.custom_role_id = None if info.system else info.role.id


def clean_message(raw: str | None) -> str | None:
    """The inviter's note, trimmed (``None`` when empty); ``UserError`` beside
    ``message`` when it is longer than ``MESSAGE_MAX`` characters. It is
    stored as typed and escaped wherever it is shown."""
    text_in = (raw or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text_in:
        return None
    if len(text_in) > MESSAGE_MAX:
        raise UserError(f"Keep the message to {MESSAGE_MAX} characters (it has {len(text_in)}).", "message")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text_in):
        raise UserError("The message contains control characters; type it as plain text.", "message")
    return text_in


def invite(raw_emails: str, role_key: str, actor: Membership, org, message: str | None = None) -> InviteOutcome:
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
    message = clean_message(message)
    parsed = parse_emails(raw_emails)
    if parsed.invalid:
        raise UserError("; ".join(f"{e} {why}" for e, why in parsed.invalid) + ".", "emails")
    if not parsed.valid:
        raise UserError("Enter at least one e-mail address.", "emails")
    if len(parsed.valid) > MAX_EMAILS_PER_INVITE:
        raise UserError(f"Invite at most {MAX_EMAILS_PER_INVITE} people at once.", "emails")
    info = assignable_role(role_key, actor)
    seat_state = seats(org, lock=True)

    outcome = InviteOutcome()
    for email in parsed.repeated:
        outcome.skipped.append((email, "was listed more than once (invited once)"))
    members, open_invites = _existing(set(parsed.valid))
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
    for email, expired in todo:
        outcome.invited.append(_create_invitation(email, info, actor, expired, message))
    return outcome


def _create_invitation(email: str, info, actor: Membership, expired: Invitation | None, message, via=None):
    """Write one invitation (or renew ``expired``) and record ``member.invited``; ``(invitation, token)``."""
    token, token_hash = new_token()
    inv = expired or Invitation(email=email)
    _set_role(inv, info)
    inv.token_hash, inv.invited_by, inv.expires_at, inv.sent_at, inv.message = (
        token_hash,
        actor.user_id,
        utcnow() + INVITATION_TTL,
        None,
        message,
    )
    if expired is None:
        db.session.add(inv)
    db.session.flush()
    after = {"email": email, "role": info.name, "role_key": info.key}
    if message:
        after["message"] = message
    metadata = {"expires_at": inv.expires_at.isoformat(), "renewed": expired is not None}
    if via:
        metadata["via"] = via
    audit.record("member.invited", target=inv, after=after, metadata=metadata)
    return inv, token


def _existing(emails) -> tuple[dict, dict]:
    """``(e-mail -> membership, e-mail -> open invitation)`` for lower-cased ``emails``."""
    members = {
        m.user.email.lower(): m
        for m in db.session.execute(
            select(Membership).join(User, User.id == Membership.user_id).where(func.lower(User.email).in_(emails))
        )
        .unique()
        .scalars()
    }
    open_invites = {
        inv.email.lower(): inv
        for inv in db.session.execute(
            select(Invitation).where(
                func.lower(Invitation.email).in_(emails),
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
        )
        .unique()
        .scalars()
    }
    return members, open_invites


# --------------------------------------------------------------------------- CSV upload
CSV_MAX_BYTES = 256 * 1024
CSV_MAX_ROWS = 500

# Per-row outcomes of a CSV upload, as shown in its table.
INVITED = "invited"
ALREADY_MEMBER = "already a member"
ALREADY_INVITED = "already invited"
INVALID_EMAIL = "invalid e-mail"
UNKNOWN_ROLE = "unknown role"
ROLE_NOT_ALLOWED = "role you may not give"
OVER_LIMIT = "over the seat limit"
REPEATED = "listed twice"
BAD_ROW = "not email[,role]"


@dataclass(frozen=True)
class CsvRow:
    """One row of an upload and what became of it."""

    line: int
    email: str  # as written (trimmed)
    role: str  # the role's name when known, else as written
    outcome: str
    detail: str = ""

    @property
    def invited(self) -> bool:
        return self.outcome == INVITED


@dataclass
class CsvOutcome:
    rows: list = field(default_factory=list)  # CsvRow, in file order
    invited: list = field(default_factory=list)  # (invitation, token) whose mail to queue

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def tally(self) -> list[tuple[str, int]]:
        """``[(outcome, how many)]`` for the outcomes that occurred, invited first."""
        order = [INVITED, ALREADY_MEMBER, ALREADY_INVITED, INVALID_EMAIL, UNKNOWN_ROLE, ROLE_NOT_ALLOWED]
        order += [OVER_LIMIT, REPEATED, BAD_ROW]
        return [(o, self.count(o)) for o in order if self.count(o)]


def read_csv(data: bytes) -> list[tuple[int, list[str]]]:
    """``[(line number, cells)]`` of an uploaded file; ``UserError`` beside
    ``file`` when it is empty, too big, not UTF-8 text, or has too many rows.
    A first row whose first cell is ``email`` (any case) is a header."""
    if not data:
        raise UserError("Choose a CSV file to upload.", "file")
    if len(data) > CSV_MAX_BYTES:
        raise UserError(f"The file is larger than {CSV_MAX_BYTES // 1024} KB; split it into smaller files.", "file")
    try:
        text_in = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("The file is not UTF-8 text. Save it as CSV (UTF-8) and try again.", "file") from None
    if "\x00" in text_in:
        raise UserError("The file is not a CSV text file.", "file")
    try:
        rows = [
            (n, [c.strip() for c in cells])
            for n, cells in enumerate(csv.reader(io.StringIO(text_in, newline="")), start=1)
            if any(c.strip() for c in cells)
        ]
    except csv.Error as e:
        raise UserError(f"The file is not valid CSV ({e}).", "file") from None
    if rows and rows[0][1] and rows[0][1][0].lower() in ("email", "e-mail", "email address"):
        rows = rows[1:]
    if not rows:
        raise UserError("The file has no rows to invite. Write one e-mail address a line, optionally a role.", "file")
    if len(rows) > CSV_MAX_ROWS:
        raise UserError(f"The file has {len(rows)} rows; upload at most {CSV_MAX_ROWS} at once.", "file")
    return rows


def _role_by_name_or_key(raw: str):
    """The organization's role written as its key or its name (any case), or ``None``."""
    info = rbac.get_role(raw) if raw.lower() == raw or raw.startswith(rbac.CUSTOM_PREFIX) else None
    if info is not None:
        return info
    wanted = raw.strip().lower()
    for r in rbac.all_roles():
        if r.key == wanted or r.name.lower() == wanted:
            return r
    return None


def invite_csv(data: bytes, default_role: str, actor: Membership, org, message: str | None = None) -> CsvOutcome:
    """Invite every row of an uploaded CSV (``email[,role]``): partial success,
    each row's outcome exact.

    The file as a whole is refused (``UserError`` beside ``file``, nothing
    saved) when it cannot be read or breaks the size and row limits; the
    default role (``UserError`` beside ``role``) when the actor may not give
    it; the message when it is too long. Then each row, in file order, is
    invited, or reported as already a member, already invited, an invalid
    e-mail, an unknown role (or one the actor may not give), listed twice, or
    over the seat limit: seats are taken in file order, under the seat lock,
    so the rows past the last free seat are the ones reported. Records
    ``member.invited`` (``via: csv``) per invitation.
    """
    if "members:invite" not in actor.permissions:
        raise UserError("Your role does not allow inviting people.")
    message = clean_message(message)
    default = assignable_role(default_role, actor)
    table = read_csv(data)
    allowed = {k for k, _ in rbac.role_choices(actor)}
    out = CsvOutcome()
    parsed = []  # (line, email, info, role label)
    for line, cells in table:
        raw_email = cells[0] if cells else ""
        raw_role = cells[1] if len(cells) > 1 else ""
        if len(cells) > 2 and any(cells[2:]):
            out.rows.append(CsvRow(line, raw_email, raw_role, BAD_ROW, "more than two columns"))
            continue
        try:
            email = normalise_email(raw_email)
        except ValueError:
            out.rows.append(CsvRow(line, raw_email, raw_role, INVALID_EMAIL))
            continue
        info = default
        if raw_role:
            info = _role_by_name_or_key(raw_role)
            if info is None:
                out.rows.append(CsvRow(line, email, raw_role, UNKNOWN_ROLE))
                continue
            if info.key not in allowed:
                out.rows.append(CsvRow(line, email, info.name, ROLE_NOT_ALLOWED))
                continue
        parsed.append((line, email, info))
    members, open_invites = _existing({e for _, e, _ in parsed})
    seat_state = seats(org, lock=True)
    left = None if seat_state.limit is None else max(seat_state.limit - seat_state.used, 0)
    seen = set()
    for line, email, info in parsed:
        if email in seen:
            out.rows.append(CsvRow(line, email, info.name, REPEATED, "invited once, from its first row"))
            continue
        seen.add(email)
        m = members.get(email)
        if m is not None:
            detail = "" if m.status == "active" else "deactivated: reactivate them instead"
            out.rows.append(CsvRow(line, email, info.name, ALREADY_MEMBER, detail))
            continue
        inv = open_invites.get(email)
        if inv is not None and not inv.is_expired:
            out.rows.append(CsvRow(line, email, info.name, ALREADY_INVITED, "resend the invitation instead"))
            continue
        if left is not None and left <= 0:
            out.rows.append(
                CsvRow(line, email, info.name, OVER_LIMIT, f"the {seat_state.plan_name} plan allows {seat_state.limit}")
            )
            continue
        out.invited.append(_create_invitation(email, info, actor, inv, message, via="csv"))
        out.rows.append(CsvRow(line, email, info.name, INVITED))
        if left is not None:
            left -= 1
    out.rows.sort(key=lambda r: r.line)
    return out


# --------------------------------------------------------------------------- changing a pending invitation
def change_invitation_role(inv: Invitation, role_key: str, actor: Membership, seen_version=None) -> bool:
    """Give a pending invitation another role; ``True`` when something changed.

    The row is locked and read again (``lock_for_edit``): an edit drawn from
    another version is ``StaleEdit`` (409), and an invitation accepted,
    revoked or expired meanwhile is refused (409) — accepting claims the row
    with an UPDATE that waits for this edit, so the new member joins with
    the role the invitation holds when it is accepted. The role must be one
    the actor may give (``UserError`` beside ``role``). Records
    ``member.invitation_role_changed`` with the role before and after.
    """
    if "members:invite" not in actor.permissions:
        raise UserError("Your role does not allow managing invitations.")
    info = assignable_role(role_key, actor)
    concurrency.lock_for_edit(inv, seen_version)
    if inv.state != "pending":
        what = {"accepted": "was accepted", "revoked": "was revoked", "expired": "has expired"}[inv.state]
        raise UserError(f"The invitation to {inv.email} {what} meanwhile; its role can no longer change.", status=409)
    old_name, old_key = inv.role_name, inv.role_key
    if old_key == info.key:
        return False
    _set_role(inv, info)
    db.session.flush()
    db.session.expire(inv, ["custom_role"])
    audit.record(
        "member.invitation_role_changed",
        target=inv,
        before={"role": old_name, "role_key": old_key},
        after={"role": info.name, "role_key": info.key},
        metadata={"email": inv.email},
    )
    return True


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


def send_invitation_mail(inv: Invitation, token: str, org, inviter_name: str | None) -> None:
    """Queue the invitation mail (a job in the current transaction: it leaves
    only if the invitation is committed, and is retried until the SMTP
    server takes it). ``sent_at`` is stamped once it has been handed over."""
    link = hosts.org_url(org, url_for("members.accept", token=token))
    # "Invited by" is whoever invited them, also when someone else resends it.
    inviter = (inv.inviter.name if inv.inviter is not None else None) or inviter_name or "Someone"
    queue_mail(
        inv.email,
        f"{inviter} invited you to join {org.name} on Tenantry",
        "invitation",
        after_sent=("invitation", str(inv.id)),
        org=org,
        inviter=inviter,
        link=link,
        role_name=inv.role_name,
        expires_at=inv.expires_at,
        message=inv.message,
    )


def queue_mails(pairs, org, inviter_name: str | None) -> None:
    """Queue the mails of ``(invitation, token)`` pairs in the current
    transaction (the one that creates or renews the invitations)."""
    for inv, token in pairs:
        send_invitation_mail(inv, token, org, inviter_name)


@on_sent("invitation")
def _stamp_sent(invitation_id: str) -> None:
    """The invitation's mail was delivered (runs in the mail job, in the
    invitation's organization)."""
    db.session.execute(
        update(Invitation).where(Invitation.id == uuid.UUID(invitation_id)).values(sent_at=utcnow()),
        execution_options={"synchronize_session": False},
    )


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


def team_invited(_org=None):
    """For the getting-started checklist: a SQL boolean, true once anyone was
    invited (any invitation, whatever became of it) or the organization has
    a second member. The same expression object every time (it names no
    organization: the ORM adds the current one's filter)."""
    return _team_invited()


@functools.cache
def _team_invited():
    return or_(select(Invitation.id).exists(), select(Membership.user_id).offset(1).limit(1).exists())

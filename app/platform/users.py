"""People in the platform console: search across organizations, a person's
page, disable / re-enable, a password reset sent on their behalf.

Guarantees:

* Reads of memberships and sessions across organizations go through
  ``all_organizations(reason=...)``; ``users.disabled_at`` is written by the
  cross-organization role only (the runtime role may not).
* Disabling ends every session of the person at once (all hosts), and the
  person cannot sign in again until re-enabled (``app.auth``).
* Every action takes a reason and is recorded in the platform log in the
  same transaction; nothing here commits.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import func, or_, select, tuple_, update

from app import audit, jobs
from app.audit.models import AuditEvent
from app.auth import sessions
from app.auth.models import User, UserSession
from app.auth.tasks import password_reset_requested
from app.errors import UserError
from app.extensions import db
from app.platform.organizations import clean_reason
from app.scoping import all_organizations
from app.tenancy.models import Membership, Organization
from app.util import escape_like, parse_uuid, utcnow

PAGE_SIZE = 50
MAX_SEARCH = 100
STATUSES = ("all", "active", "disabled", "superadmin")


@dataclass(frozen=True)
class UserQuery:
    """The people list's filters, from the URL; never raises."""

    q: str = ""
    status: str = "all"
    after: str = ""

    @classmethod
    def from_args(cls, args) -> UserQuery:
        q = " ".join("".join(ch for ch in (args.get("q") or "") if ord(ch) >= 32).split())[:MAX_SEARCH]
        status = args.get("status") if args.get("status") in STATUSES else "all"
        return cls(q, status, (args.get("after") or "")[:200])

    def args(self, **changes) -> dict:
        new = replace(self, **changes)
        return {k: v for k, v in (("q", new.q), ("status", new.status), ("after", new.after)) if v and v != "all"}

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or self.status != "all"


@dataclass(frozen=True)
class UserPage:
    rows: list[tuple[User, int]]  # the person and how many organizations they belong to
    next_cursor: str | None


def _cursor(user: User) -> str:
    return base64.urlsafe_b64encode(json.dumps([user.email.lower(), str(user.id)]).encode()).decode().rstrip("=")


def _decode(token: str):
    try:
        email, uid = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(email), uuid.UUID(uid)
    except (ValueError, TypeError):
        return None


def list_users(query: UserQuery) -> UserPage:
    """One keyset page of people, by e-mail: search on e-mail and name."""
    memberships = (
        select(func.count())
        .select_from(Membership)
        .where(Membership.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    key = func.lower(User.email)
    stmt = select(User, memberships)
    if query.q:
        like = f"%{escape_like(query.q.lower())}%"
        stmt = stmt.where(or_(key.like(like), func.lower(User.name).like(like)))
    if query.status == "disabled":
        stmt = stmt.where(User.disabled_at.is_not(None))
    elif query.status == "active":
        stmt = stmt.where(User.disabled_at.is_(None))
    elif query.status == "superadmin":
        stmt = stmt.where(User.is_superadmin.is_(True))
    cursor = _decode(query.after) if query.after else None
    if cursor is not None:
        stmt = stmt.where(tuple_(key, User.id) > tuple_(*cursor))
    stmt = stmt.order_by(key, User.id).limit(PAGE_SIZE + 1)
    with all_organizations(reason="platform console: people across organizations"):
        rows = [(u, n) for u, n in db.session.execute(stmt).all()]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return UserPage(rows, _cursor(rows[-1][0]) if more and rows else None)


def find(user_id) -> User | None:
    uid = parse_uuid(user_id)
    return db.session.get(User, uid) if uid is not None else None


@dataclass(frozen=True)
class UserDetail:
    user: User
    memberships: list[tuple[Membership, Organization]]
    sessions: list[UserSession]
    events: list[AuditEvent]


def detail(user: User) -> UserDetail:
    """A person's page: their organizations and roles, their live sessions,
    their recent events in the platform log (account events, super-admin
    actions on them or by them, support sessions they ran)."""
    with all_organizations(reason="platform console: a person's page"):
        memberships = [
            (m, o)
            for m, o in db.session.execute(
                select(Membership, Organization)
                .join(Organization, Organization.id == Membership.organization_id)
                .where(Membership.user_id == user.id)
                .order_by(func.lower(Organization.name))
            ).all()
        ]
        live = list(
            db.session.execute(
                select(UserSession)
                .where(UserSession.user_id == user.id, *sessions.live())
                .order_by(UserSession.last_seen_at.desc())
                .limit(50)
            ).scalars()
        )
        events = list(
            db.session.execute(
                select(AuditEvent)
                .where(
                    AuditEvent.organization_id == audit.PLATFORM_ORG_ID,
                    # What they did, what was done to them, and (for a
                    # super-admin) what they did acting as someone else.
                    or_(
                        AuditEvent.actor_id == user.id,
                        AuditEvent.target_id == str(user.id),
                        AuditEvent.impersonator_id == user.id,
                    ),
                )
                .order_by(AuditEvent.id.desc())
                .limit(20)
            ).scalars()
        )
    return UserDetail(user, memberships, live, events)


def _record(action: str, user: User, reason: str, **metadata) -> None:
    audit.record(action, target=user, organization_id=audit.PLATFORM_ORG_ID, metadata={"reason": reason, **metadata})


def end_sessions(user: User) -> int:
    """Revoke every live session of ``user`` (every host they reached); the count."""
    with all_organizations(reason="platform console: end a person's sessions"):
        res = db.session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return res.rowcount


def disable(user: User, actor: User, reason: str) -> int:
    """Disable ``user``: no sign-in, every session ended now. Refuses the
    super-admin themselves and other super-admins. Returns sessions ended."""
    reason = clean_reason(reason)
    if user.id == actor.id:
        raise UserError("You cannot disable yourself.", "reason")
    if user.is_superadmin:
        raise UserError("A super-admin cannot be disabled here.", "reason")
    if user.disabled_at is not None:
        raise UserError("This person is already disabled.", "reason")
    with all_organizations(reason=f"platform console: disable {user.id}"):
        user.disabled_at = utcnow()
        db.session.flush()
    ended = end_sessions(user)
    _record("platform.user_disabled", user, reason, sessions_ended=ended)
    return ended


def enable(user: User, reason: str) -> None:
    """Let a disabled person sign in again (their old sessions stay ended)."""
    reason = clean_reason(reason)
    if user.disabled_at is None:
        raise UserError("This person is not disabled.", "reason")
    with all_organizations(reason=f"platform console: re-enable {user.id}"):
        user.disabled_at = None
        db.session.flush()
    _record("platform.user_enabled", user, reason)


def send_password_reset(user: User, reason: str) -> None:
    """Enqueue the ordinary password-reset job for the person's address (the
    same mail, link and limits as "forgot password")."""
    reason = clean_reason(reason)
    if user.disabled_at is not None:
        raise UserError("Re-enable this person first: a disabled account cannot sign in.", "reason")
    jobs.enqueue(password_reset_requested, origin=True, email=user.email)
    _record("platform.password_reset_sent", user, reason)

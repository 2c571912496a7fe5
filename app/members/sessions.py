"""A member's sign-ins, as an administrator of the organization sees them and signs them out.

Same rules as every members service: the current organization only, the
guardrails checked here, one audit event per change, no commit.
"""

from __future__ import annotations

from sqlalchemy import select

from app.auth import services as auth_services
from app.auth import sessions as auth_sessions
from app.auth.models import User, UserSession
from app.errors import UserError
from app.extensions import db
from app.rbac import services as rbac
from app.tenancy.models import Membership, SessionReach
from app.util import parse_uuid


def sessions_here(user: User) -> list[UserSession]:
    """The user's live sessions that reached this organization's host (its
    ``session_organizations`` rows), most recently used first: what an
    administrator here may see and sign out. Sessions that reached only
    other organizations, or only the apex, are not listed. One statement."""
    return list(
        db.session.execute(
            select(UserSession)
            .join(SessionReach, SessionReach.session_id == UserSession.id)
            .where(UserSession.user_id == user.id, SessionReach.user_id == user.id, *auth_sessions.live())
            .order_by(UserSession.last_seen_at.desc(), UserSession.created_at.desc())
        ).scalars()
    )


def _reached_here(user_id, session_id) -> bool:
    sid = parse_uuid(session_id)
    return (
        sid is not None
        and db.session.execute(
            select(SessionReach.session_id).where(SessionReach.session_id == sid, SessionReach.user_id == user_id)
        ).first()
        is not None
    )


def revoke_session(target: Membership, session_id, actor: Membership) -> None:
    """Sign a member out of one sign-in (on every host it reached).

    The session must belong to ``target`` and have reached this
    organization's host (``LookupError`` otherwise: a session used only
    elsewhere is none of this organization's business); the actor needs
    ``members:remove`` and may not act on someone more powerful.
    The revoking, and its ``auth.session_revoked`` event (in this
    organization's log and the platform's), is ``app.auth.services.revoke_session``.
    """
    if "members:remove" not in actor.permissions:
        raise UserError("Your role does not allow signing members out.")
    reason = rbac.may_touch(target, actor, "sign out")
    if reason:
        raise UserError(reason)
    if not _reached_here(target.user_id, session_id) or auth_services.revoke_session(target.user, session_id) is None:
        raise LookupError("no such session")

"""A member's sign-ins, as an administrator of the organization sees them and signs them out.

Same rules as every members service: the current organization only, the
guardrails checked here, one audit event per change, no commit.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.auth import services as auth_services
from app.auth.models import AuthHandoff, User, UserSession
from app.errors import UserError
from app.extensions import db
from app.rbac import services as rbac
from app.tenancy.models import Membership


def sessions_reaching(user: User, host: str) -> set[uuid.UUID]:
    """Ids of the user's sessions known to have reached ``host`` (through a sign-in hand-off)."""
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

"""Support impersonation: a super-admin acts as a person, for a while, in the open.

Guarantees:

* Started only with a reason (and optionally a ticket reference); refused
  for a super-admin, a disabled person, and from a support session.
* The super-admin's browser gets a new session *as the person*, marked with
  ``impersonator_id``; the person's own sessions are untouched. It lasts at
  most ``sessions.SUPPORT_SESSION_MAX`` (30 minutes), then the apex cookie
  returns to the super-admin's own session (``app.auth.sessions``).
* Everything done in it is recorded by ``audit.record`` with actor type
  ``support`` and both identities (the person, ``impersonator_id``), in the
  organization where it happens; start and stop go to the platform log.
* In it, nobody can change the person's password or e-mail
  (``app.auth.services.refuse_in_support_session``) or start another
  impersonation (the console's gate refuses a support session).
"""

from __future__ import annotations

from app import audit
from app.auth import sessions
from app.auth.models import User, UserSession
from app.errors import UserError
from app.platform.organizations import clean_reason

TICKET_MAX = 100


def start(target: User, actor: User, own: UserSession, reason: str, ticket: str | None) -> UserSession:
    """Start acting as ``target`` in this browser (caller commits)."""
    reason = clean_reason(reason)
    ticket = " ".join("".join(ch for ch in (ticket or "") if ord(ch) >= 32).split()) or None
    if ticket and len(ticket) > TICKET_MAX:
        raise UserError(f"Use at most {TICKET_MAX} characters.", "ticket")
    if target.is_superadmin:
        raise UserError("A super-admin cannot be impersonated.", "reason")
    if target.disabled_at is not None:
        raise UserError("A disabled person cannot be impersonated: re-enable them first.", "reason")
    if target.id == actor.id:
        raise UserError("You cannot impersonate yourself.", "reason")
    if own.impersonator_id is not None:
        raise UserError("Stop the current support session first.", "reason")
    rec = sessions.start_support(target, own)
    audit.record(
        "platform.impersonation_started",
        target=target,
        organization_id=audit.PLATFORM_ORG_ID,
        actor=audit.Actor.of_user(actor),
        metadata={
            "reason": reason,
            "ticket": ticket,
            "support_session_id": str(rec.id),
            "minutes": int(sessions.SUPPORT_SESSION_MAX.total_seconds() // 60),
        },
    )
    return rec


def stop(rec: UserSession) -> None:
    """End the support session ``rec`` on every host it reached (caller commits);
    recorded as the support actor, both identities."""
    if rec.impersonator_id is None:
        raise UserError("This is not a support session.", status=404)
    audit.record(
        "platform.impersonation_ended",
        target=rec.user,
        organization_id=audit.PLATFORM_ORG_ID,
        metadata={"support_session_id": str(rec.id)},
    )
    sessions.revoke(rec)

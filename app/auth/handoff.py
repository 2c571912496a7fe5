"""Sign-in hand-off from the apex to an organization's host.

Each host has its own host-only cookie, so a signed-in user arriving on
``acme.<apex>`` has no cookie there yet. The apex issues a ticket: a signed
token naming a ``auth_handoffs`` row bound to the target host, valid for at
most 60 seconds and usable once. The target host redeems it and binds its own
cookie to the same server-side session — no password asked again, and
revoking that session signs the user out on every host.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update

from app.auth.models import AuthHandoff, UserSession
from app.extensions import db
from app.util import parse_uuid, utcnow

SALT = "tenantry.handoff"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue(session: UserSession, host: str) -> str:
    """A ticket for ``host`` that carries ``session``; committed before returning."""
    ttl = min(int(current_app.config["HANDOFF_TOKEN_SECONDS"]), 60)
    ticket = AuthHandoff(session_id=session.id, host=host.lower(), expires_at=utcnow() + timedelta(seconds=ttl))
    db.session.add(ticket)
    db.session.commit()
    return _serializer().dumps(str(ticket.id))


def redeem(token: str, host: str):
    """The session a valid ticket carries for ``host``, marking it used; else ``None``.

    The UPDATE … WHERE used_at IS NULL is atomic: two concurrent redemptions
    of the same ticket cannot both succeed.
    """
    ttl = min(int(current_app.config["HANDOFF_TOKEN_SECONDS"]), 60)
    try:
        raw = _serializer().loads(token, max_age=ttl)
    except (BadSignature, TypeError, ValueError):
        return None
    ticket_id = parse_uuid(raw)
    if ticket_id is None:
        return None
    now = utcnow()
    session_id = db.session.execute(
        update(AuthHandoff)
        .where(AuthHandoff.id == ticket_id, AuthHandoff.used_at.is_(None),
               AuthHandoff.expires_at > now, AuthHandoff.host == host.lower())
        .values(used_at=now)
        .returning(AuthHandoff.session_id)
    ).scalar_one_or_none()
    db.session.commit()
    if session_id is None:
        return None
    return db.session.get(UserSession, session_id)

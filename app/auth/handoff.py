"""Sign-in hand-off from the apex to an organization's host.

Each host has its own host-only cookie, so a signed-in user arriving on
``acme.<apex>`` has no cookie there yet. The apex issues a ticket: a signed
token naming a ``auth_handoffs`` row bound to the target host, valid for at
most 60 seconds and usable once. The target host redeems it and binds its own
cookie to the same server-side session — no password asked again, and
revoking that session signs the user out on every host.

A ticket is also bound to the browser that asked for it, the way OAuth binds
an authorization code with ``state``: the target host first puts a random
nonce in a short-lived cookie of its own (``begin``), the apex records the
nonce's hash in the ticket, and the target host redeems the ticket only next
to that cookie. Without it, an attacker could sign in, stop before redeeming
their own ticket, and send the link to a victim, whose browser would then be
signed in as the attacker (login CSRF).

    apex /go?to=…  ->  org /auth/handoff/begin   (sets the nonce cookie)
                   ->  apex /auth/handoff/issue  (ticket bound to the host and the nonce's hash)
                   ->  org /auth/handoff?t=…     (redeemed next to the cookie)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update

from app.auth.models import AuthHandoff, UserSession
from app.extensions import db
from app.util import parse_uuid, utcnow

SALT = "tenantry.handoff"
NONCE_COOKIE = "tenantry_handoff"
NONCE_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def new_nonce() -> str:
    """A fresh nonce for the target host's cookie."""
    return secrets.token_urlsafe(32)


def nonce_hash(nonce: str) -> str:
    """What the apex sees and stores: the nonce itself never leaves its host."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def ttl_seconds() -> int:
    return min(int(current_app.config["HANDOFF_TOKEN_SECONDS"]), 60)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue(session: UserSession, host: str, hashed_nonce: str) -> str:
    """A ticket for ``host`` that carries ``session`` to the browser holding
    the nonce behind ``hashed_nonce``; committed before returning."""
    if not NONCE_HASH_RE.match(hashed_nonce or ""):
        raise ValueError("hashed_nonce must be a SHA-256 hex digest")
    ticket = AuthHandoff(
        session_id=session.id,
        host=host.lower(),
        nonce_hash=hashed_nonce,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds()),
    )
    db.session.add(ticket)
    db.session.commit()
    return _serializer().dumps(str(ticket.id))


def redeem(token: str, host: str, nonce: str | None):
    """The session a valid ticket carries for ``host`` and this browser's
    ``nonce`` (its cookie), marking the ticket used; else ``None``.

    The UPDATE … WHERE used_at IS NULL is atomic: two concurrent redemptions
    of the same ticket cannot both succeed.
    """
    if not nonce:
        return None
    try:
        raw = _serializer().loads(token, max_age=ttl_seconds())
    except (BadSignature, TypeError, ValueError):
        return None
    ticket_id = parse_uuid(raw)
    if ticket_id is None:
        return None
    now = utcnow()
    session_id = db.session.execute(
        update(AuthHandoff)
        .where(
            AuthHandoff.id == ticket_id,
            AuthHandoff.used_at.is_(None),
            AuthHandoff.expires_at > now,
            AuthHandoff.host == host.lower(),
            AuthHandoff.nonce_hash == nonce_hash(nonce),
        )
        .values(used_at=now)
        .returning(AuthHandoff.session_id)
    ).scalar_one_or_none()
    db.session.commit()
    if session_id is None:
        return None
    return db.session.get(UserSession, session_id)

"""SCIM bearer tokens: create (shown once), verify, list, revoke.

A token reads ``scim_<key_id>_<secret>``: ``key_id`` (16 hex characters) is
public — the settings page shows ``scim_<key_id>`` — and the secret is 40
URL-safe characters from ``secrets`` (240 bits). Only ``sha256(token)`` is
stored: as for API keys (``app.api.keys``), a random secret of that size
cannot be guessed, so a fast hash keeps every SCIM request cheap and a
stolen table still yields no token.

A token is the organization's, not a person's: it keeps working when the
admin who made it leaves (an identity provider must not stop provisioning
because one admin did), until it is revoked. Every use is audited under
actor type ``scim`` with the token's name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from app import audit
from app.errors import UserError
from app.extensions import db
from app.scim.models import NAME_MAX, TOKEN_PREFIX, ScimToken
from app.tenancy.models import Membership
from app.util import parse_uuid, utcnow

TOKEN_RE = re.compile(r"^scim_([0-9a-f]{16})_([A-Za-z0-9_-]{40})$")
# "Last used" is written at most this often: a write per request would cost more than the request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class TokenRefused(Exception):
    """The request's token does not authenticate (answered 401; ``reason`` says why)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def hash_token(token: str) -> str:
    """SHA-256 of the whole token, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh ``(key_id, full token)``."""
    key_id = secrets.token_hex(8)
    return key_id, f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(30)}"


def verify(raw: str | None) -> ScimToken:
    """The current organization's live token ``raw``, or ``TokenRefused``.

    Refused: missing, malformed, unknown here (another organization's token
    is unknown here: RLS and the ORM filter see only this one), wrong secret
    (compared in constant time), revoked. Touches "last used" at most every
    five minutes.
    """
    if not raw:
        raise TokenRefused("Send a SCIM token: Authorization: Bearer scim_…")
    m = TOKEN_RE.match(raw)
    if m is None:
        raise TokenRefused("This is not a SCIM token of this service.")
    token = db.session.execute(select(ScimToken).where(ScimToken.key_id == m.group(1))).unique().scalar_one_or_none()
    if token is None or not hmac.compare_digest(token.secret_hash, hash_token(raw)):
        raise TokenRefused("This SCIM token is not valid for this organization.")
    if token.revoked_at is not None:
        raise TokenRefused("This SCIM token was revoked.")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(
            update(ScimToken)
            .where(ScimToken.id == token.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return token


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give the token a name (which identity provider uses it).", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    return name


def create_token(name: str | None, actor: Membership, *, impersonated: bool = False) -> tuple[ScimToken, str]:
    """A new token of the current organization and its full text (shown once).

    Refused (``UserError``, nothing written): a bad name, or a support
    session (a token would outlive it). Records ``scim.token_created``.
    """
    if impersonated:
        raise UserError("Support sessions cannot create SCIM tokens: a token would outlive the session.", status=403)
    name = _clean_name(name)
    key_id, full = new_token()
    token = ScimToken(key_id=key_id, secret_hash=hash_token(full), name=name, created_by=actor.user_id)
    db.session.add(token)
    db.session.flush()
    audit.record("scim.token_created", target=_target(token), after={"name": name, "token_prefix": token.prefix})
    return token, full


def list_tokens() -> list[ScimToken]:
    """The organization's tokens, newest first (revoked ones included)."""
    return list(
        db.session.execute(select(ScimToken).order_by(ScimToken.created_at.desc(), ScimToken.id)).unique().scalars()
    )


def find_token(token_id) -> ScimToken | None:
    """The current organization's token with this id (malformed and foreign ids: ``None``)."""
    tid = parse_uuid(token_id)
    if tid is None:
        return None
    return db.session.execute(select(ScimToken).where(ScimToken.id == tid)).unique().scalar_one_or_none()


def revoke_token(token: ScimToken) -> bool:
    """Revoke ``token`` at once (its next request is 401); ``False`` when it already was.
    Records ``scim.token_revoked``."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    db.session.flush()
    audit.record("scim.token_revoked", target=_target(token), after={"revoked_at": token.revoked_at})
    return True


def _target(token: ScimToken) -> tuple:
    return ("scim_token", str(token.id), f"{token.name} ({token.prefix})")

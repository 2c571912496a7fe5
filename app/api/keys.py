"""API keys: issue, verify, list, revoke, rotate.

A key reads ``tnt_<key_id>_<secret><crc>``:

* ``tnt_`` lets secret scanners (GitHub's, gitleaks) recognise a leaked key;
* ``key_id``: 16 hex characters, public, unique in the organization; the
  list shows ``tnt_<key_id>`` as the key's prefix;
* ``secret``: 32 base62 characters from ``secrets`` (about 190 bits);
* ``crc``: CRC32 of everything before it, 6 base62 characters, so that a
  scanner (and this module) tells a real key from a random string offline.

Only ``sha256(key)`` is stored. A slow password hash (argon2) is for
secrets people choose, which are guessable: it makes each guess expensive.
A 190-bit random secret cannot be guessed, however fast the hash; a fast
hash keeps every API request cheap (microseconds, not the 50 ms a password
hash costs), and SHA-256 is still one-way, so a stolen table yields no key.

What a key may do (``effective_scopes``) is its scopes *intersected with
its creator's current permissions*, recomputed on every request: a creator
demoted to Viewer leaves a key that can only read what a Viewer reads; a
creator deactivated or removed leaves a key that no longer authenticates at
all (401) — a key must never outlive the trust placed in the person who
made it, and silently handing it to "the organization" would create a
principal nobody answers for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app import audit
from app.api.models import NAME_MAX, ApiKey
from app.errors import UserError
from app.extensions import db
from app.permissions import ALL, BY_NAME
from app.tenancy.models import Membership
from app.util import parse_uuid, utcnow

PREFIX = "tnt_"
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET_LEN = 32
CRC_LEN = 6
KEY_RE = re.compile(rf"^tnt_([0-9a-f]{{16}})_([0-9A-Za-z]{{{SECRET_LEN}}})([0-9A-Za-z]{{{CRC_LEN}}})$")
# Expiry choices offered when a key is made (days); NEVER (no expiry) only
# while the organization's policy allows it (``api_keys_may_never_expire``).
EXPIRY_DAYS = (30, 90, 365)
NEVER = "never"
# How long a rotated key keeps working beside its successor (hours).
ROTATION_OVERLAPS = (0, 1, 24, 24 * 7)


def _b62(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out)).rjust(width, "0")


def checksum(body: str) -> str:
    """The 6-character CRC32 (base62) of ``body`` (``tnt_<key_id>_<secret>``)."""
    return _b62(zlib.crc32(body.encode()), CRC_LEN)


def hash_key(key: str) -> str:
    """SHA-256 of the whole key, hex (see the module docstring for why a fast hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, full key)``."""
    key_id = secrets.token_hex(8)
    secret = "".join(secrets.choice(_B62) for _ in range(SECRET_LEN))
    body = f"{PREFIX}{key_id}_{secret}"
    return key_id, body + checksum(body)


def parse(key: str) -> str | None:
    """The ``key_id`` of a well-formed key with a valid checksum, else ``None``."""
    m = KEY_RE.match(key or "")
    if m is None:
        return None
    body = key[:-CRC_LEN]
    if not hmac.compare_digest(checksum(body), m.group(3)):
        return None
    return m.group(1)


# --------------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class Verified:
    """A key that authenticates: the key, the creator's membership, what it may do."""

    key: ApiKey
    membership: Membership
    scopes: frozenset[str]


class KeyRefused(Exception):
    """The request's key does not authenticate (answered 401, ``reason`` says why)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def effective_scopes(key: ApiKey, creator: Membership | None) -> frozenset[str]:
    """What ``key`` may do now: its scopes that its creator still holds
    (nothing when the creator is no longer an active member)."""
    if creator is None or creator.status != "active":
        return frozenset()
    return frozenset(key.scopes) & creator.permissions & ALL


def verify(raw: str | None) -> Verified:
    """The current organization's live key ``raw``, or ``KeyRefused``.

    Refused: missing, malformed or bad checksum, unknown here (another
    organization's key is unknown here: RLS and the ORM filter see only
    this one), wrong secret (compared in constant time), revoked, expired,
    or a creator who is no longer an active member.
    """
    if not raw:
        raise KeyRefused("Send an API key: Authorization: Bearer tnt_…")
    key_id = parse(raw)
    if key_id is None:
        raise KeyRefused("This is not a Tenantry API key (its format or checksum is wrong).")
    row = db.session.execute(
        select(ApiKey, Membership)
        .outerjoin(Membership, Membership.user_id == ApiKey.created_by)
        .where(ApiKey.key_id == key_id)
    ).first()
    if row is None or not hmac.compare_digest(row.ApiKey.secret_hash, hash_key(raw)):
        raise KeyRefused("This API key is not valid for this organization.")
    key, creator = row
    now = utcnow()
    if key.revoked_at is not None:
        raise KeyRefused("This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRefused("This API key has expired.")
    if creator is None or creator.status != "active":
        raise KeyRefused("The person who created this API key is no longer an active member; the key stopped working.")
    return Verified(key, creator, effective_scopes(key, creator))


# --------------------------------------------------------------------------- managing
def may_create(membership: Membership, impersonated: bool, members_may_create: bool = False) -> str | None:
    """``None`` when this member may create keys, else why not.

    A support session (a super-admin acting as the person) never may: a key
    would outlive the session and act as the person after support left.
    """
    if impersonated:
        return "Support sessions cannot create API keys: a key would outlive the session."
    if "apikeys:manage" in membership.permissions or members_may_create:
        return None
    return "Your role does not allow creating API keys."


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give the key a name (what uses it).", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    return name


def _clean_scopes(scopes, actor: Membership) -> list[str]:
    wanted = set(scopes or ())
    if not wanted:
        raise UserError("Choose at least one permission for the key.", "scopes")
    unknown = wanted - ALL
    if unknown:
        raise UserError(f"Unknown permission: {', '.join(sorted(unknown))}.", "scopes")
    beyond = wanted - actor.permissions
    if beyond:
        raise UserError(
            f"A key can only have permissions you hold yourself; you do not hold {', '.join(sorted(beyond))}.",
            "scopes",
        )
    return [p for p in BY_NAME if p in wanted]  # catalogue order


def create_key(
    name: str,
    scopes,
    expires_in_days,
    actor: Membership,
    *,
    impersonated: bool = False,
    members_may_create: bool = False,
    never_allowed: bool = False,
) -> tuple[ApiKey, str]:
    """A new key of the current organization and its full text (shown once).

    ``expires_in_days``: one of ``EXPIRY_DAYS``, or ``NEVER`` when
    ``never_allowed`` (the organization's policy). Raises ``UserError``
    (nothing written) for a bad name, no scopes, a scope the creator does not
    hold, an expiry not offered, or a creator who may not create keys.
    """
    refusal = may_create(actor, impersonated, members_may_create)
    if refusal:
        raise UserError(refusal, status=403)
    name = _clean_name(name)
    scope_list = _clean_scopes(scopes, actor)
    days = _expiry_days(expires_in_days, never_allowed)
    key_id, full = new_key()
    key = ApiKey(
        key_id=key_id,
        secret_hash=hash_key(full),
        name=name,
        scopes=scope_list,
        created_by=actor.user_id,
        expires_at=None if days is None else utcnow() + timedelta(days=days),
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.created",
        target=key,
        after={"name": name, "scopes": scope_list, "expires_at": key.expires_at, "key_prefix": key.prefix},
    )
    return key, full


def _expiry_days(value, never_allowed: bool) -> int | None:
    """Days until a new key expires (``None``: never), or ``UserError``."""
    if value == NEVER:
        if never_allowed:
            return None
        raise UserError(
            "This organization's security policy requires keys to expire: choose 30, 90 or 365 days.", "expires_in_days"
        )
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = None
    if days not in EXPIRY_DAYS:
        raise UserError(f"Choose an expiry of {', '.join(str(d) for d in EXPIRY_DAYS)} days.", "expires_in_days")
    return days


def list_keys(created_by=None) -> list[ApiKey]:
    """The organization's keys (only those ``created_by`` this user, when
    given), newest first (revoked ones included, marked)."""
    stmt = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if created_by is not None:
        stmt = stmt.where(ApiKey.created_by == created_by)
    return list(db.session.execute(stmt).unique().scalars())


def find_key(key_uuid) -> ApiKey | None:
    """The current organization's key with this id, or ``None`` (malformed and foreign ids alike)."""
    kid = parse_uuid(key_uuid)
    if kid is None:
        return None
    return db.session.execute(select(ApiKey).where(ApiKey.id == kid)).unique().scalar_one_or_none()


def revoke_key(key: ApiKey) -> bool:
    """Revoke ``key`` at once (its next request is 401). ``False`` when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    db.session.flush()
    audit.record("api_key.revoked", target=key, after={"revoked_at": key.revoked_at})
    return True


def rotate_key(
    key: ApiKey,
    overlap_hours,
    actor: Membership,
    *,
    impersonated: bool = False,
    members_may_create: bool = False,
    never_allowed: bool = False,
) -> tuple[ApiKey, str]:
    """A successor with the same name and scopes (those the actor holds) and a
    fresh expiry of the same length (a key without one gets none while the
    policy still allows it, else the longest offered); ``key`` keeps working
    for ``overlap_hours`` more (0: it stops now)."""
    try:
        hours = int(overlap_hours)
    except (TypeError, ValueError):
        hours = None
    if hours not in ROTATION_OVERLAPS:
        raise UserError("Choose how long the old key keeps working.", "overlap_hours")
    if key.revoked_at is not None:
        raise UserError("A revoked key cannot be rotated.")
    if key.expires_at is None and never_allowed:
        days = NEVER
    else:
        remaining = (key.expires_at - key.created_at).days if key.expires_at else EXPIRY_DAYS[-1]
        days = min((d for d in EXPIRY_DAYS if d >= remaining), default=EXPIRY_DAYS[-1])
    new, full = create_key(
        key.name,
        key.scopes,
        days,
        actor,
        impersonated=impersonated,
        members_may_create=members_may_create,
        never_allowed=never_allowed,
    )
    end = utcnow() + timedelta(hours=hours)
    key.expires_at = min(end, key.expires_at) if key.expires_at else end
    key.rotated_to = new.id
    db.session.flush()
    audit.record("api_key.rotated", target=key, after={"successor": new.prefix, "old_key_valid_until": key.expires_at})
    return new, full

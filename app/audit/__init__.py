"""Audit log: ``record()`` is the one call every change makes.

This package is the recorder: ``record()``, the action catalogue, the tables
and the per-row MAC. It sits just above the foundation because identity,
tenancy and rbac record events too. What reads the log - the viewer, its
exports, the sealer, verification, retention and the ``flask audit``
commands - is the ``app.auditlog`` area, above them all.

Guarantees of ``record(action, target=None, before=None, after=None, metadata=None)``:

* **Same transaction.** The event is inserted through ``db.session`` in the
  caller's open transaction and never committed here: the caller's commit
  writes the change and its event together; a rollback leaves neither.
* **A complete catalogue.** ``action`` must be listed in
  ``app.audit.catalogue`` (``ValueError`` otherwise), so the viewer's filter
  and the docs always know every action.
* **Context captured here, not by callers.** The actor (the signed-in user;
  ``support`` with both identities when a super-admin acts as a user through
  ``UserSession.impersonator_id``, and then the event is also copied into
  the platform log, naming the organization; an API key in ``g.api_key``; ``system``
  outside a request; ``anonymous`` for a request with nobody signed in), IP,
  user agent, request id, and the organization (the current tenant scope).
* **No secrets.** Fields whose name contains a word like password, token,
  secret, hash or key are stored as ``"[redacted]"`` in ``changes`` and
  ``metadata`` (the fact that they changed is kept, never the value).
* **Tamper evidence.** Each row carries an HMAC over its canonical form and
  is later chained by the sealer (design: ``app.audit.integrity``).

Where account-level events go (``auth.*``: log-in, failed log-in, password
change ...): a person's sign-in belongs to no organization, and a failed
log-in for an unknown address must be recorded without an organization to
put it in. They go to the **platform log**: a reserved organization row
(``PLATFORM_ORG_ID``, slug ``platform``, created by the migration, no
members, so no picker lists it and no host serves it) whose log only
super-admins read (on the apex: ``/audit``). When such an event happens on
an organization's host (logging out of ``acme``), it is also written into
that organization's log, where its admins see it. It is *not* copied into
every organization the person belongs to: one organization must not learn
what a member does in another (a consultant's sign-in times and IP
addresses are not Acme's business when they work for Globex).

A failed log-in for an unknown e-mail records only a keyed fingerprint and
the domain of what was typed (people type passwords into the e-mail field),
and the response is the auth area's business: the same as for a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from flask import g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from app import hooks
from app.audit import catalogue
from app.audit.integrity import canonical_ip, current_key, row_mac
from app.audit.models import AuditEvent
from app.extensions import db
from app.scoping import current_org_id, tenant_context

log = logging.getLogger("tenantry.audit")

PLATFORM_ORG_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
PLATFORM_SLUG = "platform"
REDACTED = "[redacted]"
MAX_STRING = 4000

__all__ = [
    "record",
    "AuditError",
    "Actor",
    "PLATFORM_ORG_ID",
    "REDACTED",
    "redact",
    "is_secret_field",
    "email_fingerprint",
    "ensure_platform_org",
]


class AuditError(RuntimeError):
    """``record()`` was called in a way that cannot produce a correct event."""


@dataclass(frozen=True)
class Actor:
    """Who did it. ``type`` is one of user, api_key, system, support, anonymous,
    scim (a SCIM token: the organization's identity provider)."""

    type: str
    id: uuid.UUID | None = None
    label: str | None = None
    impersonator_id: uuid.UUID | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls("system", None, label)

    @classmethod
    def of_user(cls, user) -> Actor:
        return cls("user", user.id, user_label(user))


def user_label(user) -> str:
    name = (getattr(user, "name", "") or "").strip()
    email = getattr(user, "email", "") or ""
    return f"{name} <{email}>" if name else email


# ----------------------------------------------------------------------------- secrets
_DENY_WORDS = frozenset(
    [
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "hash",
        "hashed",
        "hashes",
        "key",
        "keys",
        "apikey",
        "apikeys",
        "otp",
        "totp",
        "hotp",
        "salt",
        "signature",
        "credential",
        "credentials",
        "private",
        "privatekey",
        "recovery",
        "cookie",
        "cookies",
        "authorization",
        "bearer",
        "pin",
        "cvv",
        "mac",
    ]
)
# Names that contain a deny word but hold nothing secret.
_ALLOW_FIELDS = frozenset({"plan_key", "role_key", "key_prefix", "key_id", "idempotency_key"})
_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_field(name) -> bool:
    """True when a field called ``name`` may hold a secret (denylist by word)."""
    s = str(name)
    if s.lower() in _ALLOW_FIELDS:
        return False
    words = {w.lower() for w in _WORD_RE.findall(s)}
    return bool(words & _DENY_WORDS) or "password" in s.lower() or "secret" in s.lower()


def _clean(value, depth: int = 0):
    """A JSON value that survives a JSONB round trip byte for byte, secrets removed."""
    if depth > 12:
        return "…"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        # JSONB stores numbers as numeric: 1e16 would come back as an integer
        # and no longer serialise the same way. Integral floats become ints,
        # the rest keep their repr, which numeric preserves.
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value if 1e-6 < abs(value) < 1e15 else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return _clean(value.value, depth + 1)
    if isinstance(value, bytes):
        return REDACTED  # raw bytes in an audit trail are keys or hashes more often than not
    if isinstance(value, dict):
        return {
            _clean_str(str(k))[:200]: (REDACTED if is_secret_field(k) and v is not None else _clean(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_clean(v, depth + 1) for v in items]
    return _clean_str(str(value))


def _clean_str(s: str) -> str:
    s = s.replace("\x00", "")
    s = s.encode("utf-8", "replace").decode("utf-8")
    return s if len(s) <= MAX_STRING else s[:MAX_STRING] + "…"


def redact(data) -> dict:
    """``data`` (a dict) with secret-looking fields replaced by the marker, JSON-safe."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        data = {"value": data}
    return _clean(data)


def diff(before, after) -> dict:
    """``{field: [before, after]}`` for every field that differs (secrets masked)."""
    if before is not None and not isinstance(before, dict):
        before = {"value": before}
    if after is not None and not isinstance(after, dict):
        after = {"value": after}
    b, a = before or {}, after or {}
    out = {}
    for k in list(b) + [k for k in a if k not in b]:
        old, new = b.get(k), a.get(k)
        if k in b and k in a and old == new:
            continue
        if is_secret_field(k):
            out[_clean_str(str(k))[:200]] = [
                REDACTED if old is not None else None,
                REDACTED if new is not None else None,
            ]
        else:
            out[_clean_str(str(k))[:200]] = [_clean(old), _clean(new)]
    return out


def email_fingerprint(email: str) -> dict:
    """What a failed log-in for an unknown address records: a keyed fingerprint
    (correlates repeated attempts) and the domain, never the text typed."""
    typed = (email or "").strip().lower()
    _, key = current_key()
    digest = hmac.new(key, b"email|" + typed.encode(), hashlib.sha256).hexdigest()[:16]
    domain = typed.rsplit("@", 1)[1][:100] if "@" in typed else None
    return {"email_fingerprint": digest, "email_domain": domain}


# ----------------------------------------------------------------------------- targets
_LABEL_ATTRS = ("name", "title", "label", "email", "slug", "url")
_TYPE_NAMES = {
    "Organization": "organization",
    "User": "user",
    "Membership": "member",
    "Role": "role",
    "Project": "project",
    "UserSession": "session",
    "Invitation": "invitation",
    "ApiKey": "api_key",
    "WebhookEndpoint": "webhook",
    "Webhook": "webhook",
}


def resolve_target(target) -> tuple[str | None, str | None, str | None]:
    """``(type, id, label)`` for a model instance, a tuple, a dict or ``None``."""
    if target is None:
        return None, None, None
    if isinstance(target, (tuple, list)):
        t = list(target) + [None] * (3 - len(target))
        return _short(t[0], 32), _short(t[1], 128), _short(t[2], 300)
    if isinstance(target, dict):
        return _short(target.get("type"), 32), _short(target.get("id"), 128), _short(target.get("label"), 300)
    custom = getattr(target, "__audit_target__", None)
    if callable(custom):
        return resolve_target(tuple(custom()))
    cls = type(target).__name__
    ttype = _TYPE_NAMES.get(cls) or getattr(target, "__tablename__", cls.lower()).rstrip("s")
    if cls == "Membership":
        user = getattr(target, "user", None)
        return "member", str(target.user_id), _short(user_label(user) if user else None, 300)
    if cls == "User":
        return "user", str(target.id), _short(user_label(target), 300)
    if cls == "UserSession":
        return "session", str(target.id), _short(f"Session from {target.ip or 'unknown address'}", 300)
    tid = getattr(target, "id", None)
    if tid is None:
        try:
            ident = sa_inspect(target).identity or ()
            tid = ":".join(str(v) for v in ident[1:] or ident) or None
        except Exception:
            tid = None
    label = next((getattr(target, a) for a in _LABEL_ATTRS if getattr(target, a, None)), None)
    return _short(ttype, 32), _short(tid, 128), _short(label, 300)


def _short(value, n: int) -> str | None:
    if value is None:
        return None
    s = _clean_str(str(value))
    return s[:n]


# ----------------------------------------------------------------------------- context
def _current_actor() -> Actor:
    if not has_request_context():
        return Actor.system(g.get("audit_system_label", "system") if _has_app_g() else "system")

    sess = g.get("user_session")
    user = None
    if current_user and current_user.is_authenticated:
        user = current_user
    elif sess is not None and getattr(sess, "revoked_at", None) is None:
        user = sess.user  # signed in during this very request (log-in, sign-up)
    if user is not None:
        imp = getattr(sess, "impersonator_id", None) if sess is not None else None
        if imp is not None:
            sup = sess.impersonator
            label = f"{user_label(user)} (support: {user_label(sup) if sup else imp})"
            return Actor("support", user.id, label, imp)
        return Actor.of_user(user)
    key = g.get("api_key")
    if key is not None:
        label = getattr(key, "name", None) or getattr(key, "prefix", None) or "API key"
        prefix = getattr(key, "prefix", None)
        label = f"{label} ({prefix})" if prefix and prefix != label else label
        # The key and the person it acts for: the log says whose key it was.
        creator = getattr(key, "creator", None)
        if creator is not None:
            label = f"{label}, key of {user_label(creator)}"
        return Actor("api_key", getattr(key, "id", None), label)
    token = g.get("scim_token")
    if token is not None:
        # The organization's identity provider, through one of its SCIM tokens.
        return Actor("scim", getattr(token, "id", None), f"SCIM: {getattr(token, 'name', None) or 'token'}")
    # A visitor without an account whom a view identified otherwise (an IT
    # contact on an SSO setup link) names themselves through g.audit_actor.
    named = g.get("audit_actor")
    if isinstance(named, Actor):
        return named
    return Actor("anonymous", None, "anonymous")


def _has_app_g() -> bool:
    return has_app_context()


def _coerce_actor(actor) -> Actor:
    if actor is None:
        return _current_actor()
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, str):
        return Actor.system(actor)
    if hasattr(actor, "email"):
        return Actor.of_user(actor)
    raise AuditError(f"cannot use {actor!r} as an audit actor")


def _request_context() -> dict:
    if not has_request_context():
        return {"ip": None, "user_agent": None, "request_id": None}
    ua = (request.user_agent.string or "")[:400] or None
    return {
        "ip": canonical_ip(request.remote_addr),
        "user_agent": _clean_str(ua) if ua else None,
        "request_id": (g.get("request_id") or None),
    }


def _current_org_id():
    org_id = current_org_id()
    if org_id is None and has_request_context() and g.get("org") is not None:
        org_id = g.org.id
    return org_id


def ensure_platform_org(session=None) -> None:
    """Make sure the platform organization row exists (the migration creates
    it; this re-creates it after a test truncation or a restore)."""
    (session or db.session).execute(
        text(
            # The status is the server's default, 'active': the runtime role
            # may not write it (app.rls.RUNTIME_GLOBAL_WRITES).
            "INSERT INTO organizations (id, slug, name, plan_key, settings) "
            "VALUES (:id, :slug, 'Tenantry platform', 'enterprise', '{\"system\": true}'::jsonb) "
            "ON CONFLICT DO NOTHING"
        ),
        {"id": PLATFORM_ORG_ID, "slug": PLATFORM_SLUG},
    )


# ----------------------------------------------------------------------------- record
_NEXT_IDS = text("SELECT nextval('audit_events_id_seq') AS id, clock_timestamp() AS ts FROM generate_series(1, :n)")


@dataclass(frozen=True)
class Recorded:
    id: int
    organization_id: uuid.UUID
    action: str
    occurred_at: datetime


def record(
    action: str, target=None, before=None, after=None, metadata=None, *, organization_id=None, actor=None
) -> Recorded:
    """Record ``action`` in the current transaction (never commits).

    ``target``: the changed thing (a model instance, ``(type, id, label)`` or
    ``{"type", "id", "label"}``); ``before``/``after``: dicts of the fields
    that changed (only differences are kept); ``metadata``: anything else
    useful. ``organization_id`` and ``actor`` override the captured context
    (jobs, imports). Returns the organization's event (or the platform's for
    an account event off an organization host).
    """
    spec = catalogue.BY_NAME.get(action)
    if spec is None:
        raise ValueError(f"unknown audit action {action!r}: add it to app/audit/catalogue.py")
    org_id = organization_id or _current_org_id()
    if spec.account:
        destinations = [PLATFORM_ORG_ID]
        if org_id is not None and org_id != PLATFORM_ORG_ID:
            destinations.insert(0, org_id)
    elif org_id is None:
        raise AuditError(
            f"{action}: no organization in scope; record it inside tenant_context(org_id) or pass organization_id"
        )
    else:
        destinations = [org_id]

    who = _coerce_actor(actor)
    # Support (a super-admin acting as a person): the platform log keeps a
    # copy of everything done, so the platform can answer for its staff
    # without reading every organization's log.
    support_copy = who.type == "support" and PLATFORM_ORG_ID not in destinations
    if support_copy:
        destinations.append(PLATFORM_ORG_ID)
    ctx = _request_context()
    session = db.session
    ids = session.execute(_NEXT_IDS, {"n": len(destinations)}).all()
    table = _events_table()
    results = []
    scope_org = current_org_id()
    for dest, (eid, ts) in zip(destinations, ids, strict=False):
        meta = metadata
        if support_copy and dest == PLATFORM_ORG_ID:
            meta = {**(metadata or {}), "support_in_organization": _org_label(org_id)}
        row = event_row(dest, eid, ts, action, who, target, before, after, meta, ctx)
        if dest == PLATFORM_ORG_ID:
            ensure_platform_org(session)
        if dest == scope_org:
            session.execute(table.insert(), [row])
            _announce(dest, row)
        else:
            # Another organization's log (the platform log, or a job writing
            # for an organization): switch all three layers for this insert.
            with tenant_context(dest):
                session.execute(table.insert(), [row])
                _announce(dest, row)
        results.append(Recorded(eid, dest, action, ts))
    log.info("audit %s", action, extra={"audit_action": action, "audit_event_ids": [r.id for r in results]})
    return results[0]


def _org_label(org_id) -> str:
    """The organization's address when it is this request's, else its id."""
    org = g.get("org") if has_request_context() else None
    return org.slug if org is not None and org.id == org_id else str(org_id)


def _announce(org_id, row: dict) -> None:
    """Tell the areas that listen (webhooks) about an organization's new
    event, in its scope and transaction; the platform log has no listeners."""
    if org_id != PLATFORM_ORG_ID:
        hooks.event_recorded.send(row)


def event_row(
    org_id,
    event_id: int,
    occurred_at: datetime,
    action: str,
    who: Actor,
    target=None,
    before=None,
    after=None,
    metadata=None,
    ctx: dict | None = None,
) -> dict:
    """The full row of one event, MAC included (``record()`` and the purge use it)."""
    ttype, tid, tlabel = resolve_target(target)
    ctx = ctx or {"ip": None, "user_agent": None, "request_id": None}
    kid, key = current_key()
    row = {
        "organization_id": org_id,
        "id": event_id,
        "occurred_at": occurred_at,
        "actor_type": who.type,
        "actor_id": who.id,
        "actor_label": _short(who.label, 400),
        "impersonator_id": who.impersonator_id,
        "action": action,
        "target_type": ttype,
        "target_id": tid,
        "target_label": tlabel,
        "changes": diff(before, after),
        "metadata": redact(metadata),
        "ip": ctx.get("ip"),
        "user_agent": ctx.get("user_agent"),
        "request_id": ctx.get("request_id"),
        "key_id": kid,
    }
    row["mac"] = row_mac(key, row)
    return row


def _events_table():
    return AuditEvent.__table__

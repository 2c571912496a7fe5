"""Tamper evidence: per-row MACs at insert, a per-organization chain built by
a sealer, signed checkpoints for the retention purge.

Why this design
===============
A single hash chain written at insert time needs "the previous event" of the
organization, so every writer of a busy organization would queue on one lock
(and a rolled-back writer would leave a hole). Instead the work is split:

1. **At insert (``record()``), no lock.** Each event gets an id from the
   table's sequence and a time from the database clock in one round trip, and
   an HMAC-SHA256 over a canonical JSON serialisation of every column a reader
   sees, the organization and the id included (``row_mac``). The key is
   derived from ``SECRET_KEY`` (or ``AUDIT_HMAC_KEY``), which lives in the
   application's configuration, not in the database: someone with only
   database access - the owner role, a backup, an SQL injection through the
   runtime role - cannot write a row that verifies, nor change one, nor move
   one to another id or organization. The row also stores ``xid``, the 64-bit
   id of the inserting transaction (``pg_current_xact_id()``).

2. **The sealer (``seal()``), per organization, off the request path.** Under
   a transaction-scoped advisory lock for that organization only, it takes
   the events whose inserting transaction is older than the oldest one still
   running (``xid < pg_snapshot_xmin(pg_current_snapshot())``): those are
   final - committed and visible, or rolled back and gone - so no late
   commit can ever land inside a sealed range. It checks each row's MAC,
   gives the valid ones contiguous sequence numbers ``seq`` (1, 2, 3, ... per
   organization; a gap is visible) in id order and appends ``audit_seals``
   rows: ``chain_mac = HMAC(prev_chain_mac || org || seq || event id ||
   row_mac)``. Each run remembers its horizon so the next run reads only the
   index range ``[previous horizon, new horizon)`` of ``(organization_id,
   xid)``. Sealers of different organizations never wait for each other;
   writers never wait at all. The sealer needs only INSERT and SELECT, so it
   runs as the runtime role (``flask --app wsgi audit seal``, a periodic job,
   and first thing in ``verify``).

3. **Verification (``app.auditlog.verify``).** Walks each organization's seals
   in ``seq`` order joined to the events and recomputes everything: a missing
   event is *deleted*, a MAC that no longer matches is *edited* (or the
   contents of two rows were *swapped*/reordered when the stored MAC belongs
   to another sequence number), a seal that does not chain is a *forged or
   removed link*, a gap in ``seq`` is a *deleted* link, an event with a bad
   MAC that was never sealed is *forged (inserted outside the application)*.
   Truncating the tail (removing the newest events and their seals) leaves a
   shorter, internally valid chain; it is caught by comparing with the
   *anchor*: every seal run and verification writes the head of each chain
   (seq, chain MAC) to a store outside the database (``app.auditlog.anchors``:
   the file ``AUDIT_ANCHOR_PATH``, default ``instance/audit-anchors.json``,
   or any other ``AnchorStore``) and to the log as a JSON line
   (``audit.head``) for shipping to write-once storage. A chain that no longer
   reaches its anchored head, or reaches it with another MAC, was truncated
   or rewritten.

4. **Retention (``app.auditlog.retention``).** The owner connection deletes a
   *prefix* of the chain (events older than the plan's
   ``audit_retention_days``, and their seals) and appends a signed
   ``purge`` checkpoint (seq range, count, chain MAC at the last removed
   seq). Verification starts from the latest valid checkpoint, so a
   legitimate purge stays green while a deletion without a signed checkpoint
   is still reported.

5. **Erasure (``app.auditlog.erasure``).** When a person deletes their
   account, the events naming them are rewritten (labels become "Deleted
   user", their IP and user agent go, their address is cut out of the
   changes) and each gets a signed redaction statement leading from the MAC
   its seal holds to its new MAC. Seals, chain and anchors stay as they
   were; verification accepts the changed row only through valid
   statements.

Key rotation: each row stores ``key_id`` (a fingerprint of the key). Old keys
stay verifiable when listed in ``AUDIT_PREVIOUS_KEYS``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
import struct
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from flask import current_app

ZERO = b"\x00" * 32
VERSION = "v1"


# ----------------------------------------------------------------------------- keys
def _derive(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    # A key of its own: a MAC made with it is useless for any other purpose
    # SECRET_KEY serves (cookies, CSRF) and vice versa.
    return hmac.new(raw, b"tenantry/audit-log/v1", hashlib.sha256).digest()


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"key-id|" + key).hexdigest()[:12]


def current_key(config=None) -> tuple[str, bytes]:
    cfg = config if config is not None else current_app.config
    key = _derive(cfg.get("AUDIT_HMAC_KEY") or cfg["SECRET_KEY"])
    return fingerprint(key), key


def keyring(config=None) -> dict[str, bytes]:
    """Every key verification accepts, by fingerprint (current first)."""
    cfg = config if config is not None else current_app.config
    kid, key = current_key(cfg)
    ring = {kid: key}
    for old in cfg.get("AUDIT_PREVIOUS_KEYS") or ():
        k = _derive(old)
        ring.setdefault(fingerprint(k), k)
    return ring


# ----------------------------------------------------------------------------- canonical form
def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_ip(value) -> str | None:
    """An address as PostgreSQL's ``host(inet)`` prints it (no mask), or ``None``."""
    if value in (None, ""):
        return None
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value.compressed
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return value.ip.compressed
    return _canonical_ip_str(str(value))


_PLAIN_V4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


@functools.lru_cache(maxsize=65536)
def _canonical_ip_str(value: str) -> str | None:
    if _PLAIN_V4.fullmatch(value):  # already canonical (the common case; ipaddress is slow)
        return value
    try:
        return ipaddress.ip_address(value.split("/", 1)[0]).compressed
    except ValueError:
        return None


def _s(value) -> str | None:
    return None if value is None else str(value)


def canonical(row) -> bytes:
    """The bytes a row's MAC covers: every column a reader sees, fixed order.

    ``row`` is a mapping or an object with the column attributes (an ORM
    ``AuditEvent`` or a result row with ``metadata`` as ``meta``).
    """
    if isinstance(row, Mapping) and not isinstance(row, dict):
        row = dict(row)  # one C-level copy beats many Mapping.get calls (verify reads millions)
    g = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    meta = g("meta")
    if meta is None:
        meta = g("metadata")
    payload = [
        VERSION,
        _s(g("organization_id")),
        int(g("id")),
        iso(g("occurred_at")),
        g("actor_type"),
        _s(g("actor_id")),
        g("actor_label"),
        _s(g("impersonator_id")),
        g("action"),
        g("target_type"),
        g("target_id"),
        g("target_label"),
        g("changes") or {},
        meta or {},
        canonical_ip(g("ip")),
        g("user_agent"),
        g("request_id"),
        g("key_id"),
    ]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_mac(key: bytes, row) -> bytes:
    return hmac.new(key, canonical(row), hashlib.sha256).digest()


def chain_mac(key: bytes, prev: bytes, org_id, seq: int, event_id: int, rmac: bytes) -> bytes:
    org = org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
    msg = b"seal|" + prev + org.bytes + struct.pack(">QQ", seq, event_id) + rmac
    return hmac.new(key, msg, hashlib.sha256).digest()


def checkpoint_payload(cp) -> bytes:
    g = cp.get if isinstance(cp, Mapping) else (lambda k, d=None: getattr(cp, k, d))
    chain = g("chain_mac")
    payload = [
        VERSION,
        "checkpoint",
        _s(g("organization_id")),
        int(g("id")),
        g("kind"),
        iso(g("created_at")),
        g("first_seq"),
        g("through_seq"),
        bytes(chain).hex() if chain is not None else None,
        g("removed_count"),
        iso(g("cutoff")),
        g("ok"),
        g("detail"),
        g("key_id"),
    ]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_mac(key: bytes, cp) -> bytes:
    return hmac.new(key, checkpoint_payload(cp), hashlib.sha256).digest()


def equal(a, b) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(bytes(a), bytes(b))

"""Erasing a person from the audit log without breaking its proof.

When an account is deleted (``app.privacy``), every event that names the
person - as the actor, the target, the support agent, the creator of the API
key that acted, or anywhere in the recorded changes - has its personal
fields replaced: labels become "Deleted user", the IP address and user agent
of their own actions are removed, and their e-mail address and names are
cut out of the changes and metadata. What stays is the **pseudonymous
subject**: the user id (``actor_id``/``target_id``), a random UUID that
names nobody once the ``users`` row is gone.

Why a signed redaction, and not encryption under a per-user key
==============================================================
The chain (``app.audit.integrity``) binds every event's MAC into its seal,
and the seals into each other and into anchors kept outside the database.
A row's MAC covers its personal fields, for every event ever recorded -
the ones sealed before this area existed included. Re-encrypting or blanking
those fields changes the row, so *something* must vouch for the change. We
considered two designs:

1. **Crypto-shredding for new rows** (personal fields encrypted under a
   per-user key, the MAC over the ciphertext; deletion destroys the key).
   It needs every reader of the log - the viewer, its search words, the
   CSV/JSON exports, the API, webhooks, analytics - to decrypt per row, and
   it does nothing for the rows already sealed, which still need a second
   mechanism. The per-user keys would live in the same database (and its
   backups) as the ciphertexts, so the shredding is only as good as the
   backup retention anyway.
2. **A signed redaction statement** (what this module does), one mechanism
   for every row, old and new. For each event it rewrites, the erasure
   writes an ``audit_redactions`` row: the event's MAC before, its MAC
   after, which fields were replaced, and whose data they were, signed
   (HMAC) with the audit key, which lives outside the database. The event's
   ``mac`` column is recomputed over the redacted row, so the row is again
   consistent with a MAC, and the seal - and the whole chain and its
   anchors - is left exactly as it was.

Verification (``app.auditlog.verification``) accepts an event whose MAC
differs from the one its seal holds only through an unbroken series of
valid statements: the first one's ``previous_mac`` is the sealed MAC, each
next one starts where the previous ended, and the last one's
``redacted_mac`` is the row's MAC as recomputed now. So:

* the chain's proof is intact: the seal still commits to the original
  event, and the statement says, under the key, what became of it;
* a database-only attacker cannot redact (or "un-redact", or edit a
  redacted row): they can neither sign a statement nor a row MAC;
* an event that did not verify when the erasure came is **not** redacted
  (evidence of tampering is never rewritten), and the erasure says so.

What the statement does not prove is that only personal fields changed:
that rests on the key holder, as the row MACs themselves do. The erasure
runs under the same per-organization advisory lock as the sealer and the
retention purge, on the owner connection (the runtime and cross-organization
roles may only INSERT and SELECT audit rows).

Old tuple versions stay in PostgreSQL's heap until VACUUM, and backups keep
what they copied until they expire: the README says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text

from app.audit import integrity
from app.auditlog import sealing
from app.util import utcnow

log = logging.getLogger("tenantry.audit.erasure")

DELETED_LABEL = "Deleted user"
SCRUBBED = "[deleted user]"
# Keys of recorded changes and metadata that hold the person's own details
# in events about them (a profile change's old name, an e-mail change).
PERSONAL_KEYS = frozenset({"name", "email", "new_email", "old_email", "user", "user_label", "invitee"})


class UnsealedEvents(RuntimeError):
    """Events naming the person are not sealed yet: run again once they are."""


@dataclass
class ErasureResult:
    redacted: int = 0
    organizations: set = field(default_factory=set)
    refused: list[int] = field(default_factory=list)  # events that did not verify: left as evidence


# ----------------------------------------------------------------------------- statements
def statement_payload(st) -> bytes:
    g = st.get if isinstance(st, dict) else (lambda k, d=None: getattr(st, k, d))
    payload = [
        integrity.VERSION,
        "redaction",
        str(g("organization_id")),
        int(g("id")),
        int(g("event_id")),
        str(g("subject_id")),
        bytes(g("previous_mac")).hex(),
        bytes(g("redacted_mac")).hex(),
        g("fields"),
        integrity.iso(g("created_at")),
        g("key_id"),
    ]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def statement_mac(key: bytes, st) -> bytes:
    return hmac.new(key, statement_payload(st), hashlib.sha256).digest()


def redactions_hold(statements, sealed_mac: bytes, current_mac: bytes, ring: dict[str, bytes]) -> bool:
    """True when ``statements`` (an event's redactions, oldest first) lead,
    each validly signed, from the MAC its seal holds to its MAC now."""
    at = bytes(sealed_mac)
    for st in statements:
        k = ring.get(st.key_id)
        if k is None or not integrity.equal(statement_mac(k, st), st.mac):
            return False
        if not integrity.equal(st.previous_mac, at):
            return False
        at = bytes(st.redacted_mac)
    return integrity.equal(at, current_mac)


def load_redactions(conn, org_id) -> dict[int, list]:
    """An organization's redaction statements by event id, oldest first (few rows: only erased people's events)."""
    out: dict[int, list] = {}
    for st in conn.execute(
        text("SELECT * FROM audit_redactions WHERE organization_id = :o ORDER BY event_id, id"), {"o": org_id}
    ):
        out.setdefault(st.event_id, []).append(st)
    return out


# ----------------------------------------------------------------------------- the rewrite
def _replace_in(value, needles: list[str], personal: bool, depth: int = 0):
    """``value`` (JSON) with every needle cut out of its strings; when
    ``personal``, the values of keys in ``PERSONAL_KEYS`` replaced whole."""
    if depth > 12:
        return value
    if isinstance(value, str):
        out = value
        low = out.lower()
        for n in needles:
            if n and n.lower() in low:
                i = low.find(n.lower())
                while i >= 0:
                    out = out[:i] + SCRUBBED + out[i + len(n) :]
                    low = out.lower()
                    i = low.find(n.lower(), i + len(SCRUBBED))
        return out
    if isinstance(value, list):
        return [_replace_in(v, needles, personal, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if personal and str(k).lower() in PERSONAL_KEYS and v is not None:
                out[k] = _whole(v)
            else:
                out[k] = _replace_in(v, needles, personal, depth + 1)
        return out
    return value


def _whole(v):
    if isinstance(v, list):
        return [None if x is None else SCRUBBED for x in v]
    return SCRUBBED


def redact_row(row: dict, subject: uuid.UUID, needles: list[str]) -> tuple[dict, list[str]]:
    """The event ``row`` with ``subject``'s personal fields replaced, and the names of the fields that changed."""
    new = dict(row)
    sid = str(subject)
    own_action = row["actor_type"] in ("user", "support") and str(row["actor_id"]) == sid
    about = own_action or (row["target_type"] in ("user", "member") and row["target_id"] == sid)
    if own_action:
        new["actor_label"] = DELETED_LABEL
        new["ip"] = None
        new["user_agent"] = None
    if row["target_type"] in ("user", "member") and row["target_id"] == sid:
        new["target_label"] = DELETED_LABEL
    for col in ("actor_label", "target_label"):
        if new[col]:
            new[col] = _replace_in(new[col], needles, False)
    new["changes"] = _replace_in(row["changes"] or {}, needles, about)
    new["metadata"] = _replace_in(row["metadata"] or {}, needles, about)
    changed = [
        c for c in ("actor_label", "target_label", "ip", "user_agent", "changes", "metadata") if new[c] != row[c]
    ]
    return new, changed


def _needles(email: str, name: str) -> list[str]:
    """What is cut out of free text: the label the person appeared under
    ("Name <e-mail>"), then the e-mail address alone (longest first, so the
    label goes whole)."""
    out = []
    if name and email:
        out.append(f"{name} <{email}>")
    if email:
        out.append(email)
    return out


_CANDIDATES = text(
    f"SELECT {sealing._EVENT_COLUMNS}, s.seq, s.row_mac AS seal_row_mac FROM audit_events e"
    " LEFT JOIN audit_seals s ON s.organization_id = e.organization_id AND s.event_id = e.id"
    " WHERE e.actor_id = :u OR e.impersonator_id = :u OR e.actor_id = ANY(CAST(:keys AS uuid[]))"
    " OR (e.target_type IN ('user', 'member') AND e.target_id = :us)"
    " OR strpos(lower(coalesce(e.actor_label, '') || ' ' || coalesce(e.target_label, '') || ' '"
    " || e.changes::text || ' ' || e.metadata::text), :email) > 0"
    " ORDER BY e.organization_id, e.id"
)


def erase_subject(
    conn, subject: uuid.UUID, email: str, name: str, api_key_ids: list[uuid.UUID], now: datetime | None = None
) -> ErasureResult:
    """Redact every event naming ``subject`` (e-mail ``email``, name ``name``;
    the API keys they created act under ``api_key_ids``) on ``conn``, the
    owner connection, inside the caller's transaction.

    Raises ``UnsealedEvents`` (nothing written) when such an event is not
    sealed yet: only sealed events are redacted, so that the statement starts
    from the MAC the chain holds. Events whose MAC does not verify are left
    as they are (evidence) and listed in ``refused``.
    """
    now = now or utcnow()
    res = ErasureResult()
    kid, key = integrity.current_key()
    ring = integrity.keyring()
    needles = _needles(email, name)
    sealing.bind(conn, None)
    rows = conn.execute(
        _CANDIDATES,
        {"u": subject, "us": str(subject), "keys": [str(k) for k in api_key_ids], "email": (email or "\x00").lower()},
    ).all()
    unsealed = [r.id for r in rows if r.seq is None]
    if unsealed:
        raise UnsealedEvents(f"{len(unsealed)} event(s) naming the person are not sealed yet: {unsealed[:10]}")
    by_org: dict = {}
    for r in rows:
        by_org.setdefault(r.organization_id, []).append(r)
    for org_id in sorted(by_org, key=str):
        sealing.bind(conn, org_id)
        sealing.lock(conn, org_id)  # no seal, purge or other erasure of this organization meanwhile
        labels, reset = set(), set()
        for r in by_org[org_id]:
            row = dict(r._mapping)
            k = ring.get(row["key_id"])
            if k is None or not integrity.equal(integrity.row_mac(k, row), row["mac"]):
                res.refused.append(row["id"])
                continue
            new, changed = redact_row(row, subject, needles)
            if not changed:
                continue
            new["key_id"] = kid
            new_mac = integrity.row_mac(key, new)
            conn.execute(
                text(
                    "UPDATE audit_events SET actor_label = :actor_label, target_label = :target_label,"
                    " changes = CAST(:changes AS jsonb), metadata = CAST(:metadata AS jsonb), ip = CAST(:ip AS inet),"
                    " user_agent = :user_agent, key_id = :key_id, mac = :mac"
                    " WHERE organization_id = :organization_id AND id = :id"
                ),
                {
                    "actor_label": new["actor_label"],
                    "target_label": new["target_label"],
                    "changes": json.dumps(new["changes"], ensure_ascii=False),
                    "metadata": json.dumps(new["metadata"], ensure_ascii=False),
                    "ip": new["ip"],
                    "user_agent": new["user_agent"],
                    "key_id": kid,
                    "mac": new_mac,
                    "organization_id": org_id,
                    "id": row["id"],
                },
            )
            st = {
                "organization_id": org_id,
                "id": conn.execute(
                    text("SELECT nextval(pg_get_serial_sequence('audit_redactions', 'id'))")
                ).scalar_one(),
                "event_id": row["id"],
                "subject_id": subject,
                "previous_mac": bytes(row["mac"]),
                "redacted_mac": new_mac,
                "fields": ",".join(changed),
                "created_at": now,
                "key_id": kid,
            }
            st["mac"] = statement_mac(key, st)
            conn.execute(
                text(
                    "INSERT INTO audit_redactions (organization_id, id, event_id, subject_id, previous_mac,"
                    " redacted_mac, fields, created_at, key_id, mac) VALUES (:organization_id, :id, :event_id,"
                    " :subject_id, :previous_mac, :redacted_mac, :fields, :created_at, :key_id, :mac)"
                ),
                st,
            )
            res.redacted += 1
            res.organizations.add(org_id)
            # The search words of the names the person appeared under go; the
            # redacted labels' words ("deleted", "user") take their place.
            if "actor_label" in changed and new["actor_id"]:
                reset.add(("actor", new["actor_type"], str(new["actor_id"])))
                labels.add(("actor", new["actor_type"], str(new["actor_id"]), new["actor_label"] or ""))
            if "target_label" in changed and new["target_type"] and new["target_id"]:
                reset.add(("target", new["target_type"], new["target_id"]))
                labels.add(("target", new["target_type"], new["target_id"], new["target_label"] or ""))
        for kind, ref_type, ref_id in sorted(reset):
            conn.execute(
                text(
                    "DELETE FROM audit_label_words WHERE organization_id = :o AND kind = :k AND ref_type = :t"
                    " AND ref_id = :i"
                ),
                {"o": org_id, "k": kind, "t": ref_type, "i": ref_id},
            )
        sealing.add_labels(conn, org_id, labels)
    if res.refused:
        log.error("erasure left %d event(s) that do not verify untouched (evidence): %s", len(res.refused), res.refused)
    return res

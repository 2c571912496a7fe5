"""``flask --app wsgi audit verify``: recompute every organization's chain and
name the first place it breaks (design: ``app.audit.integrity``).

Kinds of break, each reported with the sequence number and event id:

* ``edited``     an event's contents no longer match its MAC;
* ``swapped``    an event holds the contents (and MAC) of another sequence
                 number: rows were swapped or reordered;
* ``deleted``    a seal points at an event that is gone;
* ``missing``    sequence numbers are missing (events deleted with their seals);
* ``link``       a seal does not chain onto the one before (forged or altered);
* ``forged``     an event with an invalid MAC that was never sealed (inserted
                 outside the application, or edited before the sealer ran);
* ``unsealed``   a finished, validly signed event with no seal (its seal was removed);
* ``truncated``  the chain stops short of the head anchored outside the database;
* ``rewritten``  the chain reaches the anchored head with another MAC;
* ``checkpoint`` a purge checkpoint whose signature does not verify;
* ``unknown_key`` an event signed with a key that is not configured;
* ``redaction``  an event changed since it was sealed, with no valid series of
                 signed redaction statements from its sealed MAC to its MAC now.

An event whose personal fields were erased (an account's deletion,
``app.auditlog.erasure``) verifies through its signed redaction statements:
its seal still holds the original MAC, and the statements lead from it to
the redacted row's MAC. Such events are counted as ``redacted``.

The result of each run is stored as a signed ``verify`` checkpoint, which the
viewer shows ("verified 5 minutes ago: OK").
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text

from app.audit import integrity
from app.auditlog import anchors, erasure, sealing
from app.auditlog.sealing import _EVENT_COLUMNS, bind
from app.util import utcnow

log = logging.getLogger("tenantry.audit.verify")

MAX_PROBLEMS = 50


@dataclass
class Problem:
    kind: str
    seq: int | None
    event_id: int | None
    message: str

    def sort_key(self):
        return (self.seq if self.seq is not None else float("inf"), self.event_id or 0)


@dataclass
class VerifyResult:
    organization_id: uuid.UUID
    slug: str
    head_seq: int = 0
    start_seq: int = 1
    checked: int = 0
    pending: int = 0
    redacted: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=Problem.sort_key) if self.problems else None

    def line(self) -> str:
        span = f"seq {self.start_seq}..{self.head_seq}" if self.head_seq >= self.start_seq else "empty"
        if self.ok:
            extra = f", {self.pending} pending" if self.pending else ""
            extra += f", {self.redacted} with personal data erased" if self.redacted else ""
            return f"OK      {self.slug}: {self.checked} events ({span}){extra}"
        return f"BROKEN  {self.slug}: {self.first.message} ({len(self.problems)} problem(s))"


def write_checkpoint(conn, org_id, kind: str, **fields) -> dict:
    """Append a signed checkpoint row (purge or verify) on ``conn``."""
    kid, key = integrity.current_key()
    cp_id = conn.execute(text("SELECT nextval('audit_checkpoints_id_seq')")).scalar_one()
    row = {
        "organization_id": org_id,
        "id": cp_id,
        "kind": kind,
        "created_at": utcnow(),
        "first_seq": fields.get("first_seq"),
        "through_seq": fields.get("through_seq", 0),
        "chain_mac": fields.get("chain_mac"),
        "removed_count": fields.get("removed_count"),
        "cutoff": fields.get("cutoff"),
        "ok": fields.get("ok"),
        "detail": fields.get("detail"),
        "key_id": kid,
    }
    row["mac"] = integrity.checkpoint_mac(key, row)
    conn.execute(
        text(
            "INSERT INTO audit_checkpoints (organization_id, id, kind, created_at, first_seq, through_seq,"
            " chain_mac, removed_count, cutoff, ok, detail, key_id, mac) VALUES (:organization_id, :id, :kind,"
            " :created_at, :first_seq, :through_seq, :chain_mac, :removed_count, :cutoff, :ok, :detail, :key_id,"
            " :mac)"
        ),
        row,
    )
    return row


def checkpoint_valid(cp, ring) -> bool:
    k = ring.get(cp.key_id)
    return k is not None and integrity.equal(integrity.checkpoint_mac(k, cp._mapping), cp.mac)


def verify_org(conn, org_id, slug: str, ring: dict[str, bytes], anchor: dict | None = None) -> VerifyResult:
    """Check one organization's log on ``conn`` (read only)."""
    res = VerifyResult(org_id, slug)
    bind(conn, org_id)

    def problem(kind, seq, event_id, message):
        if len(res.problems) < MAX_PROBLEMS:
            res.problems.append(Problem(kind, seq, event_id, message))

    # Where the chain legitimately starts: after the newest valid purge checkpoint.
    prev = integrity.ZERO
    for cp in conn.execute(
        text("SELECT * FROM audit_checkpoints WHERE organization_id = :o AND kind = 'purge' ORDER BY through_seq DESC"),
        {"o": org_id},
    ):
        if checkpoint_valid(cp, ring):
            if res.start_seq == 1:
                res.start_seq, prev = cp.through_seq + 1, bytes(cp.chain_mac)
        else:
            problem(
                "checkpoint",
                cp.through_seq,
                None,
                f"purge checkpoint #{cp.id} (through seq {cp.through_seq}) has an invalid signature: forged",
            )

    keys = list(ring.values())
    redactions = erasure.load_redactions(conn, org_id)
    rows = conn.execute(
        text(
            "SELECT s.seq, s.event_id, s.row_mac AS seal_row_mac, s.chain_mac AS seal_chain_mac,"
            f" (e.id IS NOT NULL) AS present, {_EVENT_COLUMNS}"
            " FROM audit_seals s LEFT JOIN audit_events e ON e.organization_id = s.organization_id AND e.id = s.event_id"
            " WHERE s.organization_id = :o AND s.seq >= :start ORDER BY s.seq"
        ),
        {"o": org_id, "start": res.start_seq},
        execution_options={"stream_results": True, "yield_per": 5000},
    )
    expected = res.start_seq
    present = 0
    anchor_seen = None
    swapped_suspects = []
    for r in rows:
        resync = False
        if r.seq != expected:
            problem(
                "missing",
                expected,
                None,
                f"seq {expected}"
                + (f"..{r.seq - 1}" if r.seq - 1 > expected else "")
                + " missing: sealed event(s) deleted together with their seal(s)",
            )
            resync = True
        expected = r.seq + 1
        seal_row_mac = bytes(r.seal_row_mac)
        stored_chain = bytes(r.seal_chain_mac)
        if not resync and not any(
            integrity.equal(integrity.chain_mac(k, prev, org_id, r.seq, r.event_id, seal_row_mac), stored_chain)
            for k in keys
        ):
            problem(
                "link",
                r.seq,
                r.event_id,
                f"seq {r.seq} (event #{r.event_id}): seal does not chain onto seq {r.seq - 1}: link forged or altered",
            )
        prev = stored_chain  # continue from the stored link: one break does not hide the next
        if anchor is not None and r.seq == anchor["seq"]:
            anchor_seen = stored_chain
        if not r.present:
            problem("deleted", r.seq, r.event_id, f"seq {r.seq}: event #{r.event_id} was deleted")
            continue
        present += 1
        res.checked += 1
        k = ring.get(r.key_id)
        if k is None:
            problem(
                "unknown_key",
                r.seq,
                r.event_id,
                f"seq {r.seq} (event #{r.event_id}) is signed with unknown key {r.key_id}",
            )
            continue
        computed = integrity.row_mac(k, r._mapping)
        statements = redactions.get(r.event_id)
        if statements is not None and integrity.equal(computed, r.mac):
            if erasure.redactions_hold(statements, seal_row_mac, r.mac, ring):
                res.redacted += 1
            else:
                problem(
                    "redaction",
                    r.seq,
                    r.event_id,
                    f"seq {r.seq} (event #{r.event_id}): changed since it was sealed without a valid signed"
                    " redaction statement",
                )
            continue
        if not integrity.equal(computed, r.mac):
            if integrity.equal(r.mac, seal_row_mac):
                problem(
                    "edited",
                    r.seq,
                    r.event_id,
                    f"seq {r.seq} (event #{r.event_id}, {r.action}): edited after it was recorded",
                )
            else:
                swapped_suspects.append((r.seq, r.event_id, bytes(r.mac), r.action))
        elif not integrity.equal(computed, seal_row_mac):
            problem(
                "swapped",
                r.seq,
                r.event_id,
                f"seq {r.seq} (event #{r.event_id}): replaced by another validly signed event",
            )
    rows.close()
    res.head_seq = expected - 1
    for seq, event_id, mac, action in swapped_suspects:
        other = conn.execute(
            text("SELECT seq, event_id FROM audit_seals WHERE organization_id = :o AND row_mac = :m LIMIT 1"),
            {"o": org_id, "m": mac},
        ).first()
        if other is not None:
            problem(
                "swapped",
                seq,
                event_id,
                f"seq {seq} (event #{event_id}): holds the contents of seq {other.seq} (event #{other.event_id}):"
                " rows swapped or reordered",
            )
        else:
            problem("edited", seq, event_id, f"seq {seq} (event #{event_id}, {action}): edited after it was recorded")

    # Events outside the chain: forged rows, rows whose seal vanished, pending ones.
    # "Finished" is judged against the horizon of the newest seal run: every
    # transaction below it had ended when that run sealed, so a valid event
    # below it without a seal lost its seal. (The current horizon would not
    # do: it moves on between sealing and verifying.)
    total = conn.execute(
        text("SELECT count(*) FROM audit_events WHERE organization_id = :o"), {"o": org_id}
    ).scalar_one()
    if total > present:
        horizon = (
            conn.execute(
                text("SELECT horizon::text FROM audit_seals WHERE organization_id = :o ORDER BY seq DESC LIMIT 1"),
                {"o": org_id},
            ).scalar()
            or "0"
        )
        for r in conn.execute(
            text(
                f"SELECT {_EVENT_COLUMNS}, (e.xid < CAST(:h AS xid8)) AS finished FROM audit_events e"
                " WHERE e.organization_id = :o AND NOT EXISTS (SELECT 1 FROM audit_seals s"
                " WHERE s.organization_id = e.organization_id AND s.event_id = e.id) ORDER BY e.id"
            ),
            {"o": org_id, "h": horizon},
            execution_options={"stream_results": True, "yield_per": 5000},
        ):
            k = ring.get(r.key_id)
            if k is None or not integrity.equal(integrity.row_mac(k, r._mapping), r.mac):
                problem(
                    "forged",
                    None,
                    r.id,
                    f"event #{r.id} ({r.action}) does not match its MAC and was never sealed: inserted outside"
                    " the application, or edited before sealing",
                )
            elif r.finished:
                problem(
                    "unsealed",
                    None,
                    r.id,
                    f"event #{r.id} ({r.action}) is finished but has no seal: its seal was removed",
                )
            else:
                res.pending += 1

    if anchor is not None:
        a_seq = int(anchor["seq"])
        if a_seq > res.head_seq:
            first_missing = max(res.head_seq + 1, res.start_seq)
            problem(
                "truncated",
                first_missing,
                None,
                f"log ends at seq {res.head_seq} but was sealed up to seq {a_seq} (anchor of {anchor.get('at', '?')}):"
                f" seq {first_missing}..{a_seq} removed (truncated tail)",
            )
        elif a_seq >= res.start_seq and anchor_seen is not None and anchor_seen.hex() != anchor["chain"]:
            problem(
                "rewritten",
                a_seq,
                None,
                f"seq {a_seq}: chain differs from its anchor of {anchor.get('at', '?')}: log rewritten up to here",
            )
    res.problems.sort(key=Problem.sort_key)
    return res


def verify_all(engine, slug: str | None = None, seal_first: bool = True, record: bool = True) -> list[VerifyResult]:
    """Seal, then verify every organization (or one). Stores each result as a
    ``verify`` checkpoint and advances the anchors of green chains."""
    if seal_first:
        sealing.seal_all(engine, slug)
    ring = integrity.keyring()
    with engine.connect() as conn:
        orgs = sealing.organizations(conn, slug)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.commit()
    known = anchors.load(database)
    results, heads = [], {}
    for org_id, org_slug in orgs:
        with engine.connect() as conn, conn.begin():
            res = verify_org(conn, org_id, org_slug, ring, known.get(str(org_id)))
            if record:
                first = res.first
                write_checkpoint(
                    conn,
                    org_id,
                    "verify",
                    through_seq=res.head_seq,
                    ok=res.ok,
                    detail=first.message if first else f"{res.checked} events verified",
                )
            if res.ok and res.head_seq >= res.start_seq:
                chain = conn.execute(
                    text("SELECT chain_mac FROM audit_seals WHERE organization_id = :o AND seq = :s"),
                    {"o": org_id, "s": res.head_seq},
                ).scalar()
                if chain is not None:
                    heads[org_id] = (res.head_seq, bytes(chain))
        results.append(res)
        if not res.ok:
            log.error("audit chain broken for %s: %s", org_slug, res.first.message)
    anchors.advance(database, heads)
    return results

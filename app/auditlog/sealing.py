"""The sealer: gives finished events their per-organization sequence numbers
and chains them (design and reasoning: ``app.audit.integrity``).

It runs off the request path - ``flask --app wsgi audit seal``, a periodic
job, and first thing in ``verify`` - on the runtime connection: it only
SELECTs events and INSERTs seals. One organization at a time, each in its
own READ COMMITTED transaction under that organization's advisory lock, so
two sealers never give out the same ``seq`` and writers never wait.

Being the one serial writer per organization, it also records the words of
the names actors and targets appear under (``AuditLabelWord``), which the
viewer's free-text filter reads: no two web requests ever race to insert the
same new word.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text

from app.audit import integrity, rollups
from app.auditlog import anchors
from app.database import apply_tenant_settings

log = logging.getLogger("tenantry.audit.seal")

BATCH = 5000


@dataclass
class SealResult:
    organization_id: uuid.UUID
    sealed: int = 0
    rejected: list[int] = field(default_factory=list)  # event ids with a bad MAC: never sealed
    head_seq: int = 0
    head_chain: bytes | None = None


def bind(conn, org_id=None) -> None:
    """Apply the RLS settings for this transaction on a bare connection: one
    organization's rows (none when ``org_id`` is ``None``)."""
    apply_tenant_settings(conn, org_id)


def lock(conn, org_id) -> None:
    """The per-organization lock shared by the sealer and the purge (transaction-scoped)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('tenantry-audit:' || :o, 0))"), {"o": str(org_id)})


def chain_start(conn, org_id) -> tuple[int, bytes, str]:
    """``(last seq, its chain MAC, horizon)`` to continue from: the newest seal,
    or the newest purge checkpoint when the purge removed every seal."""
    last = conn.execute(
        text(
            "SELECT seq, chain_mac, horizon::text AS horizon FROM audit_seals WHERE organization_id = :o"
            " ORDER BY seq DESC LIMIT 1"
        ),
        {"o": org_id},
    ).first()
    cp = conn.execute(
        text(
            "SELECT through_seq, chain_mac FROM audit_checkpoints WHERE organization_id = :o AND kind = 'purge'"
            " ORDER BY through_seq DESC LIMIT 1"
        ),
        {"o": org_id},
    ).first()
    if last is not None and (cp is None or last.seq >= cp.through_seq):
        return last.seq, bytes(last.chain_mac), last.horizon
    if cp is not None:
        return cp.through_seq, bytes(cp.chain_mac), "0"
    return 0, integrity.ZERO, "0"


_EVENT_COLUMNS = (
    "e.organization_id, e.id, e.occurred_at, e.actor_type, e.actor_id, e.actor_label, e.impersonator_id, e.action,"
    " e.target_type, e.target_id, e.target_label, e.changes, e.metadata, host(e.ip) AS ip, e.user_agent,"
    " e.request_id, e.key_id, e.mac, e.xid::text AS xid"
)


def seal_org(conn, org_id, ring: dict[str, bytes], key: bytes) -> SealResult:
    """Seal the finished, unsealed events of one organization (inside the
    caller's transaction on ``conn``; the caller commits)."""
    res = SealResult(org_id)
    bind(conn, org_id)
    lock(conn, org_id)
    seq, prev, prev_horizon = chain_start(conn, org_id)
    # Statement 1 fixes the horizon; statement 2 (a newer snapshot) sees every
    # transaction older than it finished, so nothing below it can still appear.
    horizon = conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")).scalar_one()
    rows = conn.execute(
        text(
            f"SELECT {_EVENT_COLUMNS} FROM audit_events e WHERE e.organization_id = :o"
            " AND e.xid >= CAST(:prev AS xid8) AND e.xid < CAST(:h AS xid8)"
            " AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.organization_id = e.organization_id"
            " AND s.event_id = e.id)"
            " ORDER BY e.id"
        ),
        {"o": org_id, "prev": prev_horizon, "h": horizon},
        execution_options={"stream_results": True, "yield_per": BATCH},
    )
    batch = []
    labels: set[tuple[str, str, str, str]] = set()
    for r in rows:
        k = ring.get(r.key_id)
        if k is None or not integrity.equal(integrity.row_mac(k, r._mapping), r.mac):
            res.rejected.append(r.id)
            continue
        if r.actor_label and r.actor_id:
            labels.add(("actor", r.actor_type, str(r.actor_id), r.actor_label))
        if r.target_type and r.target_id:
            labels.add(("target", r.target_type, r.target_id, r.target_label or ""))
        seq += 1
        prev = integrity.chain_mac(key, prev, org_id, seq, r.id, bytes(r.mac))
        batch.append({"o": org_id, "seq": seq, "e": r.id, "rm": bytes(r.mac), "cm": prev, "h": horizon})
        if len(batch) >= BATCH:
            _flush(conn, batch)
            res.sealed += len(batch)
            batch = []
    rows.close()
    if batch:
        _flush(conn, batch)
        res.sealed += len(batch)
    add_labels(conn, org_id, labels)
    res.head_seq, res.head_chain = seq, prev
    if res.rejected:
        log.error(
            "audit: %d event(s) of organization %s carry an invalid MAC and were not sealed: %s",
            len(res.rejected),
            org_id,
            res.rejected[:20],
        )
    return res


def _flush(conn, batch) -> None:
    conn.execute(
        text(
            "INSERT INTO audit_seals (organization_id, seq, event_id, row_mac, chain_mac, horizon)"
            " VALUES (:o, :seq, :e, :rm, :cm, CAST(:h AS xid8))"
        ),
        batch,
    )


WORD_RE = re.compile(r"[^\W_]+")
MAX_WORDS_PER_LABEL = 16


def label_words(label: str) -> set[str]:
    """The searchable words of a name: letters and digits, lower-cased (the
    same split as ``services.search_query``)."""
    return {w[:64] for w in WORD_RE.findall((label or "").lower())[:MAX_WORDS_PER_LABEL]}


def add_labels(conn, org_id, labels) -> None:
    """Remember the words of the names actors and targets appeared under
    (free-text search, ``AuditLabelWord``). Only the sealer writes them: one
    writer per organization, so no two transactions race on a new word."""
    rows = sorted(
        {
            (w, kind, ref_type, ref_id)
            for kind, ref_type, ref_id, label in labels
            for w in label_words(f"{label} {ref_type}")
        }
    )
    for i in range(0, len(rows), BATCH):
        conn.execute(
            text(
                "INSERT INTO audit_label_words (organization_id, word, kind, ref_type, ref_id)"
                " VALUES (:o, :w, :k, :t, :i) ON CONFLICT DO NOTHING"
            ),
            [{"o": org_id, "w": w, "k": k, "t": t, "i": i_} for w, k, t, i_ in rows[i : i + BATCH]],
        )


def organizations(conn, slug: str | None = None) -> list[tuple[uuid.UUID, str]]:
    """``(id, slug)`` of every organization (one when ``slug`` is given), platform included.

    ``organizations`` is a global table: the runtime role reads it whole.
    """
    q = "SELECT id, slug FROM organizations"
    params = {}
    if slug:
        q += " WHERE slug = :s ORDER BY deleted_at NULLS FIRST"
        params["s"] = slug
    else:
        q += " ORDER BY slug, id"
    return [(r.id, r.slug) for r in conn.execute(text(q), params)]


def seal_all(engine, slug: str | None = None, config=None) -> list[SealResult]:
    """Seal every organization (or one), each in its own transaction; advance
    the anchors; then bring the analytics rollups of every organization that
    got new seals up to date (``app.audit.rollups``: the seal ``seq`` is
    their high-water mark, each organization in its own transaction)."""
    kid, key = integrity.current_key(config)
    ring = integrity.keyring(config)
    with engine.connect() as conn:
        orgs = organizations(conn, slug)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.commit()
    results = []
    heads = {}
    for org_id, _slug in orgs:
        with engine.connect() as conn, conn.begin():
            res = seal_org(conn, org_id, ring, key)
        results.append(res)
        if res.sealed:
            heads[org_id] = (res.head_seq, res.head_chain)
    anchors.advance(database, heads)
    rollups.catch_up_all(engine, [r.organization_id for r in results if r.sealed])
    return results

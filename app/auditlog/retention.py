"""Retention: remove events older than the plan allows, provably.

``purge(owner_engine)`` runs on the **owner** connection (the runtime role
may not delete audit rows). Per organization, under the same advisory lock as
the sealer, in one transaction:

1. seal first, so every old event has its place in the chain;
2. find the longest *prefix* of the chain (by ``seq``) whose events are all
   older than the organization's ``audit_retention_days`` limit
   (``app.tenancy.entitlements``) - a prefix, so what remains is still one
   unbroken chain; it stops at anything suspicious (a missing event) so the
   evidence of tampering is never purged;
3. delete those events and their seals;
4. append a signed ``purge`` checkpoint: seq range, count, cutoff and the
   chain MAC at the last removed seq - verification resumes from it;
5. record ``audit.purged`` in the organization's log (actor ``system``);
6. delete the analytics rollups' per-member (``actor``) rows of the days
   before the horizon (``rollups.purge_actor_rows``: personal data, gone
   with the events; the per-day counts naming nobody stay), even when no
   event was old enough this time.

The job that calls it daily is ``flask --app wsgi audit purge``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from app import audit
from app.audit import integrity, rollups
from app.auditlog import sealing
from app.auditlog.verification import write_checkpoint
from app.tenancy import entitlements
from app.util import utcnow

log = logging.getLogger("tenantry.audit.retention")


@dataclass
class PurgeResult:
    organization_id: uuid.UUID
    slug: str
    cutoff: datetime
    removed: int = 0
    first_seq: int | None = None
    through_seq: int | None = None
    actor_rows_removed: int = 0


def _retention_days(conn, org_id) -> int | None:
    # The owner's connection has no ORM session: the same limit, as one SELECT.
    return conn.execute(entitlements.limit_query("audit_retention_days", org_id)).scalar()


def purge_org(conn, org_id, slug: str, now: datetime, ring, key) -> PurgeResult | None:
    """Purge one organization inside the caller's transaction on ``conn`` (owner)."""
    days = _retention_days(conn, org_id)
    if days is None:
        return None
    cutoff = now - timedelta(days=days)
    res = PurgeResult(org_id, slug, cutoff)
    sealing.seal_org(conn, org_id, ring, key)  # takes the lock, held until commit
    sealing.bind(conn, org_id)  # every statement below names the organization as well
    cp = conn.execute(
        text(
            "SELECT through_seq FROM audit_checkpoints WHERE organization_id = :o AND kind = 'purge'"
            " ORDER BY through_seq DESC LIMIT 1"
        ),
        {"o": org_id},
    ).scalar()
    start = (cp or 0) + 1
    # Walk the chain from its start while events are old enough.
    last = None
    after = start - 1
    while True:
        batch = conn.execute(
            text(
                "SELECT s.seq, s.chain_mac, e.occurred_at FROM audit_seals s LEFT JOIN audit_events e"
                " ON e.organization_id = s.organization_id AND e.id = s.event_id"
                " WHERE s.organization_id = :o AND s.seq > :after ORDER BY s.seq LIMIT 5000"
            ),
            {"o": org_id, "after": after},
        ).all()
        stop = False
        for r in batch:
            if r.seq != after + 1 or r.occurred_at is None or r.occurred_at >= cutoff:
                stop = True
                break
            last, after = r, r.seq
        if stop or len(batch) < 5000:
            break
    res.actor_rows_removed = rollups.purge_actor_rows(conn, org_id, cutoff)
    if last is None:
        return res
    removed = conn.execute(
        text(
            "DELETE FROM audit_events e USING audit_seals s WHERE s.organization_id = :o AND s.seq BETWEEN :a AND :b"
            " AND e.organization_id = :o AND e.id = s.event_id"
        ),
        {"o": org_id, "a": start, "b": last.seq},
    ).rowcount
    conn.execute(
        text("DELETE FROM audit_seals WHERE organization_id = :o AND seq BETWEEN :a AND :b"),
        {"o": org_id, "a": start, "b": last.seq},
    )
    write_checkpoint(
        conn,
        org_id,
        "purge",
        first_seq=start,
        through_seq=last.seq,
        chain_mac=bytes(last.chain_mac),
        removed_count=removed,
        cutoff=cutoff,
    )
    ids = conn.execute(audit._NEXT_IDS, {"n": 1}).first()
    row = audit.event_row(
        org_id,
        ids.id,
        ids.ts,
        "audit.purged",
        audit.Actor.system("retention purge"),
        target=("organization", str(org_id), slug),
        metadata={
            "removed": removed,
            "first_seq": start,
            "through_seq": last.seq,
            "cutoff": cutoff.isoformat(),
            "retention_days": days,
        },
    )
    conn.execute(audit._events_table().insert(), [row])
    res.removed, res.first_seq, res.through_seq = removed, start, last.seq
    log.info("audit purge %s: removed %d events (seq %d..%d) older than %s", slug, removed, start, last.seq, cutoff)
    return res


def purge(owner_engine, slug: str | None = None, now: datetime | None = None) -> list[PurgeResult]:
    """Purge every organization (or one) on the owner connection; one transaction each."""
    now = now or utcnow()
    kid, key = integrity.current_key()
    ring = integrity.keyring()
    with owner_engine.connect() as conn:
        orgs = sealing.organizations(conn, slug)
        conn.commit()
    out = []
    for org_id, org_slug in orgs:
        with owner_engine.connect() as conn, conn.begin():
            res = purge_org(conn, org_id, org_slug, now, ring, key)
        if res is not None:
            out.append(res)
    return out

"""The audit log's periodic jobs (they replace the cron lines for ``audit seal`` and ``audit purge``)."""

from __future__ import annotations

import logging

from app import jobs

log = logging.getLogger("tenantry.audit")


@jobs.task(
    "audit.seal",
    queue_name="audit",
    periodic="* * * * * */5",
    lock="audit.seal",
    queueing_lock="audit.seal",
)
def seal(timestamp: int) -> int:
    """Every 5 seconds: chain the events committed since the last run, so the
    window in which a database owner could delete a not-yet-sealed event
    without trace is seconds long. One run at a time, at most one waiting;
    each organization is sealed in its own transaction, as ``flask audit
    seal`` does (same code)."""
    from app.auditlog.sealing import seal_all
    from app.extensions import db

    results = seal_all(db.engine)
    rejected = sum(len(r.rejected) for r in results)
    if rejected:
        log.error("audit seal refused %d event(s) with an invalid MAC: run `flask audit verify`", rejected)
    return sum(r.sealed for r in results)


@jobs.task("audit.purge", queue_name="audit", periodic="17 3 * * *", lock="audit.purge", queueing_lock="audit.purge")
def purge(timestamp: int) -> int:
    """Daily at 03:17 UTC: remove events past each plan's retention, leaving
    signed checkpoints (the owner connection, as ``flask audit purge``)."""
    from app.auditlog.retention import purge as purge_events
    from app.database import owner_engine

    engine = owner_engine()
    try:
        return sum(r.removed for r in purge_events(engine))
    finally:
        engine.dispose()

"""The streaming area's jobs (found by ``app.jobs.discover``): ``streaming.deliver``
(one stream's next batches) and ``streaming.sweep`` (the periodic kick)."""

from __future__ import annotations

from sqlalchemy import text

from app import jobs
from app.extensions import db
from app.scoping import all_organizations
from app.streaming.delivery import deliver, wake  # noqa: F401  (registers the task)


@jobs.task("streaming.sweep", queue_name="streaming", periodic="* * * * * */5", queueing_lock="streaming.sweep")
def sweep(timestamp: int) -> int:
    """Every 5 seconds (the sealer's rhythm): wake the job of every enabled
    stream that is not waiting for a retry and whose organization has sealed
    events past its cursor. One index probe per stream. Returns how many streams."""
    with all_organizations(reason="streaming.sweep: wake streams with sealed events past their cursor"):
        rows = db.session.execute(
            text(
                "SELECT s.organization_id, s.id FROM audit_streams s"
                " WHERE s.enabled AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= now())"
                " AND EXISTS (SELECT 1 FROM audit_seals a WHERE a.organization_id = s.organization_id"
                " AND a.seq > s.cursor_seq)"
            )
        ).all()
        for org_id, stream_id in rows:
            wake([stream_id], org_id=org_id)
    return len(rows)

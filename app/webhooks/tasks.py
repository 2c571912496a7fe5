"""The webhooks area's jobs (found by ``app.jobs.discover``): ``webhooks.deliver``
(one endpoint's due deliveries) and ``webhooks.sweep`` (the safety net)."""

from __future__ import annotations

from sqlalchemy import text

from app import jobs
from app.extensions import db
from app.scoping import all_organizations
from app.webhooks.delivery import deliver, wake  # noqa: F401  (registers the task)

# A delivery due this long with no job sending it is woken by the sweep.
OVERDUE = "1 minute"


@jobs.task("webhooks.sweep", queue_name="webhooks", periodic="* * * * *", queueing_lock="webhooks.sweep")
def sweep(timestamp: int) -> int:
    """Every minute: wake the job of every enabled endpoint with a delivery
    due for over a minute (normally each endpoint's job is woken by the
    event or scheduled for the retry; this covers a job that failed or an
    outage of ours, so no delivery waits forever). Returns how many endpoints."""
    with all_organizations(reason="webhooks.sweep: wake endpoints whose due deliveries have no job"):
        rows = db.session.execute(
            text(
                "SELECT DISTINCT d.organization_id, d.endpoint_id FROM webhook_deliveries d"
                " JOIN webhook_endpoints e ON e.organization_id = d.organization_id AND e.id = d.endpoint_id"
                f" WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at < now() - interval '{OVERDUE}'"
                " AND d.status <> 'succeeded' AND e.enabled"
            )
        ).all()
        for org_id, endpoint_id in rows:
            wake([endpoint_id], org_id=org_id)
    return len(rows)

"""The organizations' periodic job (it replaces the cron line for ``jobs purge-organizations``)."""

from __future__ import annotations

from app import jobs


@jobs.task(
    "tenancy.purge_organizations",
    queue_name="default",
    periodic="27 3 * * *",
    lock="tenancy.purge_organizations",
    queueing_lock="tenancy.purge_organizations",
)
def purge_organizations(timestamp: int) -> int:
    """Daily at 03:27 UTC: remove the data of organizations deleted more than
    30 days ago (cross-organization, inside ``purge_expired``)."""
    from app.tenancy.lifecycle import purge_expired

    return len(purge_expired())

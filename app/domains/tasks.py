"""The domains area's periodic job: the daily re-check of verified domains."""

from __future__ import annotations

from app import jobs


@jobs.task(
    "domains.recheck",
    queue_name="default",
    periodic="41 4 * * *",
    lock="domains.recheck",
    queueing_lock="domains.recheck",
)
def recheck(timestamp: int) -> dict:
    """Daily at 04:41 UTC: look up the TXT record of every verified domain
    (each in its organization's scope). Seen: renewed. Missing for 7 days:
    unverified, its custom host stops, the organization's domain admins are
    e-mailed. Safe to repeat: a domain checked in the last 20 hours is skipped."""
    from app.domains.services import recheck_all

    return recheck_all()

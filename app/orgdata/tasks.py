"""The organization data area's jobs (found by ``app.jobs.discover``):
``orgdata.export`` (one archive) and ``orgdata.drop_expired`` (hourly)."""

from __future__ import annotations

from app import jobs
from app.orgdata.services import drop_expired_archives, export_task  # noqa: F401  (registers the task)
from app.scoping import all_organizations


@jobs.task("orgdata.drop_expired", periodic="23 * * * *", queueing_lock="orgdata.drop_expired")
def drop_expired(timestamp: int) -> int:
    """Hourly: drop the bytes of every export archive past its 24 hours."""
    with all_organizations(reason="orgdata.drop_expired: archives past their 24 hours"):
        return drop_expired_archives()

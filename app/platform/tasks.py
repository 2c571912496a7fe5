"""The platform console's periodic job: the figures too costly to count per request."""

from __future__ import annotations

from app import jobs


@jobs.task(
    "platform.refresh_stats",
    queue_name="default",
    periodic="*/10 * * * *",
    lock="platform.refresh_stats",
    queueing_lock="platform.refresh_stats",
)
def refresh_stats(timestamp: int) -> dict:
    """Every 10 minutes: members per organization (the list's size filter)
    and the overview's user and activity figures (``app.platform.stats``)."""
    from app.extensions import db
    from app.platform import stats

    figures = stats.refresh()
    db.session.commit()
    return figures

"""The access reviews' periodic jobs: reminders and the next campaign of recurring reviews."""

from __future__ import annotations

from app import jobs


@jobs.task(
    "reviews.remind",
    queue_name="default",
    periodic="7 8 * * *",
    lock="reviews.remind",
    queueing_lock="reviews.remind",
)
def remind(timestamp: int) -> dict:
    """Daily at 08:07 UTC: e-mail the reviewers of every open campaign that
    still has undecided members (overdue ones say so). Safe to repeat: a
    campaign is reminded once a day at most (``reminded_on``)."""
    from app.reviews.services import remind_due

    return {"mails": remind_due()}


@jobs.task(
    "reviews.repeat",
    queue_name="default",
    periodic="17 0 * * *",
    lock="reviews.repeat",
    queueing_lock="reviews.repeat",
)
def repeat(timestamp: int) -> dict:
    """Daily at 00:17 UTC: start the next campaign of every recurring review
    whose next start has come. Safe to repeat: a campaign is repeated once
    (``successor_id``, set under its row lock)."""
    from app.reviews.services import repeat_due

    return {"started": repeat_due()}

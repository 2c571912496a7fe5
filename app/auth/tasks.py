"""Jobs of the accounts area."""

from __future__ import annotations

from app import jobs


@jobs.task("auth.password_reset_requested", queue_name="default", retry=jobs.Backoff(base=5, cap=300, max_attempts=10))
def password_reset_requested(email: str) -> None:
    """Someone asked for a reset link for ``email`` (from the request kept as
    the job's origin, so the audit event names it): mail one if an account
    has this address. The request enqueued this job either way."""
    from app.auth.services import send_password_reset

    send_password_reset(email)

"""What operators see and do with the queue: ``flask jobs status|retry|cancel``.

Read and changed as the cross-organization role (``all_organizations``):
the queue holds every organization's jobs, which the runtime role may not
read. The platform's jobs page reads the same figures (``status()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from app.extensions import db
from app.scoping import all_organizations


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    waiting: int  # due now, not yet taken
    scheduled: int  # waiting for a later time (retries with backoff)
    running: int
    failed: int
    oldest_waiting_seconds: float | None  # age of the oldest job that is due


@dataclass(frozen=True)
class FailedJob:
    id: int
    queue: str
    task: str
    attempts: int
    error: str | None
    failed_at: datetime | None


@dataclass(frozen=True)
class Status:
    queues: list[QueueFigures]
    failed: list[FailedJob]


_FIGURES = text(
    """
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS waiting,
           count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
           count(*) FILTER (WHERE status = 'doing') AS running,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at)) FILTER (
               WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
           )) AS oldest
      FROM procrastinate_jobs j
      LEFT JOIN LATERAL (
           SELECT max(at) AS at FROM procrastinate_events
            WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry', 'retried')
      ) e ON true
     GROUP BY queue_name ORDER BY queue_name
    """
)

_FAILED = text(
    """
    SELECT j.id, j.queue_name, j.task_name, j.attempts, x.error, x.failed_at
      FROM procrastinate_jobs j LEFT JOIN job_errors x ON x.job_id = j.id
     WHERE j.status = 'failed'
     ORDER BY j.id DESC LIMIT :limit
    """
)


def status(limit: int = 20) -> Status:
    """Per queue: jobs waiting (due), scheduled for later, running, failed,
    and how long the oldest due job has waited; the newest failed jobs with
    their last error."""
    with all_organizations(reason="job queue status"):
        queues = [
            QueueFigures(r.queue_name, r.waiting, r.scheduled, r.running, r.failed, r.oldest)
            for r in db.session.execute(_FIGURES)
        ]
        failed = [FailedJob(*r) for r in db.session.execute(_FAILED, {"limit": limit})]
    db.session.rollback()
    return Status(queues, failed)


class JobActionError(ValueError):
    """The job cannot be retried or cancelled; the message says why."""


def _locked_status(job_id: int) -> str:
    """The job's status, its row locked until the transaction ends; raises
    ``JobActionError`` when there is no such job."""
    state = db.session.execute(
        text("SELECT status FROM procrastinate_jobs WHERE id = :id FOR UPDATE"), {"id": job_id}
    ).scalar()
    if state is None:
        raise JobActionError(f"no job {job_id}")
    return state


def retry(job_id: int) -> str:
    """Run a failed job again now, or a job waiting for a later retry now."""
    with all_organizations(reason=f"retry job {job_id}"):
        state = _locked_status(job_id)
        if state == "failed":
            db.session.execute(text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)"), {"id": job_id})
        elif state == "todo":
            db.session.execute(
                text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = :id"), {"id": job_id}
            )
        else:
            raise JobActionError(f"job {job_id} is {state}: only a failed or waiting job can be retried")
    db.session.commit()
    return state


def cancel(job_id: int) -> str:
    """Cancel a waiting job; ask a running one to abort."""
    with all_organizations(reason=f"cancel job {job_id}"):
        state = _locked_status(job_id)
        if state not in ("todo", "doing"):
            raise JobActionError(f"job {job_id} is {state}: only a waiting or running job can be cancelled")
        db.session.execute(text("SELECT procrastinate_cancel_job_v1(:id, true, false)"), {"id": job_id})
    db.session.commit()
    return "cancelled" if state == "todo" else "abort requested"

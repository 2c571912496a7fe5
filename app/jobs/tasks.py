"""The queue's own periodic job: hand back the jobs of workers that died."""

from __future__ import annotations

from app.jobs import queue
from app.jobs.worker import recover_stalled


@queue.periodic(cron="* * * * * */10")
@queue.task(name="jobs.recover_stalled", queue="jobs", pass_context=True, queueing_lock="jobs.recover_stalled")
async def recover_stalled_jobs(context, timestamp: int) -> int:
    """Every 10 seconds: jobs left running by a worker silent for
    ``JOBS_STALLED_SECONDS`` (killed, crashed, its machine lost) go back to
    the queue, to run again on a live worker."""
    seconds = context.additional_context["flask_app"].config["JOBS_STALLED_SECONDS"]
    return len(await recover_stalled(context.app.job_manager, seconds))

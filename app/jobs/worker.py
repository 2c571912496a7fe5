"""Running workers: ``flask --app wsgi worker`` and the tests' ``drain``.

A worker works the queue as the cross-organization role (the queue holds
every organization's jobs); each job's own work runs on ``db.session`` in
the job's scope (``app/jobs/__init__.py``). Several workers, on one
machine or many, share the queue: a job is fetched by one of them
(``FOR UPDATE SKIP LOCKED``), and a periodic tick is deferred once.

* SIGTERM or Ctrl-C: the worker takes no new job, finishes the ones it is
  running, then exits.
* SIGKILL, a crash, a lost machine: the worker stops beating
  (``JOBS_HEARTBEAT_SECONDS``); after ``JOBS_STALLED_SECONDS`` any other
  worker hands its running jobs back to the queue (at start and every few
  seconds, ``app/jobs/tasks.py``), so they run again rather than being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import procrastinate
import procrastinate.exceptions
import procrastinate.jobs
from procrastinate.periodic import PeriodicRegistry
from sqlalchemy.engine import make_url

from app.jobs import discover, queue

log = logging.getLogger("tenantry.jobs")


def conninfo(config) -> str:
    """libpq URL of the cross-organization role (the worker's queue connection)."""
    from app.database import CROSS_ORG_BIND

    url = make_url(config["SQLALCHEMY_BINDS"][CROSS_ORG_BIND]["url"]).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def connector(config, max_size: int) -> procrastinate.PsycopgConnector:
    return procrastinate.PsycopgConnector(
        conninfo=conninfo(config),
        min_size=1,
        max_size=max_size,
        kwargs={"application_name": "tenantry-worker"},
    )


async def recover_stalled(job_manager, seconds: float) -> list[int]:
    """Hand the running jobs of workers silent for ``seconds`` back to the
    queue; returns their ids.

    A stalled job whose queueing lock is already held by a waiting job (a
    periodic task's next tick, deferred meanwhile by a live worker) cannot
    go back: that waiting job does the same work, so the stalled one is
    removed. One such job never keeps the others from being recovered."""
    await job_manager.prune_stalled_workers(seconds)
    ids, superseded = [], []
    for job in await job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
        try:
            await job_manager.retry_job(job)
        except procrastinate.exceptions.UniqueViolation:
            await job_manager.finish_job(job, status=procrastinate.jobs.Status.ABORTED, delete_job=True)
            superseded.append(job.id)
            continue
        ids.append(job.id)
    if ids:
        log.warning("re-queued %d job(s) of stopped workers: %s", len(ids), ", ".join(map(str, ids)))
    if superseded:
        log.warning(
            "removed %d job(s) of stopped workers already queued again under their lock: %s",
            len(superseded),
            ", ".join(map(str, superseded)),
        )
    return ids


def run(
    flask_app,
    *,
    concurrency: int | None = None,
    queues: list[str] | None = None,
    wait: bool = True,
    periodic: bool = True,
    install_signal_handlers: bool = True,
    name: str = "worker",
) -> None:
    """Run a worker until it is stopped (``wait``) or, with ``wait=False``,
    until no job is due. ``periodic=False`` defers no periodic task."""
    cfg = flask_app.config
    discover()
    if wait:
        _log_jobs(cfg)
    concurrency = concurrency or cfg["JOBS_CONCURRENCY"]
    stalled = cfg["JOBS_STALLED_SECONDS"]

    async def main():
        async with queue.open_async():
            await recover_stalled(queue.job_manager, stalled)
            await queue.run_worker_async(
                name=name,
                queues=queues,
                concurrency=concurrency,
                wait=wait,
                listen_notify=wait,
                fetch_job_polling_interval=5.0 if wait else 0.1,
                delete_jobs="successful",  # a sent mail's job held its text; failed ones stay, to retry
                additional_context={"flask_app": flask_app},
                install_signal_handlers=install_signal_handlers,
                update_heartbeat_interval=cfg["JOBS_HEARTBEAT_SECONDS"],
                stalled_worker_timeout=stalled,
            )

    with queue.replace_connector(connector(cfg, max_size=concurrency + 3)), _periodic(periodic):
        asyncio.run(main())


def _log_jobs(cfg) -> None:
    """A worker logs each job it starts and ends, and each periodic tick it
    defers, through the app's handler (``tenantry`` logger)."""
    plog = logging.getLogger("procrastinate")
    plog.handlers[:] = logging.getLogger("tenantry").handlers
    plog.setLevel(cfg["LOG_LEVEL"])
    plog.propagate = False


@contextlib.contextmanager
def _periodic(enabled: bool):
    if enabled:
        yield
        return
    saved, queue.periodic_registry = queue.periodic_registry, PeriodicRegistry()
    try:
        yield
    finally:
        queue.periodic_registry = saved


def drain(flask_app, queues: list[str] | None = None) -> None:
    """Run every job that is due, in this process, until none is left (tests,
    and ``flask jobs run``): jobs enqueued by those jobs run too; a retry
    scheduled for later waits. No periodic task is deferred."""
    run(flask_app, concurrency=1, queues=queues, wait=False, periodic=False, install_signal_handlers=False)

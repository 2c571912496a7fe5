"""Background work: jobs on this same PostgreSQL (procrastinate).

* ``@task("mail.send", queue_name="mail", retry=Backoff(...))`` declares a job
  next to the code it serves (``app/<area>/tasks.py`` or the area's module);
  ``periodic="* * * * * */5"`` also schedules it (cron; a sixth field is the
  seconds). With several workers each periodic run happens once: the
  database refuses a second defer of the same task for the same tick.
* ``enqueue(task, **kwargs)`` adds a job **in the current transaction of
  ``db.session``**: one statement (``procrastinate_defer_jobs_v1``) on the
  same connection, so a rolled-back change enqueues nothing and a committed
  one always has its job. The runtime role may add jobs but read none
  (``app/rls.py``).
* A job runs in the scope it was enqueued in: the current organization is
  stored with it and the job runs inside ``tenant_context`` of it (the ORM
  filter and the RLS settings, on the runtime role), so it cannot see another
  organization's rows. A job enqueued with no organization sees none.
  Cross-organization work (purges, sealing) says so inside the task with
  ``all_organizations(reason=...)``, as a command does.
* ``origin=True`` keeps the requester's IP, user agent and request id, and
  the job runs in a request context rebuilt from them (on the apex), so
  the audit events it records name the request that caused them.
* The task's database work commits when it returns; an exception rolls it
  back, keeps the error (``job_errors``) and lets the retry strategy decide.
  A job may run more than once (a worker killed after the work but before
  marking it done): tasks are written to be repeated safely.

Workers are ``flask --app wsgi worker`` processes (``app/jobs/worker.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import random
import uuid
from datetime import datetime
from pathlib import Path

import procrastinate
from procrastinate.retry import RetryDecision
from sqlalchemy import text

from app.extensions import db
from app.scoping import current_org_id, reset_scope, set_scope

log = logging.getLogger("tenantry.jobs")

# The task registry and, in a worker, the queue machinery. Web processes
# never open its connector: they enqueue through db.session.
queue = procrastinate.App(connector=procrastinate.PsycopgConnector())

ORG_KEY = "_org"
ORIGIN_KEY = "_origin"


class Backoff(procrastinate.BaseRetryStrategy):
    """Retry after ``base`` seconds, doubling each attempt up to ``cap``, with
    ±20 % jitter (so jobs failed by one outage do not return in one burst);
    give up after ``max_attempts`` or on an exception listed in ``give_up``."""

    def __init__(self, base: float = 5, cap: float = 3600, max_attempts: int | None = None, give_up=()):
        self.base, self.cap, self.max_attempts, self.give_up = base, cap, max_attempts, tuple(give_up)

    def delay(self, attempts: int) -> float:
        return min(self.cap, self.base * 2**attempts)

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        if self.max_attempts is not None and job.attempts + 1 >= self.max_attempts:
            return None
        if self.give_up and isinstance(exception, self.give_up):
            return None
        wait = self.delay(job.attempts) * random.uniform(0.8, 1.2)
        return RetryDecision(retry_in={"seconds": max(1, round(wait))})


def task(
    name: str,
    *,
    queue_name: str = "default",
    retry: procrastinate.BaseRetryStrategy | bool = False,
    periodic: str | None = None,
    lock: str | None = None,
    queueing_lock: str | None = None,
):
    """Declare ``fn(**kwargs)`` as the job ``name``.

    The job runs with an application context (and, for ``origin`` jobs, a
    request context), in the organization it was enqueued for; its session
    commits when ``fn`` returns and rolls back when it raises. ``periodic``
    is a cron line (a sixth field is the seconds); a periodic task receives
    ``timestamp`` (the tick, Unix seconds). ``lock`` keeps two jobs of the
    task from running at once; ``queueing_lock`` keeps at most one waiting.
    """

    def decorate(fn):
        def run(context, **kwargs):
            flask_app = context.additional_context["flask_app"]
            org = kwargs.pop(ORG_KEY, None)
            origin = kwargs.pop(ORIGIN_KEY, False)
            with _job_context(flask_app, origin):
                try:
                    with _scope(org):
                        result = fn(**kwargs)
                        db.session.commit()  # flushed in the job's scope
                    return result
                except BaseException as exc:
                    db.session.rollback()
                    _keep_error(context.job, exc)
                    raise
                finally:
                    db.session.remove()

        run.__name__ = run.__qualname__ = fn.__name__
        run.__module__ = fn.__module__
        run.__doc__ = fn.__doc__
        t = queue.task(
            name=name,
            queue=queue_name,
            retry=retry,
            pass_context=True,
            lock=lock,
            queueing_lock=queueing_lock,
        )(run)
        if periodic:
            queue.periodic(cron=periodic)(t)
        t.body = fn  # the function itself, for a direct call (tests, commands)
        return t

    return decorate


@contextlib.contextmanager
def _scope(org: str | None):
    """The job's organization, or none at all: never a scope inherited from
    whoever runs the worker (a worker thread copies its caller's context)."""
    token = set_scope(uuid.UUID(org) if org else None)
    try:
        yield
    finally:
        reset_scope(token)


@contextlib.contextmanager
def _job_context(flask_app, origin: dict | bool):
    if origin is False:
        with flask_app.app_context():
            yield
        return
    cfg = flask_app.config
    base = f"{cfg['PREFERRED_URL_SCHEME']}://{cfg['TENANTRY_SERVER_NAME']}/"
    headers = {"User-Agent": origin["ua"]} if origin.get("ua") else {}
    with flask_app.test_request_context(base_url=base, headers=headers, environ_base={"REMOTE_ADDR": origin.get("ip")}):
        from flask import g

        g.request_id = origin.get("rid")
        yield


def _keep_error(job, exc: BaseException) -> None:
    """Keep this attempt's error beside the job (``flask jobs status``), as the
    cross-organization role: the runtime role cannot read the queue."""
    from app.database import CROSS_ORG_BIND

    message = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        with db.engines[CROSS_ORG_BIND].begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO job_errors (job_id, attempts, error) VALUES (:id, :n, :e)"
                    " ON CONFLICT (job_id) DO UPDATE SET attempts = EXCLUDED.attempts, error = EXCLUDED.error,"
                    " failed_at = now()"
                ),
                {"id": job.id, "n": job.attempts + 1, "e": message},
            )
    except Exception:  # the job's own outcome matters more than its note
        log.exception("could not keep the error of job %s", job.id)


_DEFER = text(
    "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer), CAST(:lock AS text),"
    " CAST(:queueing_lock AS text), CAST(:args AS jsonb), CAST(:at AS timestamptz)"
    ")::procrastinate_job_to_defer_v1]))[1]"
)


def enqueue(job_task, *, origin: bool = False, at: datetime | None = None, **kwargs) -> int:
    """Add a job of ``job_task`` with ``kwargs`` (JSON values) in the current
    transaction; returns its id. It runs once that transaction commits, in
    the current organization's scope; ``origin=True`` keeps the request's
    IP, user agent and request id for it; ``at`` delays it."""
    args = dict(kwargs)
    org = current_org_id()
    if org is not None:
        args[ORG_KEY] = str(org)
    if origin:
        args[ORIGIN_KEY] = _origin()
    return db.session.execute(
        _DEFER,
        {
            "queue": job_task.queue,
            "task": job_task.name,
            "priority": job_task.priority,
            "lock": job_task.lock,
            "queueing_lock": job_task.queueing_lock,
            "args": json.dumps(args),
            "at": at,
        },
    ).scalar_one()


def _origin() -> dict:
    from flask import g, has_request_context, request

    if not has_request_context():
        return {"ip": None, "ua": None, "rid": None}
    return {
        "ip": request.remote_addr,
        "ua": (request.user_agent.string or "")[:400] or None,
        "rid": g.get("request_id"),
    }


def discover(package: str = "app") -> list[str]:
    """Import every ``<package>.<area>.tasks`` module, so a worker knows every
    task and periodic schedule; returns their names. Each area declares its
    own jobs: no list here names them."""
    root = importlib.import_module(package)
    found = []
    # By file, not pkgutil: some areas are namespace packages (no __init__.py).
    for folder in root.__path__:
        for area in sorted(Path(folder).iterdir()):
            if (area / "tasks.py").is_file():
                name = f"{package}.{area.name}.tasks"
                importlib.import_module(name)
                found.append(name)
    return found

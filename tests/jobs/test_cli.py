"""``flask jobs status|retry|cancel``: what an operator sees and does with the queue."""

from __future__ import annotations

from sqlalchemy import text

from app import jobs
from app.extensions import db

CALLS: list = []


@jobs.task("tests.explode")
def explode(why: str) -> None:
    CALLS.append(why)
    if why != "fixed":
        raise RuntimeError(f"boom: {why}")


def _status(owner_engine, job_id):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT status FROM procrastinate_jobs WHERE id = :i"), {"i": job_id}).scalar()


def test_status_shows_depth_per_queue_and_failed_jobs_with_their_error(app, run_jobs):
    from app.mail import queue_mail

    failing = jobs.enqueue(explode, why="disk full")
    queue_mail("a@example.test", "Hi", "reset", user=None, link="http://x/", minutes=60)
    db.session.commit()
    out = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:5] == ["queue", "waiting", "later", "running", "failed"]
    assert [ln.split()[:2] for ln in lines[1:3]] == [["default", "1"], ["mail", "1"]]
    assert lines[1].endswith(" s")  # the oldest waiting job's age
    run_jobs()
    out = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert f"#{failing} tests.explode (default) after 1 attempt(s)" in out.output
    assert "RuntimeError: boom: disk full" in out.output


def test_retry_runs_a_failed_job_again(app, owner_engine, run_jobs):
    CALLS.clear()
    job_id = jobs.enqueue(explode, why="first")
    db.session.commit()
    run_jobs()
    assert _status(owner_engine, job_id) == "failed"
    out = app.test_cli_runner().invoke(args=["jobs", "retry", str(job_id)])
    assert out.exit_code == 0 and "queued to run now" in out.output
    assert _status(owner_engine, job_id) == "todo"
    run_jobs()
    assert CALLS == ["first", "first"]


def test_cancel_a_waiting_job_and_it_never_runs(app, owner_engine, run_jobs):
    CALLS.clear()
    job_id = jobs.enqueue(explode, why="cancelled")
    db.session.commit()
    out = app.test_cli_runner().invoke(args=["jobs", "cancel", str(job_id)])
    assert out.exit_code == 0 and "cancelled" in out.output
    run_jobs()
    assert CALLS == [] and _status(owner_engine, job_id) == "cancelled"
    again = app.test_cli_runner().invoke(args=["jobs", "cancel", str(job_id)])
    assert again.exit_code == 2 and "only a waiting or running job" in again.output


def test_retry_or_cancel_an_unknown_job_says_so(app):
    for cmd in ("retry", "cancel"):
        out = app.test_cli_runner().invoke(args=["jobs", cmd, "999999"])
        assert out.exit_code == 2 and "no job 999999" in out.output

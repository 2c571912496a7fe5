"""A job is enqueued in the transaction of its change, and runs in the scope
of its organization (the ORM filter and RLS, on the runtime role)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from app import jobs
from app.extensions import db
from app.projects.models import Project
from app.scoping import current_org_id, tenant_context

SEEN: list = []


@jobs.task("tests.look_around")
def look_around(label: str) -> None:
    """Note what a job can see: its organization, the projects the ORM
    returns, and the rows row-level security lets through a raw statement."""
    names = sorted(db.session.execute(select(Project.name)).scalars())
    raw = db.session.execute(text("SELECT count(*) FROM projects")).scalar()
    SEEN.append((label, current_org_id(), names, raw))


@jobs.task("tests.write_project")
def write_project(name: str) -> None:
    db.session.add(Project(name=name))


@pytest.fixture(autouse=True)
def _seen():
    SEEN.clear()
    yield
    SEEN.clear()


def _queued(owner_engine) -> list:
    with owner_engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT task_name, args FROM procrastinate_jobs ORDER BY id"))]


def test_a_committed_change_has_its_job(world, owner_engine):
    with tenant_context(world.acme.id):
        db.session.add(Project(name="Launch"))
        job_id = jobs.enqueue(look_around, label="after launch")
        db.session.commit()
    assert isinstance(job_id, int)
    [(task, args)] = _queued(owner_engine)
    assert task == "tests.look_around" and args == {"label": "after launch", "_org": str(world.acme.id)}


def test_a_rolled_back_change_enqueues_nothing(world, owner_engine, run_jobs):
    with tenant_context(world.acme.id):
        db.session.add(Project(name="Never"))
        jobs.enqueue(look_around, label="never")
        db.session.rollback()
        db.session.commit()  # a later commit does not bring back what the rollback dropped
    assert _queued(owner_engine) == []
    run_jobs()
    assert SEEN == []


def test_a_job_sees_only_its_own_organization(world, run_jobs):
    with tenant_context(world.acme.id):
        jobs.enqueue(look_around, label="acme")
    with tenant_context(world.globex.id):
        jobs.enqueue(look_around, label="globex")
    jobs.enqueue(look_around, label="nobody")
    db.session.commit()
    run_jobs()
    seen = {label: (org, names, raw) for label, org, names, raw in SEEN}
    assert seen["acme"] == (world.acme.id, [f"Acme Project {i}" for i in range(3)], 3)
    assert seen["globex"] == (world.globex.id, [f"Globex Secret {i}" for i in range(3)], 3)
    assert seen["nobody"] == (None, [], 0)  # no organization: no tenant row at all


def test_a_job_runs_in_its_scope_whatever_scope_runs_the_worker(world, run_jobs):
    jobs.enqueue(look_around, label="nobody")
    db.session.commit()
    with tenant_context(world.globex.id):  # the worker's caller is in another scope
        run_jobs()
    assert SEEN == [("nobody", None, [], 0)]


def test_a_job_writes_into_its_own_organization_and_commits(world, run_jobs):
    with tenant_context(world.globex.id):
        jobs.enqueue(write_project, name="Made by a job")
        db.session.commit()
    run_jobs()
    with tenant_context(world.globex.id):
        assert "Made by a job" in db.session.execute(select(Project.name)).scalars().all()
    with tenant_context(world.acme.id):
        assert "Made by a job" not in db.session.execute(select(Project.name)).scalars().all()


def test_the_runtime_role_may_add_jobs_but_read_none(world):
    with tenant_context(world.acme.id):
        jobs.enqueue(look_around, label="secret")
        db.session.commit()
    with pytest.raises(Exception, match="permission denied"):
        db.session.execute(text("SELECT args FROM procrastinate_jobs")).all()
    db.session.rollback()
    for stmt in ("UPDATE procrastinate_jobs SET status = 'cancelled'", "DELETE FROM procrastinate_jobs"):
        with pytest.raises(Exception, match="permission denied"):
            db.session.execute(text(stmt))
        db.session.rollback()


def test_a_job_keeps_its_requests_origin_for_the_audit_log(client, owner_engine, run_jobs):
    """The password-reset job records its audit event with the IP, user agent
    and request id of the request that asked for it."""
    from tests import factories as f
    from tests.auth.conftest import post

    f.make_user("ann@example.test")
    r = post(client, "/forgot-password", {"email": "ann@example.test"}, headers={"User-Agent": "Agent/1.0"})
    [(task, args)] = _queued(owner_engine)
    assert task == "auth.password_reset_requested" and args["_origin"]["ua"] == "Agent/1.0"
    run_jobs()
    with owner_engine.connect() as c:
        row = c.execute(
            text("SELECT ip, user_agent, request_id FROM audit_events WHERE action = 'auth.password_reset_requested'")
        ).one()
    assert row.user_agent == "Agent/1.0" and row.request_id == r.headers.get("X-Request-ID", row.request_id)
    assert row.request_id == args["_origin"]["rid"]
    assert json.dumps(args)  # plain JSON: nothing but values crosses into the queue

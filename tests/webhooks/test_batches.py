"""Deliveries in batches: the organization knows which actions its endpoints
receive (an event nobody receives costs webhooks no statement), a burst of
events wakes one job per endpoint, two jobs of one endpoint never send a
delivery twice, and a due delivery with no job is found by the sweep."""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy import event, text

from app import audit
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Organization
from app.webhooks import delivery as delivery_mod
from app.webhooks import services
from app.webhooks import tasks as webhook_tasks
from tests.webhooks.test_delivery import create_project, deliveries, jobs_of, rows


def org_actions(owner_engine, org):
    return rows(owner_engine, "SELECT webhook_actions FROM organizations WHERE id = :o", o=org.id)[0]["webhook_actions"]


@contextlib.contextmanager
def statements():
    seen: list[str] = []

    def listener(conn, cursor, statement, *a):
        seen.append(" ".join(statement.split()))

    engines = list(db.engines.values())
    for e in engines:
        event.listen(e, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", listener)


def add_project(org, name):
    """A project added in the current transaction (not committed)."""
    from app.projects.models import Project

    p = Project(organization_id=org.id, name=name)
    db.session.add(p)
    db.session.flush()
    return p


def record_as_a_request_does(org, name="Launch"):
    """Record project.created with the organization loaded (as the request's
    entry statement loads it); returns the statements the event cost."""
    with tenant_context(org.id):
        db.session.get(Organization, org.id).webhook_actions  # noqa: B018  (the entry statement's load)
        project = add_project(org, name)
        with statements() as seen:
            audit.record("project.created", target=project, after={"name": name}, actor="system")
        db.session.commit()
    return seen


# --------------------------------------------------------------------------- the organization's actions
def test_the_organization_knows_the_actions_its_enabled_endpoints_receive(
    world, loopback, receiver, make_endpoint, owner_engine
):
    assert org_actions(owner_engine, world.acme) == []
    a, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    b, _ = make_endpoint(world.acme, receiver.url + "2", ["role.created", "project.created"])
    assert org_actions(owner_engine, world.acme) == ["project.created", "role.created"]
    assert org_actions(owner_engine, world.globex) == []
    with tenant_context(world.acme.id):
        services.disable_endpoint(services.find_endpoint(b))
        db.session.commit()
    assert org_actions(owner_engine, world.acme) == ["project.created"]
    with tenant_context(world.acme.id):
        services.enable_endpoint(services.find_endpoint(b))
        e = services.find_endpoint(a)
        services.update_endpoint(e, e.url, "", ["project.deleted"], e.version)
        db.session.commit()
    assert org_actions(owner_engine, world.acme) == ["project.created", "project.deleted", "role.created"]
    with tenant_context(world.acme.id):
        services.delete_endpoint(services.find_endpoint(b))
        db.session.commit()
    assert org_actions(owner_engine, world.acme) == ["project.deleted"]


def test_concurrent_endpoint_changes_leave_the_actions_exact(world, loopback, receiver, app, owner_engine):
    """Two creates at once: the second waits for the first (the organization's
    webhooks lock) and recomputes from what it committed."""
    barrier = threading.Barrier(2)
    errors = []
    org_id = world.acme.id  # the test's objects stay on its thread (its session)

    def create(events):
        try:
            with app.app_context(), tenant_context(org_id):
                org = db.session.get(Organization, org_id)
                barrier.wait(5)
                services.create_endpoint(org, receiver.url, "", events)
                db.session.commit()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=create, args=(ev,)) for ev in (["project.created"], ["role.created"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert org_actions(owner_engine, world.acme) == ["project.created", "role.created"]


def test_an_event_no_endpoint_receives_costs_webhooks_no_statement(world, loopback, receiver, make_endpoint):
    make_endpoint(world.acme, receiver.url, ["role.created"])
    seen = record_as_a_request_does(world.acme)
    assert [s for s in seen if "webhook" in s or "procrastinate" in s] == []


def test_a_received_event_costs_one_statement_for_its_deliveries_and_jobs(
    world, loopback, receiver, make_endpoint, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    make_endpoint(world.acme, receiver.url + "2", ["project.created"])
    seen = record_as_a_request_does(world.acme)
    assert len([s for s in seen if "webhook" in s or "procrastinate" in s]) == 1
    assert len(deliveries(owner_engine)) == 2 and len(jobs_of(owner_engine)) == 2


def test_an_endpoint_created_in_the_transaction_receives_its_events(world, loopback, receiver, owner_engine):
    """The loaded organization's actions are stale after an endpoint change
    in the same transaction: the event asks the table instead."""
    with tenant_context(world.acme.id):
        db.session.get(Organization, world.acme.id).webhook_actions  # noqa: B018
        services.create_endpoint(world.acme, receiver.url, "", ["webhook.created", "project.created"])
        project = add_project(world.acme, "Same transaction")
        audit.record("project.created", target=project, after={"name": "x"}, actor="system")
        db.session.commit()
    assert sorted(d["event_type"] for d in deliveries(owner_engine)) == ["project.created", "webhook.created"]


# --------------------------------------------------------------------------- batches
def test_a_burst_of_events_wakes_one_job_and_is_sent_in_batches(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    n = delivery_mod.BATCH * 2 + 7
    with tenant_context(world.acme.id):
        for i in range(n):
            project = add_project(world.acme, f"P{i}")
            audit.record("project.created", target=project, after={"name": project.name}, actor="system")
        db.session.commit()
    assert len(deliveries(owner_engine)) == n
    assert len(jobs_of(owner_engine)) == 1  # one wake-up waits per endpoint
    run_jobs()
    assert len(receiver.requests) == n and len(set(receiver.ids())) == n
    assert {(d["status"], d["attempts"]) for d in deliveries(owner_engine)} == {("succeeded", 1)}
    # Every attempt of a batch is stored in the batch's transaction: three batches, three times.
    times = rows(owner_engine, "SELECT count(DISTINCT attempted_at) AS n FROM webhook_attempts")[0]["n"]
    assert times == 3


def test_two_jobs_of_one_endpoint_never_send_a_delivery_twice(
    app, world, loopback, receiver, make_endpoint, owner_engine
):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.delay = 0.02
    with tenant_context(world.acme.id):
        for i in range(60):
            project = add_project(world.acme, f"P{i}")
            audit.record("project.created", target=project, after={"name": project.name}, actor="system")
        db.session.commit()
    barrier = threading.Barrier(2)
    errors = []
    org_id = world.acme.id  # the test's objects stay on its thread (its session)

    def drain():
        try:
            with app.app_context(), tenant_context(org_id):
                barrier.wait(5)
                while delivery_mod.send_batch(eid)[1]:
                    pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(receiver.ids()) == sorted(set(receiver.ids())) and len(receiver.ids()) == 60
    assert {(d["status"], d["attempts"]) for d in deliveries(owner_engine)} == {("succeeded", 1)}


def test_a_hanging_receiver_holds_a_batch_for_its_time_limit_only(
    app, world, loopback, receiver, make_endpoint, owner_engine, monkeypatch
):
    """What a batch did not get to post stays due, unattempted, for the next."""
    monkeypatch.setitem(app.config, "WEBHOOKS_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "WEBHOOKS_SENDERS", 1)
    monkeypatch.setattr(delivery_mod, "BATCH_SECONDS", 0.2)
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    receiver.mode = "hang"
    for i in range(3):
        create_project(world.acme, f"P{i}")
    with tenant_context(world.acme.id):
        made, more = delivery_mod.send_batch(eid)
    assert (made, more) == (1, True)
    states = sorted((d["status"], d["attempts"]) for d in deliveries(owner_engine))
    assert states == [("failed", 1), ("pending", 0), ("pending", 0)]


# --------------------------------------------------------------------------- waking
def test_the_sweep_wakes_an_endpoint_whose_due_deliveries_have_no_job(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme)
    with owner_engine.begin() as c:  # the job is lost (say it failed on our outage)
        c.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver'"))
        c.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '2 minutes'"))
    run_jobs()
    assert receiver.requests == []
    assert webhook_tasks.sweep.body(timestamp=0) == 1
    db.session.commit()
    run_jobs()
    assert len(receiver.requests) == 1 and deliveries(owner_engine)[0]["status"] == "succeeded"


def test_re_enabling_an_endpoint_sends_what_waited(world, loopback, receiver, make_endpoint, run_jobs, owner_engine):
    eid, _ = make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme)
    with tenant_context(world.acme.id):
        services.disable_endpoint(services.find_endpoint(eid))
        db.session.commit()
    run_jobs()
    assert receiver.requests == [] and deliveries(owner_engine)[0]["status"] == "pending"
    with tenant_context(world.acme.id):
        services.enable_endpoint(services.find_endpoint(eid))
        db.session.commit()
    run_jobs()
    assert len(receiver.requests) == 1 and deliveries(owner_engine)[0]["status"] == "succeeded"


def test_a_job_queued_before_batching_drains_its_endpoint(
    world, loopback, receiver, make_endpoint, run_jobs, owner_engine
):
    from app import jobs

    make_endpoint(world.acme, receiver.url, ["project.created"])
    create_project(world.acme)
    [d] = deliveries(owner_engine)
    with owner_engine.begin() as c:
        c.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver'"))
    with tenant_context(world.acme.id):
        jobs.enqueue(delivery_mod.deliver, delivery_id=str(d["id"]))
        db.session.commit()
    run_jobs()
    assert len(receiver.requests) == 1 and deliveries(owner_engine)[0]["status"] == "succeeded"


def test_a_job_never_has_more_than_its_senders_in_flight():
    """A hanging receiver holds its own job's senders only: the shared pool
    has room for every job the worker runs at once."""
    import time

    lock = threading.Lock()
    running, most = 0, 0

    def send(i):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return i

    assert delivery_mod._post_all(12, send, 3, 4) == list(range(12))
    assert most == 3
    assert delivery_mod._sender_pool(1)._max_workers >= 3 * 4

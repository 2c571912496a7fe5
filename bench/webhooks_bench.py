"""Webhooks: delivery throughput, enqueue cost, and a fault drill (issue 13).

    .venv/bin/python bench/webhooks_bench.py                 # all three, default DB below
    .venv/bin/python bench/webhooks_bench.py --only throughput --deliveries 5000 --concurrency 4
    .venv/bin/python bench/webhooks_bench.py --only drill --events 10000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_bench .venv/bin/python bench/webhooks_bench.py

Creates (once) and migrates the database, an organization ``whbench`` and one
endpoint pointing at a receiver this script starts on loopback (its own
process, HTTP/1.1 keep-alive; ``WEBHOOKS_ALLOW_LOOPBACK`` on, as in
development). Not a test; it prints:

* **throughput**: N deliveries queued, then one worker (``worker.run`` in
  this process, ``--concurrency`` threads, the production code path: SSRF
  check, decrypt, sign, POST, store the attempt) works them off; deliveries
  per second per worker.
* **enqueue**: inside a request-like transaction (RLS settings applied, the
  organization loaded as the request's entry statement loads it, a project
  just written), the cost of ``audit.record`` in an organization with one
  endpoint subscribed (the statement that stores the delivery and wakes its
  job) against one whose endpoint receives another action, alternating;
  p50/p99.
* **drill**: ``--events`` deliveries; the receiver fails 50 % of attempts at
  random; the worker is a real ``flask worker`` process, SIGKILLed twice
  during the run and restarted (stalled-job recovery hands its jobs back).
  Retries waiting for a later time are brought forward every second (time
  travel: the deliveries' due times and their jobs), and deliveries that exhausted the
  eight attempts of a round are replayed (the product's recovery:
  ``replay_failed``). Counts distinct ``webhook-id``s acknowledged (2xx) at
  the receiver: lost = events never acknowledged; duplicates = ids
  acknowledged more than once (a worker killed after the receiver answered,
  before the attempt was stored).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import ensure_database  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_bench"
KEY = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmU="  # a fixed Fernet key: the worker processes share it


# --------------------------------------------------------------------------- the receiver (its own process)
def serve(port_file: str, log_file: str, fail_ratio: float) -> None:
    """Answer every POST (200, or 500 for ``fail_ratio`` of them at random),
    appending ``<webhook-id> <status>`` to ``log_file``."""
    out = open(log_file, "a", buffering=1)  # noqa: SIM115
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms delayed-ACK stall

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            status = 500 if random.random() < fail_ratio else 200
            with lock:
                out.write(f"{self.headers.get('webhook-id')} {status}\n")
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a SIGKILLed worker resets its connections: expected in the drill

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def start_receiver(fail_ratio: float, log_file: str) -> tuple[subprocess.Popen, int]:
    port_file = tempfile.mktemp()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", port_file, log_file, str(fail_ratio)],
        cwd=ROOT,
    )
    for _ in range(100):
        if os.path.exists(port_file) and Path(port_file).read_text():
            return proc, int(Path(port_file).read_text())
        time.sleep(0.05)
    raise RuntimeError("the receiver did not start")


# --------------------------------------------------------------------------- helpers
def ms(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return f"p50 {statistics.median(s) * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms  max {s[-1] * 1000:.3f} ms"


def env_for_app(url: str) -> dict:
    env = dict(os.environ)
    env.update(
        TENANTRY_ENV="test",
        DATABASE_URL=url,
        SECRET_KEY="bench",
        ENCRYPTION_KEYS=KEY,
        MAIL_URL="smtp://127.0.0.1:1",
        WEBHOOKS_ALLOW_LOOPBACK="1",
        JOBS_HEARTBEAT_SECONDS="1",
        JOBS_STALLED_SECONDS="3",
        LOG_LEVEL="WARNING",
    )
    return env


def setup(url: str):
    os.environ.update(env_for_app(url))
    ensure_database(url)
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        upgrade(revision="heads")
    owner = create_engine(url, poolclass=NullPool)
    with owner.begin() as c:
        org_id = (
            c.execute(text("SELECT id FROM organizations WHERE slug = 'whbench'")).scalar()
            or c.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, plan_key) "
                    "VALUES (gen_random_uuid(), 'whbench', 'Webhook bench', 'pro') RETURNING id"
                )
            ).scalar()
        )
    return app, owner, org_id


def reset(owner, org_id) -> None:
    with owner.begin() as c:
        # The drill's worker defers the periodic jobs too; none of them belongs here.
        c.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver' OR status = 'todo'"))
        c.execute(text("DELETE FROM webhook_endpoints WHERE organization_id = :o"), {"o": org_id})
        c.execute(text("DELETE FROM projects WHERE organization_id = :o"), {"o": org_id})


def make_endpoint(app, org_id, port: int, events=("project.created",)):
    from app import crypto
    from app.extensions import db
    from app.scoping import tenant_context
    from app.webhooks.models import WebhookEndpoint
    from app.webhooks.services import new_secret

    with app.app_context(), tenant_context(org_id):
        e = WebhookEndpoint(
            url=f"http://127.0.0.1:{port}/hook",
            event_types=list(events),
            enabled=True,
            secret_encrypted=crypto.encrypt(new_secret()),
        )
        db.session.add(e)
        db.session.commit()
        return e.id


def queue_deliveries(app, org_id, endpoint_id, n: int) -> None:
    from app.extensions import db
    from app.scoping import tenant_context
    from app.util import utcnow
    from app.webhooks.services import new_delivery, payload_text

    with app.app_context(), tenant_context(org_id):
        for i in range(n):
            new_delivery(endpoint_id, "project.created", payload_text("project.created", utcnow(), {"n": i}))
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()


def count(owner, sql: str, **params) -> int:
    with owner.connect() as c:
        return c.execute(text(sql), params).scalar()


# --------------------------------------------------------------------------- the three figures
def throughput(app, owner, org_id, n: int, concurrency: int) -> None:
    from app.jobs import worker

    reset(owner, org_id)
    log_file = tempfile.mktemp()
    recv, port = start_receiver(0.0, log_file)
    try:
        endpoint_id = make_endpoint(app, org_id, port)
        queue_deliveries(app, org_id, endpoint_id, n)
        done_sql = "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e AND status = 'succeeded'"
        t0, cpu0 = time.perf_counter(), time.process_time()
        # A worker that finds the queue empty stops (wait=False) even while a
        # job still runs; a job hands on to a fresh one every few seconds, so
        # run the worker again until every delivery went out.
        while True:
            worker.run(
                app,
                concurrency=concurrency,
                queues=["webhooks"],
                wait=False,
                periodic=False,
                install_signal_handlers=False,
            )
            ok = count(owner, done_sql, e=endpoint_id)
            if ok >= n or time.perf_counter() - t0 > 600:
                break
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(
            f"throughput: {ok} of {n} deliveries in {took:.2f} s = {ok / took:.0f} deliveries/s "
            f"(one worker, concurrency {concurrency}, {app.config['WEBHOOKS_SENDERS']} senders); "
            f"the worker's CPU: {cpu * 1000 / max(ok, 1):.2f} ms per delivery"
        )
    finally:
        recv.terminate()
        reset(owner, org_id)


def second_org(owner):
    """The organization whose endpoint receives another action (made once)."""
    with owner.begin() as c:
        return (
            c.execute(text("SELECT id FROM organizations WHERE slug = 'whbench2'")).scalar()
            or c.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, plan_key) "
                    "VALUES (gen_random_uuid(), 'whbench2', 'Webhook bench 2', 'pro') RETURNING id"
                )
            ).scalar()
        )


def enqueue_cost(app, owner, org_id, repeat: int) -> None:
    from app import audit
    from app.extensions import db
    from app.projects.models import Project
    from app.scoping import tenant_context
    from app.tenancy.models import Organization

    other = second_org(owner)
    cases = {
        "one endpoint subscribed": (org_id, True),
        "no endpoint subscribed": (other, True),
        # A job or command has no organization loaded: the hook asks the
        # table (one statement that finds no endpoint), as every event did before.
        "none, organization not loaded": (other, False),
    }
    for org in (org_id, other):
        reset(owner, org)
    make_endpoint(app, org_id, 9, ("project.created",))
    make_endpoint(app, other, 9, ("role.created",))
    samples: dict[str, list[float]] = {label: [] for label in cases}
    with app.app_context():
        # The cases alternate, so a shared machine's changing load falls
        # on all alike.
        for i in range(repeat + 50):
            for label, (org, loaded) in cases.items():
                with tenant_context(org):
                    if loaded:
                        # As a request's entry statement does: the organization
                        # (with the actions its endpoints receive) is loaded.
                        db.session.get(Organization, org).webhook_actions  # noqa: B018
                    p = Project(name=f"p{i}")
                    db.session.add(p)
                    db.session.flush()
                    t0 = time.perf_counter()
                    audit.record("project.created", target=p, after={"name": p.name}, actor="bench")
                    t1 = time.perf_counter()
                    db.session.commit()
                if i >= 50:
                    samples[label].append(t1 - t0)
    for label, out in samples.items():
        print(f"audit.record, {label:<30} {ms(out)}")
    diff = statistics.median(samples["one endpoint subscribed"]) - statistics.median(samples["no endpoint subscribed"])
    print(f"enqueue cost of one delivery (difference of medians): {diff * 1000:.3f} ms")
    saved = statistics.median(samples["none, organization not loaded"]) - statistics.median(
        samples["no endpoint subscribed"]
    )
    print(f"saved on every event no endpoint receives (difference of medians): {saved * 1000:.3f} ms")
    for org in (org_id, other):
        reset(owner, org)


def drill(app, owner, org_id, events: int, url: str, concurrency: int) -> None:
    reset(owner, org_id)
    log_file = tempfile.mktemp()
    recv, port = start_receiver(0.5, log_file)
    env = env_for_app(url)
    cmd = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "wsgi",
        "worker",
        "--concurrency",
        str(concurrency),
        "--queue",
        "webhooks",
    ]
    try:
        endpoint_id = make_endpoint(app, org_id, port)
        queue_deliveries(app, org_id, endpoint_id, events)
        with owner.connect() as c:
            ids = {
                f"msg_{r.hex}"
                for r in c.execute(
                    text("SELECT id FROM webhook_deliveries WHERE endpoint_id = :e"), {"e": endpoint_id}
                ).scalars()
            }
        start = time.monotonic()
        w = subprocess.Popen(cmd, cwd=ROOT, env=env)
        kills, replays, replayed = 0, 0, 0
        # Kill while deliveries are in flight: once 15 % and once 50 % of the
        # events have been acknowledged.
        kill_at = [events * 0.15, events * 0.5]
        while True:
            time.sleep(1)
            now = time.monotonic()
            done = count(
                owner,
                "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e AND status = 'succeeded'",
                e=endpoint_id,
            )
            if kill_at and done >= kill_at[0]:
                kill_at.pop(0)
                w.send_signal(signal.SIGKILL)
                w.wait()
                kills += 1
                doing = count(
                    owner,
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver' AND status = 'doing'",
                )
                print(
                    f"  SIGKILL #{kills} at {now - start:.1f} s, {done} delivered ({doing} jobs left running); "
                    "restarting the worker",
                    flush=True,
                )
                w = subprocess.Popen(cmd, cwd=ROOT, env=env)
            with owner.begin() as c:  # time travel: retries waiting for later are due now
                c.execute(
                    text(
                        "UPDATE webhook_deliveries SET next_attempt_at = now()"
                        " WHERE endpoint_id = :e AND next_attempt_at > now()"
                    ),
                    {"e": endpoint_id},
                )
                c.execute(
                    text(
                        "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo' AND scheduled_at > now()"
                    )
                )
            pending = count(
                owner,
                "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e AND status <> 'succeeded'",
                e=endpoint_id,
            )
            waiting = count(
                owner,
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver' AND status IN ('todo', 'doing')",
            )
            if pending and not waiting:
                # Every round ended: replay what exhausted its eight attempts (the product's recovery).
                from app.extensions import db
                from app.scoping import tenant_context
                from app.webhooks import services

                with app.app_context(), tenant_context(org_id):
                    e = services.find_endpoint(endpoint_id)
                    replayed += services.replay_failed(e, e.created_at)
                    db.session.commit()
                replays += 1
            if not pending:
                break
            if now - start > 1800:
                print("  gave up after 30 minutes")
                break
        took = time.monotonic() - start
        w.send_signal(signal.SIGTERM)
        w.wait(60)
        time.sleep(0.5)
        acked: dict[str, int] = {}
        attempts = 0
        for line in Path(log_file).read_text().splitlines():
            wid, status = line.split()
            attempts += 1
            if status == "200":
                acked[wid] = acked.get(wid, 0) + 1
        lost = ids - set(acked)
        dups = sum(1 for v in acked.values() if v > 1)
        print(
            f"drill: {events} events, {attempts} attempts received in {took:.0f} s, worker SIGKILLed {kills} times; "
            f"{len(set(acked) & ids)} acknowledged, lost {len(lost)}, duplicates {dups} "
            f"(replays {replays}, {replayed} deliveries replayed after 8 failed attempts)"
        )
    finally:
        recv.terminate()
        reset(owner, org_id)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["throughput", "enqueue", "drill"])
    ap.add_argument("--deliveries", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=4, help="jobs one worker runs at once (JOBS_CONCURRENCY)")
    ap.add_argument("--repeat", type=int, default=1000)
    ap.add_argument("--events", type=int, default=10000)
    args = ap.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    app, owner, org_id = setup(url)
    if args.only in (None, "enqueue"):
        enqueue_cost(app, owner, org_id, args.repeat)
    if args.only in (None, "throughput"):
        throughput(app, owner, org_id, args.deliveries, args.concurrency)
    if args.only in (None, "drill"):
        drill(app, owner, org_id, args.events, url, args.concurrency)
    owner.dispose()


if __name__ == "__main__":
    main()

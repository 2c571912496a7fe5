"""Shared fixtures: a real PostgreSQL (embedded or TEST_DATABASE_URL), a real
SMTP server (aiosmtpd), the app, clients per host, and the two-organization
world every tenant test uses."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy

import pytest

# The suite runs in the test environment (production is the default); set
# before the app package reads the environment.
os.environ.setdefault("TENANTRY_ENV", "test")


def _redis_database_per_worker() -> None:
    """Give each xdist worker a Redis database of its own.

    Every test resets the rate limiter, which empties its Redis database:
    two workers sharing one would wipe each other's counts mid-test. The
    configured database is the first; worker N takes the one N below it.
    """
    url, worker = os.environ.get("REDIS_URL"), os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    db = (base - int(worker[2:] or 0)) % 16
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{db}"))


_redis_database_per_worker()

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from tests import db as testdb  # noqa: E402

APEX = "tenantry.localhost"
# A well-formed id that names no row. Fixed, not uuid4(): a parameter is part
# of a test's id, and every xdist worker must collect the same ids.
UNKNOWN_ID = "7b0c5f0e-2f4a-4c1e-9a55-3d8e6b1f0a42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- SMTP
class Mailbox:
    """Messages received by the suite's SMTP server.

    Mail leaves as jobs: every read first runs the jobs that are due
    (``before_read``, set by the ``app`` fixture to ``run_jobs``), so a test
    reads the mailbox as it stands once the queue has been worked off.
    """

    def __init__(self):
        self._messages: list = []
        self.lock = threading.Lock()
        self.before_read = None
        self.server = None  # SmtpServer: stop() and start() the suite's server

    def _settle(self) -> None:
        if self.before_read is not None:
            self.before_read()

    def receive(self, msg) -> None:
        with self.lock:
            self._messages.append(msg)

    @property
    def messages(self) -> list:
        self._settle()
        with self.lock:
            return list(self._messages)

    def clear(self):
        with self.lock:
            self._messages.clear()

    def to(self, address: str) -> list:
        self._settle()
        with self.lock:
            return [m for m in self._messages if address.lower() in (m["To"] or "").lower()]

    def last(self, address: str | None = None, wait: float = 5.0):
        """The newest message (to ``address``), once the due jobs have run,
        waiting up to ``wait`` seconds (a live server's jobs may still be
        being enqueued)."""
        deadline = time.monotonic() + wait
        while True:
            self._settle()
            with self.lock:
                msgs = [m for m in self._messages if not address or address.lower() in (m["To"] or "").lower()]
            if msgs or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert msgs, f"no mail received{' for ' + address if address else ''}"
        return msgs[-1]

    @staticmethod
    def text(msg) -> str:
        body = msg.get_body(preferencelist=("plain",))
        return body.get_content() if body else ""


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.box.receive(msg)
        return "250 OK"


class SmtpServer:
    """The suite's SMTP server, which a test may stop and start again (same port)."""

    def __init__(self, box: Mailbox, port: int):
        self.box, self.port, self.controller = box, port, None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        if self.controller is None:
            self.controller = Controller(_Handler(self.box), hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on loopback for the whole run (``box.server`` stops and starts it)."""
    box = Mailbox()
    port = free_port()
    box.server = SmtpServer(box, port)
    box.server.start()
    yield box, f"smtp://127.0.0.1:{port}"
    box.server.stop()


@pytest.fixture
def mailbox(smtp_server):
    box, _ = smtp_server
    box.clear()
    yield box
    box.server.start()  # running again for the next test, whatever this one did


# --------------------------------------------------------------------------- app
@pytest.fixture(scope="session")
def database_url(worker_id="master"):
    return testdb.owner_url(os.environ.get("PYTEST_XDIST_WORKER", ""))


@pytest.fixture(scope="session")
def app(database_url, smtp_server, tmp_path_factory):
    from flask_migrate import upgrade

    from app import create_app

    _, mail_url = smtp_server
    instance = tmp_path_factory.mktemp("instance")
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "TENANTRY_SERVER_NAME": APEX,
            "MAIL_URL": mail_url,
            "INSTANCE_DIR": str(instance),
            "ENV_NAME": "test",
            "TESTING": True,
            # Cheap hashing keeps the suite fast; production cost is tested separately.
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
            "RATELIMIT_ENABLED": True,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 5},
            # No test asks the public DNS: a port nobody answers on (tests of
            # domains point it at their own DNS server, tests/domains/dns_server.py).
            "DNS_RESOLVER": "127.0.0.1:9",
            "DNS_TIMEOUT_SECONDS": 0.2,
        }
    )

    # create_app derived the runtime URL from the overridden owner URL.
    assert app.config["SQLALCHEMY_DATABASE_URI"] != database_url
    with app.app_context():
        upgrade(revision="heads")
    box, _ = smtp_server
    box.before_read = lambda: run_due_jobs(app)
    return app


def due_jobs(app) -> int:
    """Jobs waiting to run now (read as the owner)."""
    engine = _owner_engines.get(app.config["DATABASE_URL"])
    if engine is None:
        engine = _owner_engines[app.config["DATABASE_URL"]] = create_engine(
            app.config["DATABASE_URL"], poolclass=NullPool
        )
    with engine.connect() as c:
        return c.exec_driver_sql(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"
        ).scalar()


_owner_engines: dict = {}


def _drain_into(app, errors: list) -> None:
    from app.jobs import worker

    try:
        worker.drain(app)
    except BaseException as e:  # surfaced in the test's thread
        errors.append(e)


def run_due_jobs(app, rounds: int = 10) -> None:
    """Work off the queue, deterministically: a worker runs in this process
    (on its own thread, away from any event loop of the test) until no job is
    due; jobs enqueued by those jobs run too. A retry scheduled for later
    waits (``advance_jobs`` brings it forward)."""
    for _ in range(rounds):
        if not due_jobs(app):
            return
        errors: list = []
        t = threading.Thread(target=_drain_into, args=(app, errors), name="test-jobs")
        t.start()
        t.join(120)
        if errors:
            raise errors[0]
    raise AssertionError("jobs kept coming: the queue did not settle")


@pytest.fixture
def run_jobs(app):
    """``run_jobs()`` runs every job that is due, until none is left."""
    return lambda: run_due_jobs(app)


@pytest.fixture
def advance_jobs(app, owner_engine):
    """``advance_jobs()`` makes every job waiting for a later retry due now,
    then runs the queue (time travel for backoff, instead of sleeping)."""

    def advance():
        with owner_engine.begin() as c:
            c.exec_driver_sql(
                "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo' AND scheduled_at > now()"
            )
        run_due_jobs(app)

    return advance


@pytest.fixture(scope="session")
def owner_engine(app):
    """A connection as the table owner: for inspecting and tampering, never for product code."""
    engine = create_engine(app.config["DATABASE_URL"], poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _clean_db(request, app, owner_engine):
    """Every test starts from empty tables (plans kept) and a fresh rate limiter."""
    from app.extensions import db, limiter

    testdb.truncate_all(owner_engine)
    try:
        limiter.reset()
    except Exception:  # storage without reset support
        pass
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    """A browser-like client on the apex."""
    return app.test_client()


def host(slug: str | None = None) -> str:
    return f"{slug}.{APEX}" if slug else APEX


def url(slug: str | None, path: str) -> str:
    return f"http://{host(slug)}{path}"


# --------------------------------------------------------------------------- world
@dataclass
class World:
    acme: object
    globex: object
    users: dict
    projects: dict


@pytest.fixture
def world(app):
    """Two organizations: ``acme`` with one user per system role, ``globex``
    with an owner and a member; a consultant in both; three projects each."""
    from tests import factories as f

    acme = f.make_org("acme", "Acme Corporation", plan="pro")
    globex = f.make_org("globex", "Globex", plan="free")
    users = {}
    for role in ("owner", "admin", "manager", "member", "viewer"):
        users[role] = f.make_user(f"{role}@acme.test", f"Acme {role.title()}")
        f.add_member(acme, users[role], role)
    users["globex_owner"] = f.make_user("owner@globex.test", "Globex Owner")
    f.add_member(globex, users["globex_owner"], "owner")
    users["globex_member"] = f.make_user("member@globex.test", "Globex Member")
    f.add_member(globex, users["globex_member"], "member")
    users["consultant"] = f.make_user("consultant@example.test", "Casey Consultant")
    f.add_member(acme, users["consultant"], "member")
    f.add_member(globex, users["consultant"], "admin")
    users["outsider"] = f.make_user("outsider@example.test", "Otto Outsider")
    projects = {
        "acme": [f.make_project(acme, f"Acme Project {i}", owner=users["owner"]) for i in range(3)],
        "globex": [f.make_project(globex, f"Globex Secret {i}", owner=users["globex_owner"]) for i in range(3)],
    }
    return World(acme, globex, users, projects)


def sign_in(app, user, slug: str | None = None):
    """A test client signed in as ``user`` on ``slug``'s host (or the apex).

    Creates a real server-side session row and binds the host-only cookie for
    that host, exactly as the log-in + hand-off would (a fresh log-in: no
    step-up asked for the next 10 minutes).
    """
    from app.auth.models import UserSession
    from app.extensions import db
    from app.util import utcnow

    client = app.test_client()
    # A fresh log-in: it just proved who the person is (app.auth.stepup);
    # step-up tests age it themselves.
    rec = UserSession(user_id=user.id, ip="127.0.0.1", user_agent="pytest", authenticated_at=utcnow())
    db.session.add(rec)
    db.session.commit()
    bind_cookie(client, rec.id, slug)
    client.user_session_id = rec.id
    return client


def bind_cookie(client, session_id, slug: str | None = None) -> None:
    """Give ``client`` a session cookie for ``slug``'s host (or the apex) pointing
    at ``session_id``, bound to that host as the product binds it: the one
    place tests write a session cookie."""
    from app.auth import sessions

    with client.session_transaction(base_url=f"http://{host(slug)}") as sess:
        sessions.bind_cookie(session_id, sess, host(slug))


@pytest.fixture
def login(app):
    """``login(user, slug=None)`` → a client signed in on that host."""
    return lambda user, slug=None: sign_in(app, user, slug)


def csrf_token(client, slug: str | None = None) -> str:
    """The CSRF token of ``client``'s session on a host (renders a page to get one)."""
    from flask import session as flask_session
    from flask_wtf.csrf import generate_csrf

    app = client.application
    with client.session_transaction(base_url=f"http://{host(slug)}") as sess:
        data = dict(sess)
    with app.test_request_context(base_url=f"http://{host(slug)}"):
        from flask import g

        g.pop("csrf_token", None)  # the test's shared app context may cache another session's token
        flask_session.update(data)
        token = generate_csrf()
        raw = flask_session.get("csrf_token")
    with client.session_transaction(base_url=f"http://{host(slug)}") as sess:
        sess["csrf_token"] = raw
    return token


def follow(client, response, max_hops: int = 10):
    """Follow redirects across our hosts, as a browser does.

    Werkzeug's ``follow_redirects`` refuses a redirect from an organization's
    host back to the apex (it only follows into subdomains), and the sign-in
    hand-off goes org -> apex -> org.
    """
    from urllib.parse import urljoin

    for _ in range(max_hops):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        response = client.get(urljoin(response.request.url, response.headers["Location"]))
    raise AssertionError(f"more than {max_hops} redirects")


class QueryCounter:
    """SQL statements sent by the app's (runtime) engine while active."""

    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        return "\n".join(f"{i + 1}. {s.splitlines()[0][:160]}" for i, s in enumerate(self.statements))


@pytest.fixture
def count_queries(app):
    """``with count_queries() as q: ...`` → ``q.statements`` sent on the runtime engine."""
    import contextlib

    from sqlalchemy import event

    from app.extensions import db

    @contextlib.contextmanager
    def counting():
        counter = QueryCounter()
        engine = db.engine
        event.listen(engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", counter)

    return counting

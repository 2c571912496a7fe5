"""PostgreSQL down: every answer is a 503 with ``Retry-After`` in the app's
look (or a fragment, or problem+json), never the server's bare 500, and the
same app recovers by itself when the database is back.

These tests run their own embedded PostgreSQL in a temporary directory and
stop it mid-run; the suite's shared server is never touched. The app is
built as in production in the ways that matter here: no pool pre-ping (a
stale pooled connection reaches a request), and a fresh application context
per request (so the session is torn down after every answer).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests import factories as f
from tests.conftest import sign_in, url
from tests.ops.conftest import make_app


@dataclass
class Postgres:
    """A handle on this module's embedded PostgreSQL: stop it, start it again."""

    server: object
    pgdata: Path
    socket_dir: str

    def _pg_ctl(self, *args: str, check: bool = True) -> int:
        import pgserver

        pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        # pgserver runs the server as its own system user when we are root.
        return subprocess.run(
            [str(pg_ctl), "-D", str(self.pgdata), "-w", *args],
            check=check,
            capture_output=True,
            timeout=30,
            user=self.server.system_user,
        ).returncode

    def running(self) -> bool:
        return self._pg_ctl("status", check=False) == 0

    def stop(self) -> None:
        # Fast shutdown: what an operator's restart or a fail-over does to
        # open connections (they get "terminating connection due to
        # administrator command").
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        # Same socket as before, so the app's URL still points at it.
        self._pg_ctl("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")


@pytest.fixture(autouse=True)
def _clean_db():
    """These tests use their own server; the suite's database is not theirs to clean."""
    yield


@pytest.fixture(scope="module")
def postgres():
    import tempfile
    import warnings

    import pgserver

    from app.database import embedded_owner_url

    # Not under pytest's tmp_path: as root, pgserver runs PostgreSQL as its
    # own user, and any pytest run starting meanwhile resets the shared
    # /tmp/pytest-of-<user> to mode 0700, locking that user out.
    pgdata = Path(tempfile.mkdtemp(prefix="tenantry-pgdown-")) / "pgdata"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # platformdirs without XDG_RUNTIME_DIR
        server = pgserver.get_server(str(pgdata), cleanup_mode="delete")
    owner = embedded_owner_url(pgdata)
    pg = Postgres(server, pgdata, make_url(owner).query["host"])
    yield pg, owner
    server.cleanup()
    shutil.rmtree(pgdata.parent, ignore_errors=True)


@dataclass
class Stage:
    app: object
    member_id: object
    postgres: Postgres


@pytest.fixture(scope="module")
def stage(postgres, tmp_path_factory):
    """An app on this module's PostgreSQL, migrated, with a member of ``acme``."""
    from flask import g
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db
    from app.web.access import public

    pg, owner = postgres
    app = make_app(
        owner, tmp_path_factory.mktemp("instance"), SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False, "pool_size": 5}
    )

    # Views that lose the database half-way, for the error and teardown paths.
    @public
    def lose_database_then_fail():
        assert g.org is not None and g.membership is not None  # the layout would show both
        pg.stop()
        raise RuntimeError("a bug, while the database is away")

    @public
    def lose_database_then_answer():
        db.session.execute(text("SELECT 1"))  # a transaction is open on the connection
        pg.stop()
        return "answered"

    app.add_url_rule("/_test/lose-database-then-fail", view_func=lose_database_then_fail)
    app.add_url_rule("/_test/lose-database-then-answer", view_func=lose_database_then_answer)
    with app.app_context():
        upgrade(revision="heads")
        acme = f.make_org("acme", "Acme Corporation")
        member = f.make_user("member@acme.test", "Acme Member")
        f.add_member(acme, member, "member")
        f.make_project(acme, "Rocket", owner=member)
        member_id = member.id
    yield Stage(app, member_id, pg)
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def _sign_in(stage, slug):
    from app.auth.models import User
    from app.extensions import db

    with stage.app.app_context():
        return sign_in(stage.app, db.session.get(User, stage.member_id), slug)


@pytest.fixture(autouse=True)
def _database_back(stage):
    """Whatever a test did, the next one starts with PostgreSQL running and
    an empty pool (a connection left stale would fail the next test's set-up)."""
    from app.extensions import db

    yield
    if not stage.postgres.running():
        stage.postgres.start()
    with stage.app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def member_client(stage):
    """The member, signed in on acme's host. No application context stays
    pushed: each request gets its own and tears it down, as in production."""
    client = _sign_in(stage, "acme")
    assert client.get(url("acme", "/projects/")).status_code == 200  # a pooled connection now exists
    return client


@pytest.fixture
def error_log(caplog):
    """Records from every logger, the app's own included (it does not propagate)."""
    tenantry = logging.getLogger("tenantry")
    tenantry.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    tenantry.removeHandler(caplog.handler)


def _warnings_and_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_no_leak(body: bytes) -> None:
    for word in (b"Traceback", b"OperationalError", b"psycopg", b"sqlalchemy", b"Internal Server Error"):
        assert word not in body, word


def assert_security_headers(r, request_id: str) -> None:
    assert r.headers["X-Request-ID"] == request_id
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"


def assert_static_page(r, status: int) -> None:
    body = r.data.decode()
    assert r.mimetype == "text/html"
    assert body.startswith("<!doctype html>") and '<link rel="stylesheet" href="/static/css/app.css">' in body
    assert 'class="topbar"' in body and f'id="error-{status}"' in body
    # Nothing that needs the database: no user menu, no organization.
    assert "Acme" not in body and "Log in" not in body
    assert_no_leak(r.data)


def test_database_down_answers_503_static_page_fragment_and_problem_json_then_recovers_without_restart(
    stage, member_client, error_log
):
    stage.postgres.stop()
    page = member_client.get(url("acme", "/projects/"), headers={"X-Request-ID": "outage-page-0001"})
    fragment = member_client.get(
        url("acme", "/projects/?q=r"), headers={"HX-Request": "true", "X-Request-ID": "outage-htmx-0002"}
    )
    problem = member_client.get(
        url("acme", "/projects/"), headers={"Accept": "application/json", "X-Request-ID": "outage-json-0003"}
    )
    api = member_client.get(url("acme", "/api/v1/projects"), headers={"X-Request-ID": "outage-api-0004"})
    stage.postgres.start()

    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert_static_page(page, 503)
    assert "Temporarily unavailable" in page.data.decode() and "outage-page-0001" in page.data.decode()
    assert 'href="/projects/"' in page.data.decode()  # "Try again"
    assert page.headers["Cache-Control"] == "no-store"
    assert_security_headers(page, "outage-page-0001")

    assert fragment.status_code == 503 and fragment.headers["Retry-After"] == "5"
    assert fragment.data.strip().startswith(b'<div class="error-page__body" id="error-503">')
    assert b"<html" not in fragment.data and "HX-Request" in fragment.headers["Vary"]
    assert_no_leak(fragment.data)
    assert_security_headers(fragment, "outage-htmx-0002")

    for r, rid in ((problem, "outage-json-0003"), (api, "outage-api-0004")):
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.mimetype == "application/problem+json"
        body = r.get_json(force=True)
        assert body["status"] == 503 and body["type"] == "about:blank"
        assert body["title"] == "Service Unavailable" and body["detail"]
        assert body["request_id"] == rid
        assert_no_leak(r.data)
        assert_security_headers(r, rid)

    # One warning line per failed request, without a traceback; no errors.
    noisy = _warnings_and_errors(error_log)
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in noisy), [r.getMessage() for r in noisy]
    unavailable = [r for r in noisy if r.getMessage().startswith("database unavailable")]
    assert len(unavailable) == 4
    assert all("\n" not in r.getMessage() for r in unavailable)

    # Back: the same app and client, no restart of anything but PostgreSQL.
    again = member_client.get(url("acme", "/projects/"))
    assert again.status_code == 200 and b"Rocket" in again.data


def test_stale_pooled_connection_after_a_restart_costs_at_most_one_503_and_the_pool_recovers(stage, member_client):
    # A restart with no request in between: the pooled connection is stale.
    stage.postgres.stop()
    stage.postgres.start()
    statuses = [member_client.get(url("acme", "/projects/")).status_code for _ in range(3)]
    assert statuses[0] in (200, 503) and statuses[1:] == [200, 200], statuses


def test_readyz_flips_with_the_database(stage):
    client = stage.app.test_client()
    assert client.get(url(None, "/readyz")).status_code == 200
    stage.postgres.stop()
    down = client.get(url(None, "/readyz"))
    stage.postgres.start()
    assert down.status_code == 503 and down.get_json() == {"status": "unavailable", "database": "down"}
    assert client.get(url(None, "/readyz")).status_code == 200


def test_404_and_400_pages_render_without_the_database(stage, member_client):
    """The layout reads the signed-in user lazily; with the database away a
    404 or 400 decided before any query (the input guard's) keeps its
    status, in the static page."""
    stage.postgres.stop()
    not_found = member_client.get(url("acme", "/projects/%00"), headers={"X-Request-ID": "notfound-0001"})
    bad = member_client.get(url("acme", "/projects/?q=%00"), headers={"X-Request-ID": "badinput-0001"})
    assert not_found.status_code == 404
    assert_static_page(not_found, 404)
    assert "Page not found" in not_found.data.decode()
    assert_security_headers(not_found, "notfound-0001")
    assert bad.status_code == 400
    assert_static_page(bad, 400)
    assert "Bad request" in bad.data.decode()
    assert_security_headers(bad, "badinput-0001")


def test_500_page_renders_without_the_database(stage, member_client, error_log):
    """A bug while the database is away: the member's layout (organization
    name, user menu) cannot be read again after the rollback, so the 500 is
    answered with the static page, not with a second failure."""
    r = member_client.get(url("acme", "/_test/lose-database-then-fail"), headers={"X-Request-ID": "bug-00000001"})
    stage.postgres.start()
    assert r.status_code == 500
    assert_static_page(r, 500)
    assert "Something went wrong" in r.data.decode()
    assert_security_headers(r, "bug-00000001")
    # The bug itself is logged with its traceback, once.
    assert [r.getMessage() for r in error_log.records if r.levelno >= logging.ERROR] == ["unhandled error"]
    assert member_client.get(url("acme", "/projects/")).status_code == 200


def test_database_lost_before_teardown_does_not_replace_the_answer(stage, member_client):
    r = member_client.get(url("acme", "/_test/lose-database-then-answer"), headers={"X-Request-ID": "teardown-0001"})
    stage.postgres.start()
    assert r.status_code == 200 and r.data == b"answered"
    assert_security_headers(r, "teardown-0001")
    assert member_client.get(url("acme", "/projects/")).status_code == 200

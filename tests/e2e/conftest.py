"""Browser harness: the real app on a free port, driven by Debian's Chromium.

* ``live_server`` (session): the app in a background thread (werkzeug,
  threaded), on the suite's test database and SMTP server. The apex is
  ``http://localhost:<port>``; organizations are ``http://<slug>.localhost:<port>``
  (Chromium resolves ``*.localhost`` to loopback, so no DNS set-up).
* ``browser`` (session): headless Chromium from ``/usr/bin/chromium`` through
  Playwright's ``executable_path``. Playwright never downloads a browser here.
* ``page``: a fresh context per test (cookies start empty), 1280×860. A test
  fails when the page hit a Content-Security-Policy violation or a script error.
* ``shot(page, name)``: saves ``tests/e2e/screenshots/<test>/<NN>-<name>.png``
  (that folder is ignored by git).

Without ``/usr/bin/chromium`` every test here is skipped with the install hint.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.helpers import check_a11y

CHROMIUM = "/usr/bin/chromium"
SKIP_REASON = "Chromium not installed: apt-get install chromium (see README)"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
HERE = Path(__file__).resolve().parent

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is marked ``e2e``; skipped when Chromium is missing."""
    have_chromium = os.path.exists(CHROMIUM)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if not have_chromium:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@dataclass
class LiveServer:
    app: object
    port: int

    @property
    def url(self) -> str:
        """The apex, e.g. ``http://localhost:53121``."""
        return f"http://localhost:{self.port}"

    def org_url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.localhost:{self.port}{path}"


@pytest.fixture(scope="session")
def live_server(app, database_url, smtp_server, tmp_path_factory):
    """The app served for real on a free port, same database and SMTP server as ``app``."""
    from werkzeug.serving import make_server

    from app import create_app

    _, mail_url = smtp_server
    port = free_port()
    served = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "TENANTRY_SERVER_NAME": f"localhost:{port}",
            "MAIL_URL": mail_url,
            "INSTANCE_DIR": str(tmp_path_factory.mktemp("live-instance")),
            "ENV_NAME": "test",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
            "RATELIMIT_ENABLED": True,  # the limiter is shared by every app in the process
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 5},
        }
    )
    server = make_server("127.0.0.1", port, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(served, port)
    server.shutdown()
    thread.join(timeout=10)
    from app.extensions import db

    with served.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _jobs_run_with_the_served_app(request, smtp_server):
    """In a browser test the served app's jobs run with it (its apex builds
    their links), whenever the test reads the mailbox."""
    if "live_server" not in request.fixturenames:
        yield
        return
    from tests.conftest import run_due_jobs

    live = request.getfixturevalue("live_server")
    box, _ = smtp_server
    saved, box.before_read = box.before_read, (lambda: run_due_jobs(live.app))
    yield
    box.before_read = saved


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's), launched once per run."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture
def page(browser, live_server, request):
    """A new browser context (no cookies) and page on the apex; fails the test
    on a CSP violation or an uncaught script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    failed_before = request.session.testsfailed
    problems: list[str] = []
    pg.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and ("Content Security Policy" in m.text or "Refused to" in m.text)
            else None
        ),
    )
    pg.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    yield pg
    # The state the test ended in is checked too (unless it already failed).
    passed = request.session.testsfailed == failed_before
    if passed and not problems and not pg.is_closed() and pg.url.startswith("http"):
        check_a11y(pg, f"end of test ({pg.url})")
    context.close()
    assert not problems, f"browser reported: {problems}"


@pytest.fixture
def shot(request):
    """``shot(page, name)`` saves the next numbered screenshot of this test."""
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = SCREENSHOTS / test_name
    if folder.exists():
        for old in folder.glob("*.png"):
            old.unlink()
    counter = {"n": 0}

    def take(pg, name: str) -> Path:
        counter["n"] += 1
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{counter['n']:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}.png"
        # caret="initial": Playwright otherwise leaves style="" on inputs,
        # which htmx copies into swapped content and the CSP then reports.
        pg.screenshot(path=str(path), full_page=True, caret="initial")
        # Every step a test records is also checked by axe-core.
        check_a11y(pg, f"{test_name} step {counter['n']} ({name}, {pg.url})")
        return path

    return take

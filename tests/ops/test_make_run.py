"""What ``make run`` shows and leaves behind: each request logged once, the
demo loader's one summary line, and the embedded PostgreSQL stopped at exit
(issue 12, "rough edges")."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

from app.database import stop_embedded
from app.demo import summary
from tests.conftest import free_port


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records():
    """Records reaching the ``werkzeug`` and ``tenantry`` loggers during the test."""
    handler = _Records()
    loggers = [logging.getLogger("werkzeug"), logging.getLogger("tenantry")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler.records
    for lg in loggers:
        lg.removeHandler(handler)


def test_each_request_is_logged_once_by_the_development_server(app, records):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/app.css", timeout=10) as r:
            assert r.status == 200
    finally:
        server.shutdown()
        thread.join(5)
    lines = [r.getMessage() for r in records if "/readyz" in r.getMessage()]
    assert lines == ["GET /readyz 200"], lines  # ours, not werkzeug's "127.0.0.1 - - [...]" as well
    assert not [r for r in records if r.name == "werkzeug" and "HTTP/1.1" in r.getMessage()]


def test_the_development_server_still_says_where_it_runs(app, records):
    from werkzeug._internal import _log  # how the development server logs

    _log("info", " * Running on %s", "http://127.0.0.1:5000")
    assert [r.getMessage() for r in records] == [" * Running on http://127.0.0.1:5000"]


def test_demo_summary_is_one_line_and_counts_are_pluralised():
    assert summary({"users": 9, "roles": 1, "projects": 0, "audit events": 12}) == (
        "Demo data: 9 users, 1 role and 12 audit events created."
    )
    assert summary({"roles": 2}) == "Demo data: 2 roles created."
    assert summary({"webhook endpoints": 1, "API keys": 1}) == "Demo data: 1 webhook endpoint and 1 API key created."
    assert summary({"users": 0, "roles": 0}) == "Demo data: already loaded, nothing created."


def test_demo_command_prints_one_summary_line_and_no_info_lines(app, records):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [result.output.strip()]
    assert result.output.startswith("Demo data: ") and " 1 role" in result.output and "1 roles" not in result.output
    assert [r for r in records if r.levelno < logging.WARNING] == []
    again = app.test_cli_runner().invoke(args=["demo"])
    assert again.output.strip() == "Demo data: already loaded, nothing created."


def _running(pgdata) -> bool:
    return (pgdata / "postmaster.pid").exists()


@pytest.fixture
def embedded(tmp_path):
    """A real embedded PostgreSQL (pgserver) in a fresh data directory."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pgserver

    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    server = pgserver.get_server(str(pgdata))
    assert _running(pgdata)
    yield pgdata
    if _running(pgdata):
        server.cleanup()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_embedded_postgres_is_stopped_even_when_a_user_of_it_died_uncleanly(embedded):
    import json

    handles = embedded / ".handle_pids.json"
    # A process that used the server and was killed (no exit handlers ran):
    # pgserver alone would never stop the server again.
    handles.write_text(json.dumps([*json.loads(handles.read_text()), _dead_pid()]))
    assert stop_embedded(embedded) == "stopped"
    assert not _running(embedded)
    assert stop_embedded(embedded) == "not running"


def test_embedded_postgres_is_left_running_while_another_live_process_uses_it(embedded):
    import json

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        handles = embedded / ".handle_pids.json"
        handles.write_text(json.dumps([*json.loads(handles.read_text()), other.pid]))
        assert stop_embedded(embedded) == "in use"
        assert _running(embedded)
    finally:
        other.kill()
        other.wait()
    assert stop_embedded(embedded) == "stopped"
    assert not _running(embedded)

"""schemathesis against the running app with a real key: the document is
generated from the code, and the app must answer every generated request
without a 5xx and as the document says (status codes, schemas, content
types, headers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.permissions import ALL
from tests.e2e.conftest import live_server  # noqa: F401  (fixture: the app served on a free port)

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


def _cli() -> list[str]:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not os.path.exists(exe):
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return [exe]


@pytest.fixture
def big_budget(live_server, monkeypatch, owner_engine):  # noqa: F811
    """Enough budget (key and plan) for every generated call: 429 is
    documented, but a throttled run would check little else."""
    monkeypatch.setitem(live_server.app.config, "API_KEY_REQUESTS_PER_MINUTE", 1_000_000)
    with owner_engine.begin() as c:
        saved = c.exec_driver_sql("SELECT key, api_requests_per_minute FROM plans").all()
        c.exec_driver_sql("UPDATE plans SET api_requests_per_minute = 1000000")
    yield
    with owner_engine.begin() as c:
        for k, v in saved:
            c.exec_driver_sql("UPDATE plans SET api_requests_per_minute = %s WHERE key = %s", (v, k))


def test_the_running_api_conforms_to_its_openapi_document(live_server, world, make_key, tmp_path, big_budget):  # noqa: F811
    from app.api import openapi

    _, key = make_key(world.acme, world.users["owner"], sorted(ALL))
    spec = tmp_path / "openapi.json"
    with live_server.app.app_context():
        spec.write_text(json.dumps(openapi.document()))
    base = f"http://127.0.0.1:{live_server.port}"
    cmd = [
        *_cli(),
        "run",
        str(spec),
        "--url",
        base,
        "-H",
        f"Host: acme.localhost:{live_server.port}",
        "-H",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"),
        "--request-timeout",
        "20",
        "--generation-deterministic",
        "--no-color",
    ]
    # In the test's own folder: the CLI keeps a cache (.schemathesis/) in its working directory.
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    out = result.stdout + result.stderr
    (tmp_path / "schemathesis.log").write_text(out)
    assert result.returncode == 0, out[-8000:]

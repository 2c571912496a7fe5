"""Health probes, request ids, security headers and cookie attributes."""

from __future__ import annotations

import re
import uuid

from app import crypto
from tests.conftest import APEX, url
from tests.ops.conftest import make_app


def test_healthz_answers_without_the_database(client, app_without_database):
    assert client.get(url(None, "/healthz")).get_json() == {"status": "ok"}
    r = app_without_database.test_client().get(url(None, "/healthz"))
    assert r.status_code == 200


def test_readyz_is_ok_when_the_database_answers(client):
    r = client.get(url(None, "/readyz"))
    assert r.status_code == 200 and r.get_json()["database"] == "up"


def test_readyz_is_503_when_the_database_does_not_answer(app_without_database):
    r = app_without_database.test_client().get(url(None, "/readyz"))
    assert r.status_code == 503 and r.get_json() == {"status": "unavailable", "database": "down"}


def test_probes_answer_on_any_host(client):
    assert client.get("http://unknown.example/healthz").status_code == 200
    assert client.get(url("no-such-org", "/readyz")).status_code == 200


def test_request_id_is_echoed_or_generated(client):
    given = "req-" + uuid.uuid4().hex
    assert client.get(url(None, "/healthz"), headers={"X-Request-ID": given}).headers["X-Request-ID"] == given
    generated = client.get(url(None, "/healthz")).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # a hostile value is replaced, not reflected
    bad = client.get(url(None, "/healthz"), headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert bad.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])


def test_request_id_is_on_error_pages_too(client):
    assert (
        client.get(url(None, "/nope"), headers={"X-Request-ID": "trace-12345678"}).headers["X-Request-ID"]
        == "trace-12345678"
    )


def test_csp_allows_no_inline_script(client):
    r = client.get(url(None, "/login"))
    csp = r.headers["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == ["'none'"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert b"<script>" not in r.data and b' style="' not in r.data


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("tenantry_session=")]
    assert cookies, response.headers
    return cookies[0]


def test_session_cookie_is_host_only_httponly_lax(client):
    cookie = _session_cookie(client.get(url(None, "/login")))
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs
    assert not any(a.startswith("domain=") for a in attrs)
    assert "secure" not in attrs  # development/test: plain http on localhost


def test_session_cookie_is_secure_outside_development(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("TENANTRY_ENV", "production")
    prod = make_app(database_url, tmp_path, MAIL_URL="smtp://127.0.0.1:1", ENCRYPTION_KEYS=[crypto.generate_key()])
    assert prod.config["DEVELOPMENT"] is False and prod.config["ENV_NAME"] == "production"
    r = prod.test_client().get(f"https://{APEX}/login")
    assert r.status_code == 200
    attrs = [a.strip().lower() for a in _session_cookie(r).split(";")]
    assert "secure" in attrs and "httponly" in attrs and "samesite=lax" in attrs
    assert not any(a.startswith("domain=") for a in attrs)
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")

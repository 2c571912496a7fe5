"""Operations: health probes, request ids, structured logs, security headers, error pages."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
import uuid

from flask import Blueprint, g, jsonify, request
from sqlalchemy import text

from app.extensions import db
from app.ops import errors
from app.web import hosts
from app.web.access import public

bp = Blueprint("ops", __name__)
log = logging.getLogger("tenantry.request")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action {form_action}; "
    "base-uri 'none'; object-src 'none'"
)


@functools.lru_cache(maxsize=64)
def csp_for(host_kind: str, scheme: str, apex: str) -> str:
    """The Content-Security-Policy for a page on a host of ``host_kind``.

    ``form-action`` names our own hosts only. Browsers (Chromium, WebKit) also
    hold the redirects that follow a form submission to it, and our forms post
    to their own host but some are answered across hosts:
    * on the apex, log-in and "create organization" continue to an
      organization's subdomain through the hand-off (apex and org hosts in
      turn), so the apex allows itself and every ``*.<apex>``;
      a custom domain is reached through a page, not a redirect
      (``app.auth.views.go_to``);
    * on an organization's host (subdomain or custom domain), log-out, deleting
      the organization and an expired session answer with the apex, so it
      allows itself and the apex.
    A few strings in all, built once each: no database, nothing per request.
    """
    if host_kind == "apex":
        form_action = f"'self' {scheme}://*.{apex}"
    else:
        form_action = f"'self' {scheme}://{apex}"
    return CSP_TEMPLATE.format(form_action=form_action)


@bp.get("/healthz")
@public(outsiders_on_org_host=True, suspended_ok=True)
def healthz():
    """Process is up. Touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
@public(outsiders_on_org_host=True, suspended_ok=True)
def readyz():
    """Ready when the database answers; 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any failure to reach the database means "not ready"
        db.session.rollback()
        log.warning("readiness check failed: %s", exc.__class__.__name__)
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "method", "path", "status", "duration_ms", "host", "org"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:
            record.request_id = "-"
        return True


class _WithoutWerkzeugRequestLines(logging.Filter):
    """Drops the development server's own line per request
    (``127.0.0.1 - - [date] "GET / HTTP/1.1" 200 -``): ``tenantry.request``
    already logs each request once, with its id, duration and organization.
    Its other lines (" * Running on …", errors) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.endswith('] "%s" %s %s'))


WERKZEUG_REQUEST_FILTER = _WithoutWerkzeugRequestLines()


def configure_logging(app) -> None:
    """One handler for the app's loggers (``tenantry.*``), JSON or text; and
    each request logged once: the development server's duplicate request
    line is dropped while ours is on (``LOG_LEVEL`` INFO or lower)."""
    handler = logging.StreamHandler(sys.stderr)
    if app.config["LOG_JSON"]:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger("tenantry")
    root.handlers[:] = [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    root.propagate = False
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.removeFilter(WERKZEUG_REQUEST_FILTER)
    if log.isEnabledFor(logging.INFO):
        werkzeug_log.addFilter(WERKZEUG_REQUEST_FILTER)


def _start_request():
    # `g` lives on the application context. A test (or a CLI command) that
    # keeps one app context open across requests would otherwise carry the
    # previous request's user and organization into the next one.
    g.__dict__.clear()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    kind = g.get("host_kind") or hosts.classify(request.host).kind
    response.headers.setdefault("Content-Security-Policy", csp_for(kind, hosts.scheme(), hosts.apex()))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint == "static" and request.args.get("v") and response.status_code == 200:
        # A vendored file asked for by version (plotly.js, 4.8 MB): its URL
        # changes with its content, so browsers keep it instead of
        # revalidating on every page (static/vendor/VERSIONS.md).
        response.cache_control.public = True
        response.cache_control.max_age = 31_536_000
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    if request.endpoint not in ("ops.healthz", "static"):
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 2),
                "host": request.host,
                "org": _org_slug(),
            },
        )
    return response


def _org_slug() -> str | None:
    """The organization's slug for the log line, from what is already loaded:
    never a query (after a failed request's rollback the row is expired, and
    the database may be the reason it failed)."""
    org = g.get("org")
    if org is None:
        return None
    return g.get("org_slug") or vars(org).get("slug")


def init_app(app) -> None:
    configure_logging(app)
    # Runs before every other before_request hook, so the id exists for them.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)

    errors.init_app(app)

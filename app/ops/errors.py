"""Error pages in the layout (HTML), JSON for the API, fragments for HTMX.

When the database cannot be reached, every answer is a 503 built without it:
no query, no signed-in user, no organization (see ``database_unavailable``).
"""

from __future__ import annotations

import json
import logging

import psycopg
from flask import current_app, g, make_response, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.tenancy.entitlements import label as entitlement_label
from app.tenancy.services import my_memberships
from app.web.htmx import HX_REQUEST, is_htmx

log = logging.getLogger("tenantry.errors")

TITLES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please sign in", "You need to sign in to see this page."),
    403: ("Not allowed", "Your role in this organization does not allow this."),
    404: ("Page not found", "There is nothing here. Check the address, or go back to the start."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    410: ("Link no longer valid", "This link has expired or was already used."),
    413: ("Too large", "What you sent is too large."),
    415: ("Unsupported format", "Send this form as a form."),
    422: ("Check your input", "Some of what you sent is not valid."),
    429: ("Too many requests", "Slow down a little and try again in a moment."),
    500: ("Something went wrong", "We could not complete this request. It has been logged."),
    503: ("Temporarily unavailable", "This service is briefly unavailable. Try again in a few seconds."),
}

# How long a client should wait before retrying while the database is away:
# a restart or fail-over takes seconds, and a shorter hint only adds load.
RETRY_AFTER_SECONDS = 5

# Errors that say "the database cannot serve this right now", not "this
# request is wrong": refused or dropped connections, a server starting up or
# shutting down, an exhausted pool, timeouts, cancelled statements. psycopg
# classes appear when code reached the driver without SQLAlchemy wrapping it.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc``, or an exception it was raised from or while
    handling, means the database is unreachable or unusable for now (a
    disconnect SQLAlchemy noticed counts, whatever its class)."""
    for _ in range(8):  # a chain is short; the bound guards against cycles
        if exc is None:
            return False
        if isinstance(exc, _UNAVAILABLE):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, InternalServerError) and exc.original_exception is not None:
            exc = exc.original_exception
        else:
            exc = exc.__cause__ or exc.__context__
    return False


def wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json" and not is_htmx())


def render_error(status: int, message: str | None = None):
    """The error page in the layout (or its fragment, or JSON) with ``status``.

    Never fails: the layout reads the signed-in user and the organization,
    possibly from the database; when that is impossible (the database went
    away, the session is broken) the same error is answered with the static
    page instead.
    """
    title, default = TITLES.get(status, (f"Error {status}", ""))
    feature = g.get("not_entitled") if status == 403 else None
    if feature:
        # A feature the organization's plan does not include (rbac.requires_feature).
        title = "Not on your plan"
        default = (
            f"{entitlement_label(feature)} is not included in this organization's plan. "
            "Nothing here can be used until an owner moves the organization to a plan that includes it."
        )
    message = message or default
    if wants_json():
        # RFC 9457 problem details, as the API answers its own refusals
        # (app/api/problems.py): a route the API does not have, a method it
        # does not take, a body the input guard refused.
        body = {"type": "about:blank", "title": title, "status": status, "detail": message}
        if g.get("request_id"):
            body["request_id"] = g.get("request_id")
        return current_app.response_class(json.dumps(body), status, mimetype="application/problem+json")
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    try:
        if status == 404 and g.get("not_a_member") and current_user.is_authenticated:
            return _not_a_member_page(), status
        return render_template(
            template, status=status, title=title, message=message, denied=g.get("denied_permissions")
        ), status
    except Exception as exc:  # the page about an error must not become a second one
        log.warning("error page %s rendered without the layout: %s", status, _describe(exc))
        return _static_page(status, title, message), status


def _not_a_member_page() -> str:
    """The 404 a signed-in user gets on an organization host that is not
    theirs: the same words (and the same page, byte for byte apart from
    per-request tokens) whether the organization exists or not, so it
    reveals nothing; links to their own organizations (through the apex
    hand-off, onto each one's host) and a way to sign in as someone else."""
    template = "tenancy/_not_a_member.html" if is_htmx() else "tenancy/not_a_member.html"
    return render_template(template, memberships=my_memberships(current_user.id))


def database_unavailable(exc: BaseException):
    """503 with ``Retry-After`` for a request the database could not serve.

    Guarantees: nothing here sends a query or reads the signed-in user or
    the organization (the page is rendered from static values only), so it
    cannot fail for the reason it is answering; one warning line is logged,
    without a traceback (an outage fails every request the same way);
    HTMX gets a fragment, API and JSON clients ``application/problem+json``
    (RFC 9457). The request id and security headers are added by
    ``_finish_request`` as on every response.
    """
    log.warning("database unavailable: %s %s: %s", request.method, request.path, _describe(exc))
    _end_transaction(discard_connection=True)
    title, message = TITLES[503]
    if wants_json():
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": message,
                "request_id": g.get("request_id"),
            }
        )
        resp = current_app.response_class(body, 503, mimetype="application/problem+json")
    else:
        resp = make_response(_static_page(503, title, message), 503)
        resp.vary.add(HX_REQUEST)
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # An outage page must not be cached in place of the real one.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _static_page(status: int, title: str, message: str) -> str:
    """The error page, or its HTMX fragment, in the app's look, from the
    values given here only: Flask's context processors (which offer the
    signed-in user and the organization) are not run."""
    name = "errors/_static.html" if is_htmx() else "errors/static.html"
    retry = status == 503
    context = {
        "status": status,
        "title": title,
        "message": message,
        "request_id": g.get("request_id"),
        "css_url": url_for("static", filename="css/app.css"),
        "favicon_url": url_for("static", filename="favicon.svg"),
        "home_url": "/",
        # A GET is worth repeating as it was. One leading slash only: "//host"
        # would be a link to another site.
        "action_url": "/" + (request.full_path.rstrip("?") if request.method == "GET" else request.path).lstrip("/")
        if retry
        else "/",
        "action_label": "Try again" if retry else "Go to the start",
    }
    return current_app.jinja_env.get_template(name).render(context)


def _describe(exc: BaseException) -> str:
    """One line about ``exc``: its (driver's) class and first message line."""
    if isinstance(exc, InternalServerError) and exc.original_exception is not None:
        exc = exc.original_exception
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return f"{inner.__class__.__module__}.{inner.__class__.__name__}: {lines[0][:300] if lines else ''}"


def _end_transaction(discard_connection: bool = False) -> None:
    """End the request's failed transaction; never raises.

    By default it is rolled back (the error page may read rows again). With
    ``discard_connection`` its connections are closed and dropped from the
    pool instead, without a round trip: a ROLLBACK sent to a database that
    stopped answering could hold the answer for as long as the network
    waits. The organization's slug is kept for the request's log line first:
    a rollback expires every loaded row, and reading one needs the database.
    """
    org = g.get("org")
    if org is not None and "org_slug" not in g:
        g.org_slug = vars(org).get("slug")
    try:
        if discard_connection:
            db.session.invalidate()
        else:
            db.session.rollback()
    except Exception:  # the session itself may be broken; the answer must still go out
        pass


def release_session(_exc=None) -> None:
    """``teardown_appcontext``: close the request's database session; a
    database that fails while the session is rolled back or closed is logged,
    never raised (an exception here would replace the finished response with
    the server's bare 500)."""
    try:
        db.session.remove()
    except Exception as exc:  # see the docstring
        log.warning("database session not closed cleanly: %s", _describe(exc))


def init_app(app) -> None:
    # Teardown functions run last-registered first: this one runs before
    # Flask-SQLAlchemy's, which then finds the session already removed.
    app.teardown_appcontext(release_session)

    @app.errorhandler(CSRFError)
    def _csrf(e):
        return render_error(400, "This form has expired or did not come from this site. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if e.code is None or e.code < 400:
            return e
        # Flask's last resort (an exception outside the view, e.g. in an
        # after_request hook) arrives as a 500 wrapping the original.
        if e.code == 500 and is_database_unavailable(e):
            return database_unavailable(e)
        resp = render_error(
            e.code,
            e.description
            if e.code in (400, 410, 413, 429) and e.description and not e.description.startswith("The ")
            else None,
        )
        if e.code == 405 and hasattr(e, "valid_methods") and e.valid_methods:
            body, status = resp
            r = make_response(body, status)
            r.headers["Allow"] = ", ".join(e.valid_methods)
            return r
        return resp

    @app.errorhandler(Exception)
    def _unhandled(e):
        if isinstance(e, HTTPException):
            return _http(e)
        if is_database_unavailable(e):
            return database_unavailable(e)
        log.exception("unhandled error")
        _end_transaction()
        return render_error(500)

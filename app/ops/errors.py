"""Error pages in the layout (HTML), JSON for the API, fragments for HTMX."""
from __future__ import annotations

import logging

from flask import g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.web.htmx import is_htmx

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
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json" and not is_htmx()
    )


def render_error(status: int, message: str | None = None):
    title, default = TITLES.get(status, (f"Error {status}", ""))
    message = message or default
    if wants_json():
        return jsonify(error={"status": status, "title": title, "message": message,
                              "request_id": g.get("request_id")}), status
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    resp = render_template(template, status=status, title=title, message=message,
                           denied=g.get("denied_permissions")), status
    return resp


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(e):
        return render_error(400, "This form has expired or did not come from this site. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if e.code is None or e.code < 400:
            return e
        resp = render_error(e.code, e.description if e.code in (400, 410, 413, 429) and e.description
                            and not e.description.startswith("The ") else None)
        if e.code == 405 and hasattr(e, "valid_methods") and e.valid_methods:
            body, status = resp
            from flask import make_response

            r = make_response(body, status)
            r.headers["Allow"] = ", ".join(e.valid_methods)
            return r
        return resp

    @app.errorhandler(Exception)
    def _unhandled(e):
        if isinstance(e, HTTPException):
            return _http(e)
        log.exception("unhandled error")
        try:
            db.session.rollback()
        except Exception:  # the session itself may be broken; the page must still render
            pass
        return render_error(500)

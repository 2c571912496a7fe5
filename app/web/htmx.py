"""HTMX header names and helpers, in one place (as django-htmx does)."""

from __future__ import annotations

from flask import make_response, render_template, request

# Only the headers the app reads or sends; add one here when a view needs it.
HX_REQUEST = "HX-Request"
HX_HISTORY_RESTORE = "HX-History-Restore-Request"
HX_REDIRECT = "HX-Redirect"


def is_htmx() -> bool:
    """True for an HTMX request that wants a fragment (not a history restore)."""
    return request.headers.get(HX_REQUEST) == "true" and request.headers.get(HX_HISTORY_RESTORE) != "true"


def render(template: str, fragment: str | None = None, status: int = 200, **context):
    """One route, one template: the full page, or with ``HX-Request`` the
    fragment the page swaps. Always sends ``Vary: HX-Request`` so caches keep
    the two apart."""
    name = fragment if (fragment and is_htmx()) else template
    resp = make_response(render_template(name, **context), status)
    resp.vary.add(HX_REQUEST)
    return resp

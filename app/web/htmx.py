"""HTMX header names and helpers, in one place (as django-htmx does)."""

from __future__ import annotations

from flask import make_response, redirect, render_template, request

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


def redirect_page(location: str, htmx_status: int = 200):
    """Send the browser to ``location`` as a whole page: a 302 for a plain
    request; for any HTMX request (history restores too) ``htmx_status`` with
    ``HX-Redirect``, because htmx would follow a 302 itself and swap the page
    it lands on into the fragment's place."""
    if request.headers.get(HX_REQUEST) != "true":
        return redirect(location)
    resp = make_response("", htmx_status)
    resp.headers[HX_REDIRECT] = location
    return resp

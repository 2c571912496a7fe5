"""HTMX header names and helpers, in one place (as django-htmx does)."""

from __future__ import annotations

from flask import make_response, render_template, request

HX_REQUEST = "HX-Request"
HX_TARGET = "HX-Target"
HX_TRIGGER = "HX-Trigger"
HX_HISTORY_RESTORE = "HX-History-Restore-Request"
HX_REDIRECT = "HX-Redirect"
HX_LOCATION = "HX-Location"
HX_PUSH_URL = "HX-Push-Url"
HX_RETARGET = "HX-Retarget"
HX_RESWAP = "HX-Reswap"
HX_REFRESH = "HX-Refresh"


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

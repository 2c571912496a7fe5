"""The input guard: what no view should ever have to handle, refused before any
view runs ("no 500 for anything a user can type or send").

Guarantees, for every route (static files and health probes aside):

* **NUL bytes** (``\\x00``) in a query parameter, in a form field (names
  and values) or in a header get ``400``; in the path, ``404`` (an address
  with a NUL names nothing, like any malformed id). No one can type one,
  HTTP forbids them in header values, PostgreSQL rejects them in any text
  value ("PostgreSQL text fields cannot contain NUL"), and a hand-made
  request carrying one must not reach the database (the User-Agent header,
  for one, is stored with every sign-in).
* **File uploads** get ``400`` unless the view is marked ``@accepts_files``
  (any field) or ``@accepts_files_in("field", ...)`` (those fields only: a
  form with one file input among text fields). Flask-WTF merges
  ``request.files`` into every form, so a file sent in a text field would
  reach code expecting a string.
* **JSON bodies** on a write get ``415`` outside ``/api/`` and ``/scim/``: the HTML forms
  are forms, and Flask-WTF would otherwise read JSON objects, lists and
  numbers into text fields. A view that takes JSON from the page's own
  script (the passkey endpoints) says so with ``@accepts_json`` and checks
  each value's type itself.
* **``<int:...>`` URL variables** match only values that fit PostgreSQL's
  ``bigint`` (0 to 2**63-1): a larger number is a ``404``, like any unknown
  id, instead of an overflow in the query.

Nothing is changed by a refused request: the guard runs before the host
hook, the session and the view. Covered by tests/test_hostile_input.py,
which sends hostile input to every route in the url map.
"""

from __future__ import annotations

from flask import abort, current_app, request
from werkzeug.routing import IntegerConverter

BIGINT_MAX = 2**63 - 1
UNGUARDED_ENDPOINTS = {"static", "ops.healthz", "ops.readyz"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ACCEPTS_FILES_ATTR = "_tenantry_accepts_files"
ACCEPTS_JSON_ATTR = "_tenantry_accepts_json"


class BigIntConverter(IntegerConverter):
    """``<int:...>``, bounded to PostgreSQL ``bigint`` unless a rule says otherwise."""

    def __init__(self, map, fixed_digits=0, min=None, max=BIGINT_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def accepts_files(view):
    """Mark a view that takes file uploads (the guard refuses them everywhere else)."""
    setattr(view, ACCEPTS_FILES_ATTR, True)
    return view


def accepts_files_in(*fields: str):
    """Mark a view that takes file uploads in ``fields`` only: a file in any
    other field is refused by the guard (``400``), as on an unmarked view."""

    def mark(view):
        setattr(view, ACCEPTS_FILES_ATTR, frozenset(fields))
        return view

    return mark


def accepts_json(view):
    """Mark a view that takes a JSON body from our own script (the guard refuses one everywhere else)."""
    setattr(view, ACCEPTS_JSON_ATTR, True)
    return view


def _has_nul(multidict) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in multidict.items(multi=True) if isinstance(value, str))


def guard():
    """``before_request``: refuse input no view can use (see the module docstring)."""
    if request.endpoint in UNGUARDED_ENDPOINTS:
        return None
    if "\x00" in request.path:
        abort(404)
    if _has_nul(request.args):
        abort(400, "The address contains a character that is not allowed (NUL).")
    if any("\x00" in value for _, value in request.headers.items()):
        abort(400, "A header of the request contains a character that is not allowed (NUL).")
    if (
        request.method in WRITE_METHODS
        and request.is_json
        and not request.path.startswith(("/api/", "/scim/"))
        and not getattr(current_app.view_functions.get(request.endpoint), ACCEPTS_JSON_ATTR, False)
    ):
        abort(415, "Send this form as a form, not as JSON.")
    if request.files:
        view = current_app.view_functions.get(request.endpoint)
        allowed = getattr(view, ACCEPTS_FILES_ATTR, False)
        if not allowed or (allowed is not True and not set(request.files) <= allowed):
            abort(400, "This form does not accept files.")
    if _has_nul(request.form):
        abort(400, "What you sent contains a character that is not allowed (NUL).")
    return None


def install_converters(app) -> None:
    """Bound ``<int:...>`` to ``bigint``. Must run before any blueprint is registered."""
    app.url_map.converters["int"] = BigIntConverter


def init_app(app) -> None:
    """Install the converter and the guard (before the host hook, so it runs first)."""
    install_converters(app)
    app.before_request(guard)

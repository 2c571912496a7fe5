"""A test client whose every request runs like a real one: in its own app
context, with its own database session and tenant scope.

Flask's test client reuses the app context the test already holds (the
autouse fixture pushes one), so without this every request would share the
test's SQLAlchemy session: its identity map (rows served without SQL), its
open transaction and its tenant scope. Isolation and query-count tests must
not depend on that, so their requests run in an empty ``contextvars``
context, exactly as a request on a fresh gunicorn worker thread would.
"""

from __future__ import annotations

import contextvars

import pytest
from flask.testing import FlaskClient


class FreshContextClient(FlaskClient):
    """``FlaskClient`` whose requests push their own app context (and session)."""

    def open(self, *args, **kwargs):
        parent = super().open

        def request():
            response = parent(*args, **kwargs)
            # A streamed body (stream_with_context) runs its generator when
            # read: read it here, inside the request's own context.
            response.get_data()
            return response

        return contextvars.Context().run(request)


@pytest.fixture
def fresh_requests(app, monkeypatch):
    """Every client made by ``app.test_client()`` (``login``, ``client``) gets fresh contexts."""
    monkeypatch.setattr(app, "test_client_class", FreshContextClient)
    yield

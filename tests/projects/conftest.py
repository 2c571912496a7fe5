"""Fixtures for the projects tests: an audit spy and a CSRF-carrying post."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token, url


@pytest.fixture
def audit_events(monkeypatch):
    """Every ``audit.record`` call made during the test, as ``(action, kwargs)``.

    The real ``record`` still runs: this only watches the one call every
    change must make.
    """
    from app import audit

    calls = []
    real = audit.record

    def spy(action, *args, **kwargs):
        calls.append((action, kwargs))
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", spy)
    return calls


@pytest.fixture
def post(app):
    """``post(client, slug, path, data=None, htmx=False)`` with the CSRF token added."""

    def _post(client, slug, path, data=None, htmx=False):
        payload = dict(data or {})
        payload["csrf_token"] = csrf_token(client, slug)
        headers = {"HX-Request": "true"} if htmx else {}
        return client.post(url(slug, path), data=payload, headers=headers)

    return _post


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):
    """Requests run in their own app context and session, as in production."""


from tests.fresh_client import fresh_requests  # noqa: E402,F401  (fixture)

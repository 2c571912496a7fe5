"""Fixtures for the webhooks tests: a real receiver on loopback, endpoints made through the service."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.scoping import tenant_context
from app.webhooks import services
from tests.conftest import csrf_token, url
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def loopback(app, monkeypatch):
    """Deliveries may go to this machine (as with WEBHOOKS_ALLOW_LOOPBACK=1 in
    development), for tests that need a receiver; the guard tests run without it."""
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)


@pytest.fixture
def make_endpoint(app):
    """``make_endpoint(org, url, events)`` -> (endpoint id, secret), committed."""

    def make(org, endpoint_url, events=("project.created",)):
        with tenant_context(org.id):
            endpoint, secret = services.create_endpoint(org, endpoint_url, "", list(events))
            db.session.commit()
            return endpoint.id, secret

    return make


@pytest.fixture
def post(app):
    def _post(client, slug, path, data=None):
        payload = dict(data or {})
        payload["csrf_token"] = csrf_token(client, slug)
        return client.post(url(slug, path), data=payload)

    return _post


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):
    """Requests run in their own app context and session, as in production."""


from tests.fresh_client import fresh_requests  # noqa: E402,F401  (fixture)

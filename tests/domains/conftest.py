"""Fixtures for the domain tests: a real DNS server on loopback (dnslib) that
the app asks through ``DNS_RESOLVER``, and a form poster."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token, url
from tests.domains.dns_server import DnsZone


@pytest.fixture(scope="session")
def _dns_server():
    zone = DnsZone().start()
    yield zone
    zone.stop()


@pytest.fixture
def dns_zone(app, _dns_server, monkeypatch):
    """The test's DNS zone (empty at the start); the app resolves through it."""
    _dns_server.clear()
    monkeypatch.setitem(app.config, "DNS_RESOLVER", _dns_server.address)
    monkeypatch.setitem(app.config, "DNS_TIMEOUT_SECONDS", 1.0)
    yield _dns_server
    _dns_server.clear()


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

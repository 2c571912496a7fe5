"""Fixtures for the audit streaming tests: an enterprise organization (the
plan with ``audit_streaming``), a real receiver on loopback, events recorded
and sealed, streams made through the service."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import audit
from app.extensions import db
from app.scoping import tenant_context
from app.streaming import delivery, services
from tests.audit.conftest import settle
from tests.conftest import csrf_token, url
from tests.webhooks.receiver import Receiver


@pytest.fixture
def enterprise(world, owner_engine):
    """``acme`` on the enterprise plan (it includes audit streaming); globex stays on free."""
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :o"), {"o": world.acme.id})
    return world


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def loopback(app, monkeypatch):
    """Streams may go to this machine (as with WEBHOOKS_ALLOW_LOOPBACK=1 in development)."""
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)


def record_events(org, n: int, action: str = "project.updated") -> None:
    """``n`` audit events in ``org``, committed (not sealed)."""
    with tenant_context(org.id):
        for i in range(n):
            audit.record(action, target=("project", f"p{i}", f"Project {i}"), after={"n": i}, actor="system")
        db.session.commit()


def make_stream(org, stream_url, kind="https", token=None, start="all", name="SIEM"):
    """A stream made through the service, committed: ``(id, secret or None)``."""
    with tenant_context(org.id):
        stream, secret = services.create_stream(org, name, kind, stream_url, token, start)
        db.session.commit()
        return stream.id, secret


def run_stream(org, stream_id) -> str:
    """Run the stream's job body now (as a worker would), in the organization's scope."""
    with tenant_context(org.id):
        out = delivery.deliver.body(stream_id=str(stream_id))
        db.session.commit()
    return out


def stream_row(owner_engine, stream_id):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM audit_streams WHERE id = :i"), {"i": stream_id}).mappings().one()


def actions(owner_engine, org_id, prefix="audit_stream."):
    with owner_engine.connect() as c:
        return (
            c.execute(
                text("SELECT action FROM audit_events WHERE organization_id = :o AND action LIKE :p ORDER BY id"),
                {"o": org_id, "p": prefix + "%"},
            )
            .scalars()
            .all()
        )


@pytest.fixture
def seal(app):
    """``seal()``: seal everything committed (as the periodic job does)."""
    return settle


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

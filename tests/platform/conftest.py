"""Fixtures for the platform console: a super-admin, and events read from the
owner connection (RLS filters nothing there)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import csrf_token, url


@pytest.fixture
def superadmin(world):
    return f.make_user("super@tenantry.test", "Sam Super", superadmin=True)


@pytest.fixture
def console(login, superadmin):
    """A client signed in as the super-admin on the apex."""
    return login(superadmin)


@pytest.fixture
def post():
    """``post(client, path, data, slug=None)``: a form POST carrying the CSRF token."""

    def send(client, path, data=None, slug=None):
        payload = dict(data or {})
        payload["csrf_token"] = csrf_token(client, slug)
        return client.post(url(slug, path), data=payload)

    return send


@pytest.fixture
def events(owner_engine):
    """``events(org_id)``: ``[(action, actor_type, metadata)]`` of that log, oldest first."""

    def read(org_id):
        with owner_engine.connect() as c:
            rows = c.execute(
                text("SELECT action, actor_type, metadata FROM audit_events WHERE organization_id = :o ORDER BY id"),
                {"o": org_id},
            ).all()
        return [(r.action, r.actor_type, r.metadata) for r in rows]

    return read


@pytest.fixture
def org_row(owner_engine):
    """``org_row(org_id)``: the organization's row as stored."""

    def read(org_id):
        with owner_engine.connect() as c:
            return c.execute(text("SELECT * FROM organizations WHERE id = :o"), {"o": org_id}).mappings().one()

    return read

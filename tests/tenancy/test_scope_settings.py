"""The RLS settings follow the tenant scope: one ``set_config`` when a
request's scope is set, none for an empty scope, and a deferred reset at the
end of a request that is sent only if the transaction is used again."""
from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import text

from app.extensions import db
from app.tenancy.scoping import current_org_id, tenant_context
from tests.conftest import sign_in, url


def test_a_transaction_that_outlives_a_request_catches_up_before_its_next_statement(app, world, monkeypatch):
    """A plain test client shares the test's app context and session (as any
    code running a request inside another app context would): after the
    request, the still-open transaction must not keep acme's settings."""
    monkeypatch.setattr(app, "test_client_class", FlaskClient)
    client = sign_in(app, world.users["owner"], "acme")
    db.session.execute(text("SELECT 1"))  # the test's session holds a transaction open
    assert client.get(url("acme", "/projects/")).status_code == 200
    assert current_org_id() is None
    assert db.session().in_transaction()
    assert db.session.execute(text("SELECT current_setting('app.org_id', true)")).scalar() in ("", None)
    assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 0


def test_entering_and_leaving_a_tenant_context_inside_a_transaction_updates_the_settings(world):
    db.session.execute(text("SELECT 1"))
    with tenant_context(world.acme.id):
        assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 3
        with tenant_context(world.globex.id):
            assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 3
            names = db.session.execute(text("SELECT string_agg(name, ',' ORDER BY name) FROM projects")).scalar()
            assert names.startswith("Globex")
        assert db.session.execute(text("SELECT min(name) FROM projects")).scalar() == "Acme Project 0"
    assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 0

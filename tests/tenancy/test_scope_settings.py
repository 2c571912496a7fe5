"""The RLS settings follow the tenant scope: set by the request's first
statement (the organization lookup) or one ``set_config`` when the scope
changes, none for an empty scope or a savepoint, and a deferred reset at the
end of a request that is sent only if the transaction is used again."""

from __future__ import annotations

import contextlib

from flask import g, session
from flask.testing import FlaskClient
from sqlalchemy import text

from app.auth.models import UserSession
from app.auth.sessions import bind_cookie
from app.extensions import db
from app.scoping import all_organizations, current_org_id, reset_scope, set_scope, tenant_context
from app.tenancy.request import REACH_KEY, resolve
from app.util import utcnow
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


def _settings() -> tuple:
    return tuple(
        db.session.execute(
            text(
                "SELECT coalesce(current_setting('app.org_id', true), ''),"
                " coalesce(current_setting('app.user_id', true), '')"
            )
        ).one()
    )


def _session_row(user, revoked=False):
    rec = UserSession(user_id=user.id, ip="127.0.0.1", user_agent="pytest", revoked_at=utcnow() if revoked else None)
    db.session.add(rec)
    db.session.commit()
    return rec


def test_one_statement_resolves_the_organization_membership_and_settings_of_a_valid_session(app, world, count_queries):
    member = world.users["member"]
    rec = _session_row(member)
    with app.test_request_context("/projects/", base_url=url("acme", "/")):
        bind_cookie(rec.id)
        # A session whose reaching acme is recorded already (its first request
        # there wrote it: tests/members/test_member_page.py).
        session[REACH_KEY] = str(rec.id)
        with count_queries() as q:
            assert resolve() is None
        assert g.membership.user_id == member.id
        reads = [s for s in q.statements if s.startswith("SELECT")]  # (+ a last-seen UPDATE)
        assert len(reads) == 1 and "enter_organization(" in reads[0], q.report()
        assert _settings() == (str(world.acme.id), str(member.id))


def test_a_revoked_session_leaves_no_user_in_the_settings(app, world):
    """The lookup statement sets the session's user before Python checks the
    session; once the check fails, the settings must follow the (anonymous)
    scope before anything else runs."""
    rec = _session_row(world.users["member"], revoked=True)
    with app.test_request_context("/projects/", base_url=url("acme", "/")):
        bind_cookie(rec.id)
        response = resolve()
        assert response.status_code == 302 and "/login" in response.location
        assert _settings() == (str(world.acme.id), "")


def test_a_rolled_back_savepoint_does_not_leave_its_settings_behind(world):
    """ROLLBACK TO SAVEPOINT undoes a set_config made inside it; the next
    statement must see the scope the code runs in, not the undone one."""
    db.session.execute(text("SELECT 1"))
    with tenant_context(world.acme.id):
        savepoint = db.session.begin_nested()
        token = set_scope(world.globex.id)
        assert _settings()[0] == str(world.globex.id)
        savepoint.rollback()  # the database is back to acme; the code still runs as globex
        assert db.session.execute(text("SELECT min(name) FROM projects")).scalar() == "Globex Secret 0"
        reset_scope(token)
        assert db.session.execute(text("SELECT min(name) FROM projects")).scalar() == "Acme Project 0"


def test_savepoints_inside_a_scope_send_no_settings_of_their_own(world, count_queries):
    """Bulk actions take a savepoint per row: each would otherwise cost a round trip."""
    db.session.execute(text("SELECT 1"))
    with tenant_context(world.acme.id):
        db.session.execute(text("SELECT 1"))
        with count_queries() as q:
            for _ in range(3):
                with db.session.begin_nested():
                    db.session.execute(text("SELECT count(*) FROM projects"))
        assert not any("set_config" in s for s in q.statements), q.report()


def test_a_scope_change_reaches_both_connections_of_a_transaction_across_organizations(world, count_queries):
    """Inside ``all_organizations()`` the session's transaction holds two
    connections (the runtime role's, begun before, and the
    cross-organization role's): a scope change reaches each of them, once."""
    runtime = {"bind": db.engine}

    def runtime_org() -> str:
        return db.session.execute(text("SELECT current_setting('app.org_id', true)"), bind_arguments=runtime).scalar()

    db.session.execute(text("SELECT 1"))
    with all_organizations(reason="test: a second connection in the session's transaction"):
        db.session.execute(text("SELECT 1"))
        with contextlib.ExitStack() as stack:
            with count_queries() as q:
                stack.enter_context(tenant_context(world.globex.id))
            assert sum("set_config" in s for s in q.statements) == 1, q.report()
            assert _settings()[0] == str(world.globex.id)  # the cross-organization connection
            assert runtime_org() == str(world.globex.id)
        assert _settings()[0] == "" and runtime_org() == ""

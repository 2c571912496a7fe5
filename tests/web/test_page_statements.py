"""SQL statements per main page, pinned: what ``bench/pages.py`` measures.

Each page an admin opens costs a fixed number of statements, whatever the
number of rows behind it: the count is the same with one full page of rows
and with three times as many, and equal to the figure below. A change that adds a
statement (or an N+1) fails here with the statements listed; if the new
statement is worth it, change the figure in the same commit and say why.

The first statement of every page is the request's entry (organization,
session, user, membership and its plan, with the RLS settings:
``enter_organization``).
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import event

from app import audit
from app.extensions import db
from app.rbac.models import Role
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import url
from tests.members.conftest import add_members, invite_row

# path -> statements per request (runtime and cross-organization connections together)
PAGES = {
    "/dashboard": 3,  # entry; every figure (seats, active projects) and
    # every getting-started step in one statement; recent activity (one page of the log)
    "/roles/": 3,  # entry; custom roles; members per role
    "/projects/": 2,  # entry; the page with its capped count
    "/settings/general": 1,  # entry
    "/settings/security": 2,  # entry (the policy is on the organization row); the Owners (break-glass choices)
    "/audit/": 3,  # entry; the page (its ids joined to their events); the log's state (oldest kept,
    # last seal, last purge and verify in one statement) (members: a picker)
    "/members": 4,  # entry; roles; the page; its count (members, invitations) and the seats in one statement
    "/members?two_factor=off": 4,  # the same: "without 2FA" is a condition inside the page and count statements
    "/switcher": 3,  # entry; then every membership of the user, on the cross-organization connection
}


@contextlib.contextmanager
def statements(engines):
    seen: list[str] = []

    def listener(conn, cursor, statement, *a):
        seen.append(f"[{conn.engine.url.username}] " + " ".join(statement.split()))

    for e in engines:
        event.listen(e, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", listener)


def _grow(world, n: int) -> None:
    """``n`` more members, invitations, audit events and projects in acme."""
    add_members(world.acme, n, prefix=f"grow{n}x")
    for i in range(n // 10):
        invite_row(world.acme, f"invitee{n}-{i}@example.test")
    with tenant_context(world.acme.id):
        for i in range(n):
            audit.record("project.created", ("project", f"p{n}-{i}", f"Grown {i}"), after={"name": f"Grown {i}"})
        db.session.commit()
    for i in range(n // 2):
        f.make_project(world.acme, f"Grown {n}-{i}", owner=world.users["owner"])


def _in_own_thread(fn):
    """Run ``fn`` on a thread of its own: each request there gets its own
    application context and session, as under gunicorn (the test's thread
    holds one app context that requests would otherwise share)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(60)
    assert out, "the request thread failed (see its traceback above)"
    return out[0]


def _count(client, path: str) -> tuple[int, list[str]]:
    engines = {db.engine, *db.engines.values()}

    def run():
        client.get(url("acme", path))  # warm: connections, last_seen refresh
        with statements(engines) as seen:
            r = client.get(url("acme", path))
        assert r.status_code == 200, (path, r.status_code)
        return seen

    seen = _in_own_thread(run)
    return len(seen), seen


@pytest.mark.parametrize("path", list(PAGES))
def test_each_main_page_costs_a_fixed_number_of_statements_whatever_its_rows(world, login, path):
    with tenant_context(world.acme.id):
        db.session.add(Role(organization_id=world.acme.id, name="Auditor", permissions=["audit:view"]))
        db.session.commit()
    client = login(world.users["owner"], "acme")
    _grow(world, 60)  # more than a page of everything
    few, few_sql = _count(client, path)
    _grow(world, 120)  # three times as many rows
    many, many_sql = _count(client, path)
    report = "\n".join(f"  {i}. {s[:160]}" for i, s in enumerate(many_sql, 1))
    assert few == many, f"{path}: {few} statements with 60 more rows, {many} with 180:\n{report}"
    assert many == PAGES[path], f"{path}: {many} statements, pinned at {PAGES[path]}:\n{report}"
    assert "enter_organization(" in many_sql[0], report

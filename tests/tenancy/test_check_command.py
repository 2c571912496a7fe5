"""``flask --app wsgi check``: green on a correct database, red (exit 1) as
soon as one part of the posture is broken. Every test restores what it broke."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from app import rls


def run_check(app):
    result = app.test_cli_runner().invoke(args=["check"])
    return result.exit_code, result.output


@pytest.fixture
def owner_exec(owner_engine):
    def execute(*statements):
        with owner_engine.begin() as c:
            for s in statements:
                c.execute(text(s))

    return execute


def test_check_is_green_on_the_test_database(app):
    code, out = run_check(app)
    assert code == 0, out
    assert "FAIL" not in out
    assert "projects: RLS forced" in out and "has no BYPASSRLS" in out


def test_check_fails_when_rls_is_not_forced_on_one_table(app, owner_exec):
    owner_exec("ALTER TABLE projects NO FORCE ROW LEVEL SECURITY")
    try:
        code, out = run_check(app)
    finally:
        owner_exec("ALTER TABLE projects FORCE ROW LEVEL SECURITY")
    assert code == 1, out
    assert "[FAIL] projects: RLS forced" in out
    assert run_check(app)[0] == 0


def test_check_fails_when_rls_is_disabled_on_one_table(app, owner_exec):
    owner_exec("ALTER TABLE memberships DISABLE ROW LEVEL SECURITY")
    try:
        code, out = run_check(app)
    finally:
        owner_exec("ALTER TABLE memberships ENABLE ROW LEVEL SECURITY")
    assert code == 1 and "[FAIL] memberships: RLS enabled" in out
    assert run_check(app)[0] == 0


def test_check_fails_when_a_tenant_policy_is_missing(app, owner_exec):
    owner_exec("DROP POLICY tenant_isolation ON roles")
    try:
        code, out = run_check(app)
    finally:
        owner_exec(*rls.policy_sql("roles", app.config["DATABASE_CROSS_ORG_ROLE"]))
    assert code == 1 and "[FAIL] roles: tenant policy" in out
    assert run_check(app)[0] == 0


@pytest.fixture
def probe_role(app, owner_engine, monkeypatch):
    """A stand-in runtime role for this database, created exactly like the real one.

    Roles are cluster-wide: granting BYPASSRLS to ``tenantry_app`` itself, even
    for a moment, would weaken RLS for every other suite sharing the server.
    The probe gets the same attributes and grants (``ensure_runtime_role`` and
    ``grant_runtime``), and ``check`` is pointed at it.
    """
    with owner_engine.connect() as c:
        dbname = c.execute(text("SELECT current_database()")).scalar()
    role = ("tenantry_probe_" + re.sub(r"[^a-z0-9_]", "_", dbname.lower()))[:63]
    with owner_engine.begin() as c:
        if c.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
            c.execute(text(f'DROP OWNED BY "{role}"'))  # left over by an interrupted run
            c.execute(text(f'DROP ROLE "{role}"'))
        rls.ensure_runtime_role(c, role, None)
        rls.grant_runtime(c, role)
    monkeypatch.setitem(app.config, "DATABASE_RUNTIME_ROLE", role)
    yield role
    with owner_engine.begin() as c:
        c.execute(text(f'DROP OWNED BY "{role}"'))
        c.execute(text(f'DROP ROLE "{role}"'))


def test_check_fails_when_the_runtime_role_gets_bypassrls(app, owner_exec, probe_role):
    assert run_check(app)[0] == 0
    owner_exec(f'ALTER ROLE "{probe_role}" BYPASSRLS')
    try:
        code, out = run_check(app)
    finally:
        owner_exec(f'ALTER ROLE "{probe_role}" NOBYPASSRLS')
    assert code == 1 and f"[FAIL] runtime role {probe_role} has no BYPASSRLS" in out
    assert run_check(app)[0] == 0


def test_check_fails_when_the_runtime_role_is_a_superuser(app, owner_exec, probe_role):
    owner_exec(f'ALTER ROLE "{probe_role}" SUPERUSER')
    try:
        code, out = run_check(app)
    finally:
        owner_exec(f'ALTER ROLE "{probe_role}" NOSUPERUSER')
    assert code == 1 and f"[FAIL] runtime role {probe_role} is not a superuser" in out


def test_check_fails_when_the_runtime_role_owns_a_table(app, owner_exec, probe_role):
    owner_exec("CREATE TABLE probe_owned (id int)", f'ALTER TABLE probe_owned OWNER TO "{probe_role}"')
    try:
        code, out = run_check(app)
    finally:
        owner_exec("DROP TABLE probe_owned")
    assert code == 1 and "owns no table" in out


def test_check_fails_when_a_security_definer_function_is_executable_by_public(app, owner_exec):
    """A definer function is not held back by RLS: no role but the runtime one may call it."""
    owner_exec("CREATE FUNCTION probe_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
    try:
        code, out = run_check(app)
        owner_exec("REVOKE ALL ON FUNCTION probe_definer() FROM PUBLIC")
        assert run_check(app)[0] == 0
    finally:
        owner_exec("DROP FUNCTION probe_definer()")
    assert code == 1 and "[FAIL] SECURITY DEFINER functions are not executable by PUBLIC" in out
    assert "probe_definer()" in out


def test_check_fails_when_public_may_call_the_request_entry_function(app, owner_exec):
    owner_exec(f"GRANT EXECUTE ON FUNCTION {rls.ENTER_FUNCTION} TO PUBLIC")
    try:
        code, out = run_check(app)
    finally:
        owner_exec(f"REVOKE ALL ON FUNCTION {rls.ENTER_FUNCTION} FROM PUBLIC")
    assert code == 1 and "is callable by" in out and "[FAIL]" in out
    assert run_check(app)[0] == 0

"""No setting the runtime role can make widens what it sees.

Cross-organization work runs as its own database role, reached in Python only
through ``all_organizations(reason=...)``, which switches the connection. The
runtime role (every request) sees one organization whatever SQL it runs, and
cannot make anyone a super-admin or move an organization to another plan."""

from __future__ import annotations

import re

import psycopg
import pytest
from sqlalchemy import text

from app.extensions import db
from app.rls import tenant_tables
from app.scoping import all_organizations, tenant_context
from tests.tenancy.test_check_command import owner_exec, probe_role, run_check  # noqa: F401 (fixtures)

# Settings an attacker would try, besides every app.* setting the schema mentions.
GUESSES = (
    "app.all_orgs",
    "app.bypass",
    "app.bypass_rls",
    "app.superadmin",
    "app.platform",
    "app.role",
    "app.cross_org",
    "app.org_ids",
    "app.tenant",
    "app.is_superadmin",
)


def _app_settings_in_schema(owner_engine) -> set[str]:
    """Every ``app.*`` setting named by a policy or a function in the database."""
    with owner_engine.connect() as c:
        sources = list(
            c.execute(
                text(
                    "SELECT coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies"
                    " WHERE schemaname = 'public'"
                )
            ).scalars()
        )
        sources += list(
            c.execute(
                text(
                    "SELECT p.prosrc || ' ' || coalesce(array_to_string(p.proconfig, ' '), '') FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                )
            ).scalars()
        )
    return {m for s in sources for m in re.findall(r"\bapp\.[a-z_]+", s)}


def test_the_runtime_role_reads_zero_rows_of_another_organization_whatever_it_sets(
    world, runtime_connect, owner_engine
):
    with owner_engine.connect() as c:
        tables = tenant_tables(c)
        # There is something to leak: the owner sees globex rows in these tables.
        for t in ("projects", "memberships"):
            assert (
                c.execute(
                    text(f'SELECT count(*) FROM "{t}" WHERE organization_id = :o'), {"o": world.globex.id}
                ).scalar()
                > 0
            ), t
    settings = _app_settings_in_schema(owner_engine) | set(GUESSES)
    assert {"app.org_id", "app.user_id"} <= settings
    globex_user = world.users["globex_owner"].id
    values = {"on", "true", "1", "*", str(world.globex.id), str(globex_user)}
    with runtime_connect() as conn:
        for value in sorted(values):
            for is_local in (True, False):
                with conn.transaction():
                    for name in sorted(settings - {"app.org_id"}):
                        conn.execute("SELECT set_config(%s, %s, %s)", (name, value, is_local))
                    # Its own organization, and a user of the other one.
                    conn.execute("SELECT set_config('app.org_id', %s, %s)", (str(world.acme.id), is_local))
                    conn.execute("SELECT set_config('app.user_id', %s, %s)", (str(globex_user), is_local))
                    for t in tables:
                        foreign = conn.execute(
                            f'SELECT count(*) FROM "{t}" WHERE organization_id IS DISTINCT FROM %s', (world.acme.id,)
                        ).fetchone()[0]
                        assert foreign == 0, f"{t}: {foreign} rows of another organization with settings = {value}"
                    # Not even the other organization's user's own memberships.
                    assert (
                        conn.execute("SELECT count(*) FROM memberships WHERE user_id = %s", (globex_user,)).fetchone()[
                            0
                        ]
                        == 0
                    )


def test_the_runtime_role_cannot_become_the_cross_organization_role(app, runtime_connect):
    cross = app.config["DATABASE_CROSS_ORG_ROLE"]
    with runtime_connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f'SET ROLE "{cross}"')


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE users SET is_superadmin = true",
        "INSERT INTO users (id, email, name, is_superadmin) VALUES (gen_random_uuid(), 'x@example.test', 'X', true)",
        "UPDATE organizations SET plan_key = 'enterprise'",
        "UPDATE organizations SET status = 'active'",
        "DELETE FROM users",
        "DELETE FROM organizations",
        "UPDATE user_sessions SET user_id = user_id",
    ],
)
def test_the_runtime_role_cannot_grant_itself_power(world, runtime_connect, sql):
    with runtime_connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)


def _current_user() -> str:
    return db.session.execute(text("SELECT current_user")).scalar()


def test_all_organizations_switches_the_connection_to_the_cross_organization_role(app, world):
    runtime, cross = app.config["DATABASE_RUNTIME_ROLE"], app.config["DATABASE_CROSS_ORG_ROLE"]
    with tenant_context(world.acme.id):
        assert _current_user() == runtime
        assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 3
        with all_organizations(reason="test: the escape switches the connection") as engine:
            assert engine.url.username == cross
            assert _current_user() == cross
            assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 6
            # A tenant context nested in it stays on the same connection (one
            # transaction), with the ORM filter back on.
            with tenant_context(world.globex.id):
                assert _current_user() == cross
        assert _current_user() == runtime
        assert db.session.execute(text("SELECT count(*) FROM projects")).scalar() == 3
    db.session.rollback()


def test_changes_made_inside_all_organizations_are_written_by_the_cross_organization_role(app, world):
    from app.auth.models import User

    user = db.session.get(User, world.users["member"].id)
    with all_organizations(reason="test: promote"):
        user.is_superadmin = True
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(User, user.id).is_superadmin is True


def test_check_fails_when_a_policy_reads_another_setting(app, owner_exec):  # noqa: F811
    owner_exec("CREATE POLICY probe_escape ON projects USING (current_setting('app.sneaky', true) = 'on')")
    try:
        code, out = run_check(app)
    finally:
        owner_exec("DROP POLICY probe_escape ON projects")
    assert code == 1, out
    assert "[FAIL] policies read no setting but app.org_id and app.user_id" in out and "app.sneaky" in out
    assert run_check(app)[0] == 0


def test_check_fails_when_a_policy_lets_the_runtime_role_see_every_row(app, owner_exec):  # noqa: F811
    owner_exec("CREATE POLICY probe_wide ON projects USING (true)")
    try:
        code, out = run_check(app)
    finally:
        owner_exec("DROP POLICY probe_wide ON projects")
    assert code == 1 and "filters by app.org_id" in out and "projects.probe_wide" in out


def test_check_fails_when_the_runtime_role_could_set_is_superadmin(app, owner_exec, probe_role):  # noqa: F811
    assert run_check(app)[0] == 0, run_check(app)[1]
    owner_exec(f'GRANT UPDATE (is_superadmin) ON users TO "{probe_role}"')
    try:
        code, out = run_check(app)
    finally:
        owner_exec(f'REVOKE UPDATE (is_superadmin) ON users FROM "{probe_role}"')
    assert code == 1, out
    assert "[FAIL] runtime role" in out and "UPDATE users.is_superadmin" in out


def test_check_fails_when_the_runtime_role_may_write_an_undeclared_column(app, owner_exec, probe_role):  # noqa: F811
    owner_exec(f'GRANT UPDATE ON organizations TO "{probe_role}"')
    try:
        code, out = run_check(app)
    finally:
        owner_exec(f'REVOKE UPDATE ON organizations FROM "{probe_role}"')
    assert code == 1 and "writes only the declared columns of global tables" in out
    assert "UPDATE organizations.plan_key" in out

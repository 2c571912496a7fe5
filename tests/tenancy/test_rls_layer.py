"""PostgreSQL row-level security on its own: raw SQL as the runtime role, no
ORM, no hooks. Whatever the application code gets wrong, the database still
refuses to show or write another organization's rows."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from app.rls import tenant_tables

SET_ORG = "SELECT set_config('app.org_id', %s, true)"


@pytest.fixture
def tables(owner_engine):
    with owner_engine.connect() as c:
        found = tenant_tables(c)
    assert {"projects", "memberships", "roles"} <= set(found)
    return found


def owner_count(owner_engine, table, org_id) -> int:
    with owner_engine.connect() as c:
        return c.execute(text(f'SELECT count(*) FROM "{table}" WHERE organization_id = :o'), {"o": org_id}).scalar()


def test_runtime_role_is_subject_to_rls(runtime_connect):
    with runtime_connect() as conn:
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (False, False)


def test_acme_transaction_sees_no_globex_row_in_any_tenant_table(world, runtime_connect, owner_engine, tables):
    from app.extensions import db
    from app.rbac.models import Role
    from app.scoping import tenant_context
    from tests import factories as f

    with tenant_context(world.globex.id):
        db.session.add(Role(name="Globex auditors", permissions=["audit:view"]))
        db.session.commit()
    f.make_project(world.globex, "Globex extra")
    # The owner (RLS does not apply to it) sees the globex rows that are there to leak.
    for t in ("projects", "memberships", "roles"):
        assert owner_count(owner_engine, t, world.globex.id) > 0, t
    with runtime_connect() as conn, conn.transaction():
        conn.execute(SET_ORG, (str(world.acme.id),))
        for t in tables:
            foreign = conn.execute(
                f'SELECT count(*) FROM "{t}" WHERE organization_id IS DISTINCT FROM %s', (world.acme.id,)
            ).fetchone()[0]
            assert foreign == 0, f"{t}: acme's transaction sees {foreign} rows of other organizations"
            assert (
                conn.execute(f'SELECT count(*) FROM "{t}" WHERE organization_id = %s', (world.globex.id,)).fetchone()[0]
                == 0
            ), t
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 3


def test_insert_with_another_org_id_is_refused_in_every_tenant_table(world, runtime_connect, tables):
    """WITH CHECK runs before NOT NULL, CHECK and key constraints, so a bare
    ``INSERT (organization_id)`` is refused by the policy in any tenant table
    (by the missing privilege, earlier still, in the tables only the
    platform writes)."""
    from app.rls import PLATFORM_WRITTEN_TABLES

    with runtime_connect() as conn, conn.transaction():
        conn.execute(SET_ORG, (str(world.acme.id),))
        for t in tables:
            refusal = "permission denied" if t in PLATFORM_WRITTEN_TABLES else "row-level security"
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
                with conn.transaction():  # a savepoint per table
                    conn.execute(f'INSERT INTO "{t}" (organization_id) VALUES (%s)', (world.globex.id,))


def test_a_complete_project_row_for_globex_is_refused_and_for_acme_accepted(world, runtime_connect, owner_engine):
    with runtime_connect() as conn, conn.transaction():
        conn.execute(SET_ORG, (str(world.acme.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                conn.execute(
                    "INSERT INTO projects (organization_id, id, name) VALUES (%s, gen_random_uuid(), 'x')",
                    (world.globex.id,),
                )
        conn.execute(
            "INSERT INTO projects (organization_id, id, name) VALUES (%s, gen_random_uuid(), 'ok')",
            (world.acme.id,),
        )
    assert owner_count(owner_engine, "projects", world.acme.id) == 4
    assert owner_count(owner_engine, "projects", world.globex.id) == 3


def test_rows_cannot_be_moved_to_or_changed_in_another_org(world, runtime_connect, owner_engine):
    with runtime_connect() as conn, conn.transaction():
        conn.execute(SET_ORG, (str(world.acme.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                conn.execute("UPDATE projects SET organization_id = %s", (world.globex.id,))
        assert (
            conn.execute("UPDATE projects SET name = 'x' WHERE organization_id = %s", (world.globex.id,)).rowcount == 0
        )
        assert conn.execute("DELETE FROM projects WHERE organization_id = %s", (world.globex.id,)).rowcount == 0
    with owner_engine.connect() as c:
        names = (
            c.execute(
                text("SELECT name FROM projects WHERE organization_id = :g ORDER BY name"), {"g": world.globex.id}
            )
            .scalars()
            .all()
        )
    assert names == ["Globex Secret 0", "Globex Secret 1", "Globex Secret 2"]


def test_with_no_org_set_tenant_tables_return_nothing(world, runtime_connect, tables):
    with runtime_connect() as conn:
        for t in tables:
            assert conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0, t
        conn.rollback()
        with conn.transaction():
            conn.execute(SET_ORG, ("",))
            assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 0


def test_the_setting_is_gone_after_commit_on_the_same_connection(world, runtime_connect):
    with runtime_connect() as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.commit()
        with conn.transaction():
            conn.execute(SET_ORG, (str(world.acme.id),))
            assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 3
        # Committed: same connection, same backend, no organization any more.
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        assert conn.execute("SELECT current_setting('app.org_id', true)").fetchone()[0] in ("", None)
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 0
        conn.rollback()
        # Rolled back: gone as well.
        conn.execute(SET_ORG, (str(world.acme.id),))
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 0


ENTER = "SELECT user_id FROM enter_organization(%s, %s)"


def test_enter_organization_returns_only_that_users_membership_of_that_org(world, runtime_connect):
    """The request entry function (migration 0005) runs as the runtime role
    under RLS: it returns the one membership asked for, never a row of an
    organization the user is not in, and leaves the settings for the rest of
    the transaction."""
    acme, globex, users = world.acme.id, world.globex.id, world.users
    with runtime_connect() as conn:
        assert conn.execute(ENTER, (acme, users["member"].id)).fetchall() == [(users["member"].id,)]
        assert conn.execute("SELECT current_setting('app.org_id'), current_setting('app.user_id')").fetchone() == (
            str(acme),
            str(users["member"].id),
        )
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 3
        conn.rollback()
        assert conn.execute(ENTER, (acme, users["globex_owner"].id)).fetchall() == []
        assert conn.execute(ENTER, (globex, users["member"].id)).fetchall() == []
        assert conn.execute(ENTER, (acme, None)).fetchall() == []
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 3  # acme's, and only acme's
        conn.rollback()
        assert conn.execute("SELECT current_setting('app.org_id', true)").fetchone()[0] in ("", None)


def test_enter_organization_runs_as_its_caller_and_only_the_runtime_role_may_call_it(owner_engine, app):
    role = app.config["DATABASE_RUNTIME_ROLE"]
    with owner_engine.connect() as c:
        row = c.execute(
            text(
                "SELECT prosecdef, has_function_privilege(:r, oid, 'EXECUTE'), has_function_privilege('public', oid, 'EXECUTE')"
                " FROM pg_proc WHERE oid = to_regprocedure('public.enter_organization(uuid, uuid)')"
            ),
            {"r": role},
        ).one()
    assert tuple(row) == (False, True, False)

"""PostgreSQL row-level security and the runtime role: the third layer.

Migrations call ``enable(op, table)`` for every table that has
``organization_id``; ``ensure_runtime_role`` and ``grant_runtime`` run after
every upgrade (migrations/env.py), so a table added later is covered too.
``posture()`` is what ``flask --app wsgi check`` reports.
"""
from __future__ import annotations

from sqlalchemy import text

ORG_SETTING = "NULLIF(current_setting('app.org_id', true), '')::uuid"
USER_SETTING = "NULLIF(current_setting('app.user_id', true), '')::uuid"
ALL_ORGS = "current_setting('app.all_orgs', true) = 'on'"

# Tables the runtime role may only INSERT into and SELECT from.
APPEND_ONLY_TABLES: set[str] = set()

# Tables (besides the tenant ones) with extra policies, declared by migrations.
SELF_READ_TABLES = {"memberships"}


def policy_sql(table: str) -> list[str]:
    """The statements that put ``table`` under RLS (idempotent)."""
    stmts = [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"',
        f'CREATE POLICY tenant_isolation ON "{table}" USING (organization_id = {ORG_SETTING} OR {ALL_ORGS})'
        f" WITH CHECK (organization_id = {ORG_SETTING} OR {ALL_ORGS})",
    ]
    if table in SELF_READ_TABLES:
        stmts += [
            f'DROP POLICY IF EXISTS member_self_read ON "{table}"',
            f'CREATE POLICY member_self_read ON "{table}" FOR SELECT USING (user_id = {USER_SETTING})',
        ]
    return stmts


def enable(op, table: str) -> None:
    """Enable and force RLS with the tenant policy on ``table`` (inside a migration)."""
    for stmt in policy_sql(table):
        op.execute(stmt)


def disable(op, table: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
    op.execute(f'DROP POLICY IF EXISTS member_self_read ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


def ensure_runtime_role(conn, role: str, password: str | None) -> None:
    """Create the runtime role if missing: LOGIN, not superuser, no BYPASSRLS, no CREATEROLE/CREATEDB."""
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    q = conn.dialect.identifier_preparer.quote(role)
    if not exists:
        conn.execute(text(f"CREATE ROLE {q} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"))
    else:
        conn.execute(text(f"ALTER ROLE {q} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
    if password:
        conn.execute(text(f"ALTER ROLE {q} PASSWORD :p"), {"p": password})


# Sets a request's RLS settings and returns its membership (migration 0005).
ENTER_FUNCTION = "public.enter_organization(uuid, uuid)"
# Functions the runtime role calls; PUBLIC may call none of them (0005, 0007).
# member_search_ids exists only where pg_trgm does (0003).
RUNTIME_FUNCTIONS = (ENTER_FUNCTION, "public.member_search_ids(text)")


def grant_runtime(conn, role: str) -> None:
    """Give the runtime role exactly the privileges the app needs, nothing it does not."""
    q = conn.dialect.identifier_preparer.quote(role)
    db = conn.execute(text("SELECT current_database()")).scalar()
    conn.execute(text(f'GRANT CONNECT ON DATABASE "{db}" TO {q}'))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {q}"))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {q}"))
    conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {q}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {q}"))
    conn.execute(text(f"REVOKE ALL ON alembic_version FROM {q}"))
    conn.execute(text(f"GRANT SELECT ON alembic_version TO {q}"))
    for table in sorted(APPEND_ONLY_TABLES):
        exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar()
        if exists:
            conn.execute(text(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM {q}'))
    for fn in RUNTIME_FUNCTIONS:
        if conn.execute(text("SELECT to_regprocedure(:f)"), {"f": fn}).scalar():
            conn.execute(text(f"GRANT EXECUTE ON FUNCTION {fn} TO {q}"))


def tenant_tables(conn) -> list[str]:
    """Every table in ``public`` that has an ``organization_id`` column."""
    return list(
        conn.execute(
            text(
                "SELECT c.table_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema "
                "WHERE c.table_schema = 'public' AND c.column_name = 'organization_id' AND t.table_type = 'BASE TABLE' "
                "ORDER BY 1"
            )
        ).scalars()
    )


def posture(conn, role: str) -> list[tuple[str, bool, str]]:
    """The security checks: ``(check, ok, detail)`` rows."""
    out: list[tuple[str, bool, str]] = []
    r = conn.execute(
        text("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = :r"),
        {"r": role},
    ).first()
    if r is None:
        return [(f"runtime role {role} exists", False, "missing: run the migrations")]
    out.append((f"runtime role {role} exists and can log in", bool(r.rolcanlogin), ""))
    out.append((f"runtime role {role} is not a superuser", not r.rolsuper, ""))
    out.append((f"runtime role {role} has no BYPASSRLS", not r.rolbypassrls, ""))
    out.append((f"runtime role {role} cannot create roles or databases", not (r.rolcreaterole or r.rolcreatedb), ""))
    owned = conn.execute(
        text("SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner "
             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE o.rolname = :r AND n.nspname = 'public'"),
        {"r": role},
    ).scalar()
    out.append((f"runtime role {role} owns no table", owned == 0, f"owns {owned}" if owned else ""))
    member_of = conn.execute(
        text("SELECT string_agg(g.rolname, ', ') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
             "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = :r"),
        {"r": role},
    ).scalar()
    out.append((f"runtime role {role} inherits no other role", not member_of, member_of or ""))
    tables = tenant_tables(conn)
    out.append(("tenant tables found", bool(tables), ", ".join(tables)))
    for t in tables:
        row = conn.execute(
            text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(:t)"),
            {"t": f"public.{t}"},
        ).first()
        out.append((f"{t}: RLS enabled", bool(row and row.relrowsecurity), ""))
        out.append((f"{t}: RLS forced", bool(row and row.relforcerowsecurity), ""))
        pol = conn.execute(
            text("SELECT qual, with_check FROM pg_policies WHERE schemaname = 'public' AND tablename = :t "
                 "AND policyname = 'tenant_isolation'"),
            {"t": t},
        ).first()
        ok = bool(pol and "app.org_id" in (pol.qual or "") and "app.org_id" in (pol.with_check or ""))
        out.append((f"{t}: tenant policy with USING and WITH CHECK on app.org_id", ok, ""))
    fn = conn.execute(
        text("SELECT p.prosecdef, has_function_privilege(:r, p.oid, 'EXECUTE') AS runtime_may,"
             " has_function_privilege('public', p.oid, 'EXECUTE') AS public_may"
             " FROM pg_proc p WHERE p.oid = to_regprocedure(:f)"),
        {"r": role, "f": ENTER_FUNCTION},
    ).first()
    out.append((f"{ENTER_FUNCTION} exists", fn is not None, "" if fn else "missing: run the migrations"))
    if fn is not None:
        out.append((f"{ENTER_FUNCTION} runs as its caller (SECURITY INVOKER)", not fn.prosecdef, ""))
        out.append((f"{ENTER_FUNCTION} is callable by {role} only", fn.runtime_may and not fn.public_may,
                    "" if fn.runtime_may else f"{role} lacks EXECUTE"))
    definers = conn.execute(
        text("SELECT p.oid::regprocedure::text AS name, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may"
             " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
             " WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1")
    ).all()
    exposed = [d.name for d in definers if d.public_may]
    out.append(("SECURITY DEFINER functions are not executable by PUBLIC", not exposed,
                ", ".join(exposed) if exposed else f"{len(definers)} checked"))
    for t in sorted(APPEND_ONLY_TABLES):
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{t}"}).scalar() is None:
            continue
        bad = [
            p for p in ("UPDATE", "DELETE", "TRUNCATE")
            if conn.execute(text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": f"public.{t}", "p": p}).scalar()
        ]
        out.append((f"{t}: runtime role may only INSERT and SELECT", not bad, ", ".join(bad)))
    return out

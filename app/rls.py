"""PostgreSQL row-level security and the runtime role: the third layer.

Migrations call ``enable(op, table)`` for every table that has
``organization_id``; ``ensure_runtime_role`` and ``grant_runtime`` run after
every upgrade (migrations/env.py), so a table added later is covered too.
``posture()`` is what ``flask --app wsgi check`` reports.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

ORG_SETTING = "NULLIF(current_setting('app.org_id', true), '')::uuid"

# The only settings a policy may read: the organization (and, for policies
# that may come, the user) the transaction acts for. Neither widens what the
# runtime role sees: app.org_id names one organization, never all of them.
# `flask check` fails on a policy that reads any other setting.
POLICY_SETTINGS = frozenset({"app.org_id", "app.user_id"})

# Tables the runtime role may only INSERT into and SELECT from.
APPEND_ONLY_TABLES: set[str] = set()

# Tenant tables only the platform writes (the cross-organization role): the
# runtime role may read its organization's rows and change none. An
# organization's admins must not grant themselves a limit or a feature.
PLATFORM_WRITTEN_TABLES = frozenset({"entitlement_overrides"})


class AllBut(tuple):
    """Every column of the table except these (for INSERT: a new row may
    carry any column but the ones that grant power)."""


# What the runtime role may write in the global tables (those without
# organization_id), column by column: what a request writes and nothing
# more. It may SELECT every global table and write no other column; above
# all it cannot set users.is_superadmin, nor change an organization's plan or
# status. A global table missing here is read-only to it (fail closed), and
# it may DELETE from none of them.
RUNTIME_GLOBAL_WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    "users": {
        "INSERT": AllBut(("is_superadmin", "disabled_at")),
        "UPDATE": (
            "email",
            "name",
            "password_hash",
            "email_verified_at",
            "password_changed_at",
            "last_org_id",
            # The security e-mails the user turned off (0024, app.auth.notifications).
            "security_mail_muted",
        ),
    },
    # authenticated_at (0023): set at log-in and by a step-up.
    "user_sessions": {"INSERT": AllBut(), "UPDATE": ("last_seen_at", "revoked_at", "authenticated_at")},
    "auth_handoffs": {"INSERT": AllBut(), "UPDATE": ("used_at",)},
    "password_resets": {"INSERT": AllBut(), "UPDATE": ("used_at",)},
    # Second factors (0022): enrolled, confirmed, used, removed by their owner.
    "totp_factors": {"INSERT": AllBut(), "UPDATE": ("confirmed_at", "last_used_step", "removed_at")},
    "recovery_codes": {"INSERT": AllBut(), "UPDATE": ("used_at", "revoked_at")},
    # Personal data (0023): a person asks for an export of their data and
    # downloads it; deletes their account. The worker (cross-organization
    # role) builds and expires exports; the erasure runs as the owner.
    "personal_exports": {"INSERT": AllBut(), "UPDATE": ("downloaded_at",)},
    "account_deletions": {"INSERT": AllBut()},
    # Passkeys: registered, renamed, used (counter), removed by their
    # owner; a challenge is drawn, then claimed once.
    "webauthn_credentials": {"INSERT": AllBut(), "UPDATE": ("name", "sign_count", "last_used_at", "removed_at")},
    "webauthn_challenges": {"INSERT": AllBut(), "UPDATE": ("used_at",)},
    "organizations": {
        # A signed-in user creates an organization (the ORM writes every
        # nullable column, as NULL; the status is left to the server's
        # 'active'); its admins rename it and its owner deletes it.
        # webhook_actions: only the trigger on webhook_endpoints writes it (0015);
        # entitlement_overrides and member_count: only the platform (0018, 0019).
        "INSERT": AllBut(("status", "suspension_reason", "webhook_actions", "entitlement_overrides", "member_count")),
        # version: bumped with every update (edit forms carry it). The custom
        # host: set by its admins on a domain they verified (app.domains), the
        # one column a host is resolved by. slug: its admins change its
        # address (the old one is kept in retired_slugs).
        "UPDATE": (
            "name",
            "slug",
            "settings",
            "deleted_at",
            "version",
            "custom_domain",
            "custom_domain_verified_at",
        ),
    },
    # An organization that changes its slug keeps the old one for 30 days
    # (app.tenancy.services.change_slug); a slug retired again moves to it.
    "retired_slugs": {"INSERT": AllBut(), "UPDATE": ("org_id", "retired_at", "expires_at")},
    # Enqueueing a job (app/jobs): procrastinate_defer_jobs_v1 inserts the
    # job, and its trigger the job's first event. Nothing else of the queue.
    "procrastinate_jobs": {
        "INSERT": ("queue_name", "task_name", "priority", "lock", "queueing_lock", "args", "scheduled_at"),
    },
    "procrastinate_events": {"INSERT": ("job_id", "type", "at")},
}

# The job queue (migration 0009) holds every organization's jobs, their
# arguments (addresses, rendered mails) included: the runtime role may add
# a job and learn its id, and read nothing else of it. Workers work the
# queue as the cross-organization role. `flask check` fails on any other
# column the runtime role may read.
QUEUE_TABLES = frozenset(
    {
        "procrastinate_jobs",
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_workers",
        "job_errors",
    }
)
RUNTIME_QUEUE_READS: dict[str, tuple[str, ...]] = {"procrastinate_jobs": ("id",)}  # INSERT ... RETURNING id


def _allowed_columns(table: str, privilege: str, columns: set[str]) -> set[str]:
    wanted = RUNTIME_GLOBAL_WRITES.get(table, {}).get(privilege, ())
    if isinstance(wanted, AllBut):
        return columns - set(wanted)
    return columns & set(wanted)  # a downgraded schema may lack some


# Columns the runtime role must never be able to write: `flask check` fails
# when it can.
RUNTIME_FORBIDDEN_COLUMNS = (
    ("users", "is_superadmin", ("INSERT", "UPDATE")),
    ("organizations", "plan_key", ("UPDATE",)),
    ("organizations", "status", ("INSERT", "UPDATE")),
    ("organizations", "suspension_reason", ("INSERT", "UPDATE")),
    ("users", "disabled_at", ("INSERT", "UPDATE")),
    ("organizations", "webhook_actions", ("INSERT", "UPDATE")),
    ("organizations", "entitlement_overrides", ("INSERT", "UPDATE")),
    ("organizations", "member_count", ("INSERT", "UPDATE")),
)


def _q(conn, role: str) -> str:
    return conn.dialect.identifier_preparer.quote(role)


def policy_sql(table: str, cross_org_role: str) -> list[str]:
    """The statements that put ``table`` under RLS (idempotent).

    Two permissive policies: ``tenant_isolation`` for everyone (the runtime
    role among them) sees the rows of ``app.org_id`` only; and
    ``cross_organization`` gives every row to the cross-organization role
    and to the migrating owner (``CURRENT_USER`` when this runs: the owner can
    switch RLS off anyway, and its SECURITY DEFINER functions - the member
    search, the trigger that copies a user's new name into every
    membership - need to read across organizations).
    """
    cross = '"' + cross_org_role.replace('"', '""') + '"'
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"',
        f'CREATE POLICY tenant_isolation ON "{table}" USING (organization_id = {ORG_SETTING})'
        f" WITH CHECK (organization_id = {ORG_SETTING})",
        f'DROP POLICY IF EXISTS member_self_read ON "{table}"',  # replaced by the cross-organization role (0008)
        f'DROP POLICY IF EXISTS cross_organization ON "{table}"',
        f'CREATE POLICY cross_organization ON "{table}" TO {cross}, CURRENT_USER USING (true) WITH CHECK (true)',
    ]


def _cross_org_role() -> str:
    from flask import current_app

    return current_app.config["DATABASE_CROSS_ORG_ROLE"]


def enable(op, table: str) -> None:
    """Enable and force RLS with the tenant policies on ``table`` (inside a migration)."""
    for stmt in policy_sql(table, _cross_org_role()):
        op.execute(stmt)


def disable(op, table: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
    op.execute(f'DROP POLICY IF EXISTS member_self_read ON "{table}"')
    op.execute(f'DROP POLICY IF EXISTS cross_organization ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


# A CREATE ROLE that lost the race: unique_violation while the other
# transaction was open, duplicate_object once it had committed.
_ALREADY_EXISTS = ("23505", "42710")


def ensure_role(conn, role: str, password: str | None) -> None:
    """Create ``role`` if missing: LOGIN, not superuser, no BYPASSRLS, no CREATEROLE/CREATEDB, inheriting nothing.

    Used for both the runtime role and the cross-organization role. Roles are
    global to the server; migrations/env.py calls this before migrating, so
    the policies can name them.

    Roles being global, databases of one server that migrate at the same
    moment (the test suite's parallel workers) race here, and their
    migration locks, one per database, do not serialise them: a role is
    altered only when it holds a power it must not (concurrent ALTER ROLEs
    fail with "tuple concurrently updated"), and a CREATE that lost the race
    to another database's is as good as its own.
    """
    q = _q(conn, role)
    powers = conn.execute(
        text("SELECT rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = :r"),
        {"r": role},
    ).scalar()
    if powers is None:
        try:
            with conn.begin_nested():
                conn.execute(text(f"CREATE ROLE {q} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"))
        except (IntegrityError, ProgrammingError) as e:
            if getattr(e.orig, "sqlstate", None) not in _ALREADY_EXISTS:
                raise
    elif powers:
        conn.execute(text(f"ALTER ROLE {q} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
    if password:
        conn.execute(text(f"ALTER ROLE {q} PASSWORD :p"), {"p": password})


ensure_runtime_role = ensure_role  # the name migrations and tests know


# Sets a request's RLS settings and returns its membership (migration 0005).
ENTER_FUNCTION = "public.enter_organization(uuid, uuid)"
# Functions the runtime role calls; PUBLIC may call none of them (0005, 0007).
# member_search_ids exists only where pg_trgm does (0003).
RUNTIME_FUNCTIONS = (ENTER_FUNCTION, "public.member_search_ids(text)")


def _table_columns(conn, table: str) -> set[str]:
    return set(
        conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :t"
            ),
            {"t": table},
        ).scalars()
    )


def _public_tables(conn) -> list[str]:
    return list(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars())


def _reset_privileges(conn, role: str) -> str:
    """Let ``role`` connect and use the schema (never create in it), and take
    back every table privilege, so the caller grants from nothing and a
    privilege dropped from the lists is revoked too. Returns the quoted role."""
    q = _q(conn, role)
    db = conn.execute(text("SELECT current_database()")).scalar()
    conn.execute(text(f'GRANT CONNECT ON DATABASE "{db}" TO {q}'))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {q}"))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {q}"))
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {q}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {q}"))
    return q


def grant_runtime(conn, role: str) -> None:
    """Give the runtime role exactly the privileges the app needs, nothing it does not.

    Tenant tables: SELECT, INSERT, UPDATE, DELETE (row-level security limits
    them to one organization), except the append-only ones (INSERT and
    SELECT). Global tables: SELECT, and the columns of
    ``RUNTIME_GLOBAL_WRITES``; the job queue's tables (``QUEUE_TABLES``):
    only what enqueueing needs, no SELECT but the new job's id.
    Idempotent: re-applied after every upgrade.
    """
    q = _reset_privileges(conn, role)
    tenant = set(tenant_tables(conn))
    for table in _public_tables(conn):
        t = f'"{table}"'
        if table == "alembic_version":
            conn.execute(text(f"GRANT SELECT ON {t} TO {q}"))
        elif table in APPEND_ONLY_TABLES:
            conn.execute(text(f"GRANT SELECT, INSERT ON {t} TO {q}"))
        elif table in PLATFORM_WRITTEN_TABLES:
            conn.execute(text(f"GRANT SELECT ON {t} TO {q}"))
        elif table in tenant:
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {q}"))
        else:
            if table in QUEUE_TABLES:
                reads = RUNTIME_QUEUE_READS.get(table, ())
                if reads:
                    conn.execute(text(f"GRANT SELECT ({', '.join(reads)}) ON {t} TO {q}"))
            else:
                conn.execute(text(f"GRANT SELECT ON {t} TO {q}"))
            columns = _table_columns(conn, table)
            for privilege in RUNTIME_GLOBAL_WRITES.get(table, {}):
                cols = sorted(_allowed_columns(table, privilege, columns))
                if cols:
                    conn.execute(text(f"GRANT {privilege} ({', '.join(cols)}) ON {t} TO {q}"))
    for fn in RUNTIME_FUNCTIONS:
        if conn.execute(text("SELECT to_regprocedure(:f)"), {"f": fn}).scalar():
            conn.execute(text(f"GRANT EXECUTE ON FUNCTION {fn} TO {q}"))


def grant_cross_org(conn, role: str) -> None:
    """Give the cross-organization role what platform work needs.

    Every table's rows (the ``cross_organization`` policies), with the same
    append-only rule on the audit tables; no function of the request path.
    """
    q = _reset_privileges(conn, role)
    for table in _public_tables(conn):
        t = f'"{table}"'
        if table == "alembic_version":
            conn.execute(text(f"GRANT SELECT ON {t} TO {q}"))
        elif table in APPEND_ONLY_TABLES:
            conn.execute(text(f"GRANT SELECT, INSERT ON {t} TO {q}"))
        else:
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {q}"))


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


def _role_checks(conn, role: str, what: str) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    r = conn.execute(
        text("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = :r"),
        {"r": role},
    ).first()
    if r is None:
        return [(f"{what} role {role} exists", False, "missing: run the migrations")]
    out.append((f"{what} role {role} exists and can log in", bool(r.rolcanlogin), ""))
    out.append((f"{what} role {role} is not a superuser", not r.rolsuper, ""))
    out.append((f"{what} role {role} has no BYPASSRLS", not r.rolbypassrls, ""))
    out.append((f"{what} role {role} cannot create roles or databases", not (r.rolcreaterole or r.rolcreatedb), ""))
    owned = conn.execute(
        text(
            "SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE o.rolname = :r AND n.nspname = 'public'"
        ),
        {"r": role},
    ).scalar()
    out.append((f"{what} role {role} owns no table", owned == 0, f"owns {owned}" if owned else ""))
    member_of = conn.execute(
        text(
            "SELECT string_agg(g.rolname, ', ') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = :r"
        ),
        {"r": role},
    ).scalar()
    out.append((f"{what} role {role} is a member of no other role", not member_of, member_of or ""))
    return out


_SETTING_RE = re.compile(r"current_setting\(\s*'([^']*)'")


def policy_settings(expr: str | None) -> set[str]:
    """The settings a policy expression reads (``current_setting('x', ...)``)."""
    return set(_SETTING_RE.findall(expr or ""))


def posture(conn, role: str, cross_org_role: str | None = None) -> list[tuple[str, bool, str]]:
    """The security checks: ``(check, ok, detail)`` rows."""
    out = _role_checks(conn, role, "runtime")
    if cross_org_role:
        out += _role_checks(conn, cross_org_role, "cross-organization")
    if len(out) == 1 and not out[0][1]:
        return out
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
            text(
                "SELECT qual, with_check FROM pg_policies WHERE schemaname = 'public' AND tablename = :t "
                "AND policyname = 'tenant_isolation'"
            ),
            {"t": t},
        ).first()
        ok = bool(pol and "app.org_id" in (pol.qual or "") and "app.org_id" in (pol.with_check or ""))
        out.append((f"{t}: tenant policy with USING and WITH CHECK on app.org_id", ok, ""))
    # No setting the runtime role can make may widen what it sees: every
    # policy reads only the organization and user ids, and every policy that
    # applies to the runtime role (by name or through PUBLIC) is the
    # organization filter itself.
    policies = conn.execute(
        text(
            "SELECT tablename, policyname, roles::text[] AS roles, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' ORDER BY tablename, policyname"
        )
    ).all()
    other = sorted(
        {
            f"{p.tablename}.{p.policyname}: {s}"
            for p in policies
            for s in policy_settings(p.qual) | policy_settings(p.with_check)
            if s not in POLICY_SETTINGS
        }
    )
    out.append(
        (
            "policies read no setting but app.org_id and app.user_id",
            not other,
            "; ".join(other) if other else f"{len(policies)} policies checked",
        )
    )
    wide = [
        f"{p.tablename}.{p.policyname}"
        for p in policies
        if ({"public", role} & set(p.roles or ()))
        and not all("app.org_id" in (e or "app.org_id") for e in (p.qual, p.with_check))
    ]
    out.append((f"every policy that applies to {role} filters by app.org_id", not wide, ", ".join(wide)))
    if cross_org_role:
        missing = [
            t
            for t in tables
            if not any(
                p.tablename == t and p.policyname == "cross_organization" and cross_org_role in (p.roles or ())
                for p in policies
            )
        ]
        out.append(
            (
                f"every tenant table has a cross_organization policy for {cross_org_role}",
                not missing,
                ", ".join(missing),
            )
        )
    # Column privileges on the global tables: nothing beyond the declared list.
    bad_cols = [
        f"{p} {t}.{c}"
        for t, c, privileges in RUNTIME_FORBIDDEN_COLUMNS
        for p in privileges
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{t}"}).scalar() is not None
        and conn.execute(
            text("SELECT has_column_privilege(:r, :t, :c, :p)"), {"r": role, "t": f"public.{t}", "c": c, "p": p}
        ).scalar()
    ]
    out.append(
        (
            f"runtime role {role} cannot write users.is_superadmin nor an organization's plan or status",
            not bad_cols,
            ", ".join(bad_cols),
        )
    )
    tenant = set(tables)
    extra = []
    for table in _public_tables(conn):
        if table in tenant or table == "alembic_version":
            continue
        columns = _table_columns(conn, table)
        for privilege in ("INSERT", "UPDATE"):
            allowed = _allowed_columns(table, privilege, columns)
            for col in sorted(columns):
                may = conn.execute(
                    text("SELECT has_column_privilege(:r, :t, :c, :p)"),
                    {"r": role, "t": f"public.{table}", "c": col, "p": privilege},
                ).scalar()
                if may and col not in allowed:
                    extra.append(f"{privilege} {table}.{col}")
        for privilege in ("DELETE", "TRUNCATE"):
            if conn.execute(
                text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": f"public.{table}", "p": privilege}
            ).scalar():
                extra.append(f"{privilege} {table}")
    out.append(
        (
            f"runtime role {role} writes only the declared columns of global tables",
            not extra,
            ", ".join(extra) if extra else "",
        )
    )
    queue_reads = [
        f"{table}.{col}"
        for table in sorted(QUEUE_TABLES)
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar() is not None
        for col in sorted(_table_columns(conn, table))
        if col not in RUNTIME_QUEUE_READS.get(table, ())
        and conn.execute(
            text("SELECT has_column_privilege(:r, :t, :c, 'SELECT')"), {"r": role, "t": f"public.{table}", "c": col}
        ).scalar()
    ]
    out.append(
        (
            f"runtime role {role} may add jobs but read none (no job's arguments, no other organization's work)",
            not queue_reads,
            ", ".join(queue_reads),
        )
    )
    fn = conn.execute(
        text(
            "SELECT p.prosecdef, has_function_privilege(:r, p.oid, 'EXECUTE') AS runtime_may,"
            " has_function_privilege('public', p.oid, 'EXECUTE') AS public_may"
            " FROM pg_proc p WHERE p.oid = to_regprocedure(:f)"
        ),
        {"r": role, "f": ENTER_FUNCTION},
    ).first()
    out.append((f"{ENTER_FUNCTION} exists", fn is not None, "" if fn else "missing: run the migrations"))
    if fn is not None:
        out.append((f"{ENTER_FUNCTION} runs as its caller (SECURITY INVOKER)", not fn.prosecdef, ""))
        out.append(
            (
                f"{ENTER_FUNCTION} is callable by {role} only",
                fn.runtime_may and not fn.public_may,
                "" if fn.runtime_may else f"{role} lacks EXECUTE",
            )
        )
    definers = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text AS name, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1"
        )
    ).all()
    exposed = [d.name for d in definers if d.public_may]
    out.append(
        (
            "SECURITY DEFINER functions are not executable by PUBLIC",
            not exposed,
            ", ".join(exposed) if exposed else f"{len(definers)} checked",
        )
    )
    for t in sorted(APPEND_ONLY_TABLES):
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{t}"}).scalar() is None:
            continue
        bad = [
            p
            for p in ("UPDATE", "DELETE", "TRUNCATE")
            if conn.execute(
                text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": f"public.{t}", "p": p}
            ).scalar()
        ]
        out.append((f"{t}: runtime role may only INSERT and SELECT", not bad, ", ".join(bad)))
    return out

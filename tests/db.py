"""The test database: a fresh PostgreSQL database, migrated once per run.

``TEST_DATABASE_URL`` (owner credentials) names a server and a database; the
suite drops and recreates that database, so never point it at one you keep.
Without it, an embedded PostgreSQL is started in ``instance/pgdata-test``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app import config as app_config
from app.database import embedded_owner_url, normalise

ROOT = Path(__file__).resolve().parent.parent


def owner_url(worker: str = "") -> str:
    """Owner URL of a freshly (re)created test database."""
    configured = app_config.test_database_url()
    suffix = f"_{worker}" if worker and worker != "master" else ""
    # Lets several suites run side by side on one server without dropping
    # each other's database.
    extra = app_config.environ("TENANTRY_TEST_DB_SUFFIX")
    if extra:
        suffix += "_" + "".join(ch for ch in extra.lower() if ch.isalnum())
    if configured:
        url = make_url(normalise(configured))
        dbname = (url.database or "tenantry_test") + suffix
        admin = create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{dbname}"'))
        admin.dispose()
        return url.set(database=dbname).render_as_string(hide_password=False)
    pgdata = ROOT / "instance" / "pgdata-test"
    base = make_url(embedded_owner_url(pgdata, dbname="postgres"))
    dbname = "tenantry_test" + suffix
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{dbname}"'))
    admin.dispose()
    return base.set(database=dbname).render_as_string(hide_password=False)


KEEP_TABLES = {"alembic_version", "plans"}


def truncate_all(engine) -> None:
    """Empty every table but the reference ones (plans, alembic_version)."""
    with engine.begin() as c:
        tables = [
            r[0]
            for r in c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            if r[0] not in KEEP_TABLES
        ]
        if tables:
            c.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))

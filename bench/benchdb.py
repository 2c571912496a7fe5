"""Shared by the benchmarks: the database they load (never a test's)."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (never drops one)."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}).scalar():
            c.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()

"""Shared by the benchmarks: the database they load (never a test's)."""

from __future__ import annotations

import statistics

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


def pct(values, p):
    """The ``p``-th percentile of ``values`` (nearest rank; NaN when empty)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def report(label: str, samples: list[float], digits: int = 1) -> None:
    """One line: the label and the samples' (seconds) p50, p99 and max in milliseconds."""
    ms = [x * 1000 for x in samples]
    print(
        f"  {label:<52} p50 {statistics.median(ms):7.{digits}f}   p99 {pct(ms, 99):7.{digits}f}"
        f"   max {max(ms):7.{digits}f} ms"
    )


def migrated_app(url: str, apex: str):
    """The app on ``url`` as a benchmark drives it in process (no rate limits,
    no CSRF, warnings only), with the database migrated to the heads."""
    import logging

    from flask_migrate import upgrade

    from app import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "TENANTRY_SERVER_NAME": apex,
            "RATELIMIT_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("tenantry", "tenantry.request", "tenantry.tenancy", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with app.app_context():
        upgrade(revision="heads")
    return app

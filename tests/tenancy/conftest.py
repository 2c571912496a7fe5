"""Fixtures for the isolation tests: fresh request contexts, a raw
connection as the runtime role, and a globex world with a row in every
tenant table the matrix aims at."""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.fresh_client import fresh_requests  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):
    """Requests run in their own app context and session, as in production."""


def psycopg_kwargs(sqlalchemy_url: str) -> dict:
    """psycopg ``connect()`` arguments for a SQLAlchemy URL (TCP or a socket directory)."""
    u = make_url(sqlalchemy_url)
    kw = {
        "user": u.username,
        "password": u.password,
        "dbname": u.database,
        "host": u.host or u.query.get("host"),
        "port": u.port,
    }
    return {k: v for k, v in kw.items() if v}


@pytest.fixture
def runtime_connect(app):
    """``with runtime_connect() as conn:`` a plain psycopg connection as the
    runtime role (what the app uses; no ORM, no hooks)."""

    @contextlib.contextmanager
    def connect():
        conn = psycopg.connect(**psycopg_kwargs(app.config["SQLALCHEMY_DATABASE_URI"]))
        try:
            yield conn
        finally:
            conn.close()

    return connect

"""Fixtures for the personal data tests: a clean anchor file per test (the
audit tables are emptied per test, and verification compares with it)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_anchors(app):
    from app.auditlog import anchors

    with app.app_context():
        p = anchors.path()
    if p.exists():
        p.unlink()
    yield


@pytest.fixture
def settle_erasure(advance_jobs, owner_engine):
    """``settle_erasure()`` runs the jobs until every deleted account is
    erased: the erasure waits (retrying) for the sealer, whose horizon any
    open transaction on the server holds back for a moment."""
    import time

    from sqlalchemy import text

    def settle(timeout: float = 300):
        deadline = time.monotonic() + timeout
        while True:
            advance_jobs()
            with owner_engine.connect() as c:
                left = c.execute(text("SELECT count(*) FROM account_deletions WHERE completed_at IS NULL")).scalar()
            if not left:
                return
            assert time.monotonic() < deadline, "the erasure did not finish"
            time.sleep(2)

    return settle

"""Fixtures for the audit tests: reading events as the owner, sealing and
verifying through the real CLI code, and a clean anchor file per test."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture(autouse=True)
def _fresh_anchors(app):
    """Each test starts with no anchored chain heads (tables are emptied per test)."""
    from app.auditlog import anchors

    with app.app_context():
        p = anchors.path()
    if p.exists():
        p.unlink()
    yield


@pytest.fixture
def events(owner_engine):
    """``events(org=None, action=None)`` → every event row (dicts), oldest first, read as the owner."""

    def _events(org=None, action=None):
        q = "SELECT * FROM audit_events WHERE true"
        params = {}
        if org is not None:
            q += " AND organization_id = :o"
            params["o"] = getattr(org, "id", org)
        if action is not None:
            q += " AND action = :a"
            params["a"] = action
        with owner_engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(q + " ORDER BY id"), params)]

    return _events


@pytest.fixture
def owner_sql(owner_engine):
    """``owner_sql(sql, **params)``: run tampering SQL as the owner (committed)."""

    def _run(sql, **params):
        with owner_engine.begin() as c:
            return c.execute(text(sql), params)

    return _run


def settle(slug=None, timeout: float = 20.0):  # noqa: ARG001 (every organization is sealed)
    """Seal until every committed, validly signed event is sealed.

    The sealer only takes events whose transaction is older than the oldest
    transaction still running anywhere on the server (other test suites
    share it), so one run may leave recent events pending. Returns the
    merged results per organization id.
    """
    import time

    from app.auditlog.sealing import seal_all
    from app.database import CROSS_ORG_BIND
    from app.extensions import db

    merged = {}
    deadline = time.monotonic() + timeout
    while True:
        for r in seal_all(db.engine):
            m = merged.setdefault(r.organization_id, r)
            if m is not r:
                m.sealed += r.sealed
                m.rejected = sorted(set(m.rejected) | set(r.rejected))
                m.head_seq, m.head_chain = r.head_seq, r.head_chain
        # Counted as the cross-organization role: the runtime role sees no
        # organization's events here, and would call every chain settled.
        with db.engines[CROSS_ORG_BIND].connect() as c:
            unsealed = c.execute(
                text(
                    "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_seals s"
                    " WHERE s.organization_id = e.organization_id AND s.event_id = e.id)"
                )
            ).scalar()
        rejected = sum(len(m.rejected) for m in merged.values())
        if unsealed <= rejected or time.monotonic() > deadline:
            return merged
        time.sleep(0.05)


@pytest.fixture
def seal(app):
    """``seal(slug=None)`` → ``{org_id: SealResult}`` once everything committed is sealed."""
    return settle


@pytest.fixture
def verify(app):
    """``verify(slug)`` → the VerifyResult of that organization (after sealing everything)."""

    def _verify(slug=None):
        from app.auditlog.verification import verify_all
        from app.extensions import db

        settle(slug)
        results = verify_all(db.engine, slug, seal_first=False)
        return results[0] if slug else results

    return _verify


@pytest.fixture
def record_in(app):
    """``record_in(org, action, **kw)``: record and commit one event as the system."""

    def _record(org, action, **kw):
        from app import audit
        from app.extensions import db
        from app.scoping import tenant_context

        with tenant_context(org.id):
            ev = audit.record(action, **kw)
            db.session.commit()
        return ev

    return _record

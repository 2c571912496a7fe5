"""Fixtures for the analytics tests: back-dated audit events written as the
product writes them (signed rows, sealed by the real sealer)."""

from __future__ import annotations

import pytest

from tests.fresh_client import fresh_requests  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):
    """Requests run in their own app context and session, as in production."""


def write_events(engine, org_id, events) -> list[int]:
    """Insert ``events`` (``(occurred_at, action, user or Actor or None)``) into
    ``org_id``'s log in one transaction on the runtime role, each a full
    signed row (``app.audit.event_row``), ids from the events' sequence."""
    from sqlalchemy import text

    from app import audit
    from app.audit.models import AuditEvent
    from app.database import apply_tenant_settings

    ids = []
    with engine.connect() as conn, conn.begin():
        apply_tenant_settings(conn, org_id)
        rows = []
        for ts, action, user in events:
            eid = conn.execute(text("SELECT nextval('audit_events_id_seq')")).scalar_one()
            if user is None:
                who = audit.Actor.system()
            elif isinstance(user, audit.Actor):
                who = user
            else:
                who = audit.Actor.of_user(user)
            rows.append(audit.event_row(org_id, eid, ts, action, who, target=("organization", str(org_id), "x")))
            ids.append(eid)
        conn.execute(AuditEvent.__table__.insert(), rows)
    return ids


def seal_everything(engine, timeout: float = 60.0) -> None:
    """Seal (and so roll up) until no committed event is left unsealed.

    The sealer takes only transactions older than the oldest one still
    running anywhere on the server (its horizon), and this PostgreSQL is
    shared with other test runs: one pass may legitimately leave recent
    events for the next, as the periodic job would."""
    import time

    from sqlalchemy import text

    from app.auditlog.sealing import seal_all

    deadline = time.monotonic() + timeout
    while True:
        seal_all(engine)
        from app.database import owner_engine

        eng = owner_engine()
        try:
            with eng.connect() as conn:
                left = conn.execute(
                    text(
                        "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_seals s"
                        " WHERE s.organization_id = e.organization_id AND s.event_id = e.id)"
                    )
                ).scalar_one()
        finally:
            eng.dispose()
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{left} event(s) still unsealed after {timeout} s")
        time.sleep(0.1)

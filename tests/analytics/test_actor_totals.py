"""The most active members read kept per-range totals that stay equal to
the raw events: through new events (added from the seals since), a rebuild,
and the retention purge, which also removes the per-member rows older than
its horizon (personal data) while the per-day counts naming nobody stay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.audit import Actor, rollups
from app.auditlog import retention
from app.extensions import db
from app.scoping import tenant_context
from tests.analytics.conftest import seal_everything, write_events


def _events(rnd, users, n, days=120):
    now = datetime.now(UTC)
    return [
        (now - timedelta(days=rnd.uniform(0, days)), "project.updated", rnd.choice(users + [None])) for _ in range(n)
    ]


def _check(org_id, start, end):
    with tenant_context(org_id):
        got = rollups.actor_totals(org_id, start, end)
        assert dict(got) == rollups.raw_actor_totals(org_id, start, end, "UTC")
        assert got == rollups.totals(org_id, "actor", start, end)  # same order too
        top = rollups.actor_totals(org_id, start, end, limit=2)
    db.session.rollback()
    assert top == got[:2]
    return got


def test_actor_totals_equal_raw_events_through_new_events_rebuild_and_retention(world, owner_engine, monkeypatch):
    rnd = random.Random(16)
    users = [Actor.of_user(world.users[r]) for r in ("owner", "admin", "manager", "member", "viewer")]
    org_id = world.acme.id
    engine = db.engine
    write_events(engine, org_id, _events(rnd, users, 80))
    seal_everything(engine)
    today = rollups.today_in("UTC")
    ranges = [
        (today - timedelta(days=89), today),
        (today - timedelta(days=29), today),
        (today - timedelta(days=100), today - timedelta(days=20)),
    ]
    for start, end in ranges:
        assert _check(org_id, start, end)

    # New events: the kept totals are brought up to date from the new seals
    # only (the per-range sum over the rollup is not read again).
    sql = []
    real = rollups._session_rows
    monkeypatch.setattr(rollups, "_session_rows", lambda s, p: sql.append(s) or real(s, p))
    write_events(engine, org_id, _events(rnd, users, 25, days=100))
    seal_everything(engine)
    for start, end in ranges:
        _check(org_id, start, end)
    assert rollups._ACTOR_DELTA in sql and sql.count(rollups._ACTOR_SUMS) == 0

    # Ranges a few days from a kept one (tomorrow's "last 90 days", a week
    # back) are slid from it: only the edge days' rows are read.
    sql.clear()
    for shift in (1, 3, -7):
        start, end = ranges[0]
        _check(org_id, start + timedelta(days=shift), end + timedelta(days=shift))
    assert rollups._ACTOR_DAYS in sql and sql.count(rollups._ACTOR_SUMS) == 0

    rollups.catch_up_all(engine, [org_id], rebuild=True)  # a rebuild: counted again
    for start, end in ranges:
        _check(org_id, start, end)

    # Retention: a horizon 60 days back removes the older events and the
    # per-member rows of the days before it; the counts naming nobody stay.
    days = 100
    monkeypatch.setattr(retention, "_retention_days", lambda conn, o: days)
    now = datetime.now(UTC) + timedelta(days=days - 60)
    (res,) = retention.purge(owner_engine, "acme", now=now)
    cutoff_day = (now - timedelta(days=days)).date()
    # (events out of time order: the purge removes the oldest prefix of the chain only)
    assert res.actor_rows_removed > 0
    with owner_engine.connect() as c:
        old = dict(
            c.execute(
                text("SELECT metric, count(*) FROM analytics_daily WHERE organization_id = :o AND day < :d GROUP BY 1"),
                {"o": org_id, "d": cutoff_day},
            ).all()
        )
    assert "actor" not in old and old.get("total", 0) > 0 and old.get("action", 0) > 0
    for start, end in [
        (cutoff_day + timedelta(days=1), today),
        (cutoff_day + timedelta(days=5), today - timedelta(days=3)),
    ]:
        _check(org_id, start, end)
    with tenant_context(org_id):  # the kept totals of a range reaching before the horizon are recounted
        assert rollups.actor_totals(org_id, *ranges[0]) == rollups.totals(org_id, "actor", *ranges[0])
    db.session.rollback()

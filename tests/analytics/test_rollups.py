"""The daily rollups hold exactly the numbers the raw events give.

The guarantee behind every chart: after any interleaving of concurrent
writers, sealer runs and rollup catch-ups - including a catch-up that
crashes half-way and one that runs twice - the rollups equal what counting
the sealed raw events says, for any range of days, in the organization's
time zone, and nothing of another organization.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from app.audit import Actor, integrity, rollups
from app.auditlog.sealing import seal_all, seal_org
from app.extensions import db
from app.scoping import tenant_context
from tests.analytics.conftest import seal_everything, write_events

ACTIONS = [
    "project.created",
    "project.updated",
    "project.deleted",
    "member.joined",
    "member.removed",
    "auth.login_failed",
    "role.created",
    "org.settings_changed",
]


def _random_events(rnd, users, n, days=120):
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        ts = now - timedelta(days=rnd.uniform(0, days))
        user = rnd.choice(users + [None])  # None: a system event (no member)
        out.append((ts, rnd.choice(ACTIONS), user))
    return out


def _snapshot(org_id):
    with tenant_context(org_id):
        rows = db.session.execute(
            text("SELECT metric, day, dimension, count FROM analytics_daily ORDER BY 1, 2, 3")
        ).all()
        mark = db.session.execute(text("SELECT through_seq FROM analytics_watermarks")).scalar()
    db.session.rollback()
    return [tuple(r) for r in rows], mark


def _assert_equal_to_raw(org_id, rnd, ranges=12):
    zone = "UTC"
    today = rollups.today_in(zone)
    with tenant_context(org_id):
        for _ in range(ranges):
            a = today - timedelta(days=rnd.randrange(0, 130))
            b = today - timedelta(days=rnd.randrange(0, 130))
            start, end = min(a, b), max(a, b)
            assert rollups.series(org_id, "action", start, end) == rollups.raw_series(org_id, start, end, zone)
            assert dict(rollups.totals(org_id, "actor", start, end)) == rollups.raw_actor_totals(
                org_id, start, end, zone
            )
            total = rollups.series(org_id, "total", start, end).get("", {})
            raw = rollups.raw_series(org_id, start, end, zone)
            per_day = {}
            for days in raw.values():
                for d, n in days.items():
                    per_day[d] = per_day.get(d, 0) + n
            assert total == per_day
            act = rollups.actives(org_id, start, end, zone)
            for d in rnd.sample(rollups_days(start, min(end, today)), k=min(5, (min(end, today) - start).days + 1)):
                for n in rollups.ACTIVE_WINDOWS:
                    assert act[n][d] == rollups.raw_actives(org_id, d, n, zone), (d, n)
    db.session.rollback()


def rollups_days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_rollups_equal_raw_events_after_concurrent_writes_and_a_rerun(world):
    """Four writers commit back-dated events in small transactions while the
    sealer (which catches the rollups up) and extra catch-ups run
    concurrently; then one more seal, a re-run and a crashed run. Over random
    ranges, every rollup number equals the raw events' number, and globex's
    events are in globex's numbers only."""
    rnd = random.Random(16)
    # Actors, not ORM users: the writer threads must not touch the test's session.
    acme_users = [
        Actor.of_user(world.users[r]) for r in ("owner", "admin", "manager", "member", "viewer", "consultant")
    ]
    globex_users = [Actor.of_user(world.users["globex_owner"]), Actor.of_user(world.users["globex_member"])]
    acme_id, globex_id = world.acme.id, world.globex.id
    engine = db.engine
    from flask import current_app

    flask_app = current_app._get_current_object()
    errors = []
    stop = threading.Event()

    def writer(seed, org_id, users):
        r = random.Random(seed)
        try:
            with flask_app.app_context():
                for _ in range(12):
                    write_events(engine, org_id, _random_events(r, users, r.randrange(1, 8)))
        except Exception as e:  # surfaced below
            errors.append(e)

    def background():
        try:
            with flask_app.app_context():
                while not stop.is_set():
                    seal_all(engine)
                    rollups.catch_up_all(engine, [acme_id])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i, acme_id, acme_users)) for i in range(3)]
    threads.append(threading.Thread(target=writer, args=(9, globex_id, globex_users)))
    bg = threading.Thread(target=background)
    bg.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    bg.join()
    assert not errors, errors

    seal_everything(engine)
    before = _snapshot(world.acme.id)
    rollups.catch_up_all(engine)  # a re-run with nothing new adds nothing
    assert _snapshot(world.acme.id) == before

    _assert_equal_to_raw(world.acme.id, rnd)
    _assert_equal_to_raw(world.globex.id, rnd, ranges=4)
    acme_total = sum(n for m, _d, _dim, n in before[0] if m == "total")
    with tenant_context(world.acme.id):
        raw = db.session.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    db.session.rollback()
    assert acme_total == raw > 0


def test_a_catch_up_that_crashes_half_way_changes_nothing(world):
    """Counts and mark move in one transaction: a catch-up that fails after
    adding counts leaves both as they were, and the next run counts every
    event exactly once."""
    user = world.users["member"]
    now = datetime.now(UTC)
    engine = db.engine
    write_events(engine, world.acme.id, [(now - timedelta(days=2), "project.created", user)])
    seal_everything(engine)
    before = _snapshot(world.acme.id)

    write_events(engine, world.acme.id, [(now - timedelta(days=1), "project.updated", user)] * 3)
    kid, key = integrity.current_key()
    sealed = 0
    deadline = time.monotonic() + 60
    while sealed < 3 and time.monotonic() < deadline:  # seal without the catch-up (see seal_everything)
        with engine.connect() as conn, conn.begin():
            sealed += seal_org(conn, world.acme.id, integrity.keyring(), key).sealed
        time.sleep(0.05)
    assert sealed == 3
    with pytest.raises(RuntimeError), engine.connect() as conn, conn.begin():
        assert rollups.catch_up(conn, world.acme.id) == 3
        raise RuntimeError("the worker died here")
    assert _snapshot(world.acme.id) == before

    rollups.catch_up_all(engine, [world.acme.id])
    rollups.catch_up_all(engine, [world.acme.id])
    _assert_equal_to_raw(world.acme.id, random.Random(1), ranges=4)
    with tenant_context(world.acme.id):
        assert rollups.series(world.acme.id, "action", now.date() - timedelta(days=3), now.date()) == {
            "project.created": {(now - timedelta(days=2)).date(): 1},
            "project.updated": {(now - timedelta(days=1)).date(): 3},
        }


def test_days_follow_the_organizations_time_zone(world, owner_engine):
    """An event at 20:00 UTC is the next day in Auckland; changing the zone
    re-cuts the days already rolled up."""
    user = world.users["member"]
    ts = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0) - timedelta(days=3)
    write_events(db.engine, world.acme.id, [(ts, "project.created", user)])
    seal_everything(db.engine)
    with tenant_context(world.acme.id):
        assert rollups.series(
            world.acme.id, "action", ts.date() - timedelta(days=1), ts.date() + timedelta(days=1)
        ) == {"project.created": {ts.date(): 1}}
    db.session.rollback()
    with owner_engine.begin() as c:
        c.execute(
            text('UPDATE organizations SET settings = settings || \'{"timezone": "Pacific/Auckland"}\' WHERE id = :o'),
            {"o": world.acme.id},
        )
    rollups.catch_up_all(db.engine, [world.acme.id])
    with tenant_context(world.acme.id):
        got = rollups.series(world.acme.id, "action", ts.date() - timedelta(days=1), ts.date() + timedelta(days=1))
        assert got == {"project.created": {ts.date() + timedelta(days=1): 1}}
        assert got == rollups.raw_series(
            world.acme.id, ts.date() - timedelta(days=1), ts.date() + timedelta(days=1), "Pacific/Auckland"
        )
    db.session.rollback()


def test_rebuild_command_recounts_from_raw_events(app, world, owner_engine):
    """``flask analytics rebuild --org acme`` replaces whatever the rollups
    hold (here: a corrupted count) with the raw events' numbers."""
    user = world.users["owner"]
    now = datetime.now(UTC)
    write_events(db.engine, world.acme.id, [(now - timedelta(days=d), "project.updated", user) for d in range(5)])
    seal_everything(db.engine)
    with owner_engine.begin() as c:
        c.execute(text("UPDATE analytics_daily SET count = count + 100 WHERE metric = 'action'"))
    result = app.test_cli_runner().invoke(args=["analytics", "rebuild", "--org", "acme"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the rollups of 1 organization" in result.output
    _assert_equal_to_raw(world.acme.id, random.Random(2), ranges=4)
    bad = app.test_cli_runner().invoke(args=["analytics", "rebuild", "--org", "nope"])
    assert bad.exit_code == 1


def test_catch_up_in_small_transactions_equals_the_raw_events(world, monkeypatch):
    """With a few seals per transaction and per statement (a rebuild of
    millions is cut the same way), the rollups still equal the raw events:
    every transaction is exact up to its mark."""
    monkeypatch.setattr(rollups, "TRANSACTION_SEALS", 7)
    monkeypatch.setattr(rollups, "CHUNK", 3)
    rnd = random.Random(5)
    users = [Actor.of_user(world.users[r]) for r in ("owner", "member", "viewer")]
    write_events(db.engine, world.acme.id, _random_events(rnd, users, 60, days=70))
    seal_everything(db.engine)
    _assert_equal_to_raw(world.acme.id, rnd, ranges=6)
    done = rollups.catch_up_all(db.engine, [world.acme.id], rebuild=True)
    assert done[world.acme.id] == 60
    _assert_equal_to_raw(world.acme.id, rnd, ranges=6)

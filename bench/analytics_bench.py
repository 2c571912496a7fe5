"""Analytics benchmark: every chart's database time over 90 days, the whole
dashboard's server time, and the rollup against counting raw events.

    .venv/bin/python bench/analytics_bench.py --events 2500000 --orgs 50 --skew 0.8   # generates if empty
    .venv/bin/python bench/analytics_bench.py --events 10000000 --orgs 1000 --skew 0.2 # the issue's 2 M of 10 M

The data set is the audit generator's (``bench/gen_audit.py``: signed,
sealed events over a year, Zipf actors and actions), in its own database
(default ``tenantry_analytics_bench``); it is generated when that database
holds no events. What matters for the charts is the size of the one
organization they read (``audit-0000``, holding ``--skew`` of ``--events``):
``--events 2500000 --skew 0.8`` puts 2 M events in it, as the issue's
10 M with 20 % does, in a quarter of the generation time.

Then, on ``audit-0000``:

1. ``flask analytics rebuild`` of its rollups (seconds, events per second);
2. each chart built by the app's own code (``app.analytics.services``) over
   the last 90 days while its SQL is captured; each statement is then run
   with ``EXPLAIN ANALYZE`` ``--repeat`` times on the runtime role under RLS;
   a chart's DB time is the sum of its statements' p50 execution times,
   for its first build and for a second one ("again": what later views run
   once the most active members' per-range totals are kept);
3. the dashboard's server time: the page and its eight chart partials
   requested through the app (test client, a signed-in owner), summed, p50
   and max over ``--repeat`` rounds;
4. the raw-events query for a 30-day per-day count against the rollup's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import event, text  # noqa: E402

from bench.audit_bench import Capture, explain, pct  # noqa: E402
from bench.gen_audit import BENCH_SECRET, make_app  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_analytics_bench"


def generate(args) -> None:
    from benchdb import ensure_database
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    ensure_database(args.url)
    eng = create_engine(args.url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            has = (
                c.execute(text("SELECT to_regclass('audit_events') IS NOT NULL")).scalar()
                and c.execute(text("SELECT EXISTS (SELECT 1 FROM audit_events)")).scalar()
            )
    finally:
        eng.dispose()
    if has:
        return
    cmd = [
        sys.executable,
        str(HERE / "gen_audit.py"),
        "--events",
        str(args.events),
        "--orgs",
        str(args.orgs),
        "--skew",
        str(args.skew),
        "--url",
        args.url,
    ]
    print("generating:", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"generated in {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("ANALYTICS_BENCH_URL") or DEFAULT_URL)
    ap.add_argument("--events", type=int, default=2_500_000)
    ap.add_argument("--orgs", type=int, default=50)
    ap.add_argument("--skew", type=float, default=0.8)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--org", default="audit-0000")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--skip-rebuild", action="store_true")
    args = ap.parse_args()

    generate(args)
    app = make_app(args.url, BENCH_SECRET)
    from flask import g

    from app.analytics import services
    from app.audit import rollups
    from app.auth import sessions
    from app.extensions import db
    from app.scoping import tenant_context
    from app.tenancy.models import Organization
    from app.web import hosts

    with app.app_context():
        engine = db.engine
        with engine.connect() as c:
            org_id = c.execute(text("SELECT id FROM organizations WHERE slug = :s"), {"s": args.org}).scalar_one()
        from app.database import owner_engine

        owner = owner_engine()
        with owner.connect() as c:
            n_events = c.execute(
                text("SELECT count(*) FROM audit_events WHERE organization_id = :o"), {"o": org_id}
            ).scalar()
            n_all = c.execute(text("SELECT count(*) FROM audit_events")).scalar()
        print(f"{args.org}: {n_events:,} of {n_all:,} events")

        # 1. rebuild
        if not args.skip_rebuild:
            t0 = time.perf_counter()
            done = rollups.catch_up_all(engine, [org_id], rebuild=True)
            dt = time.perf_counter() - t0
            print(f"rebuild: {done.get(org_id, 0):,} sealed events in {dt:.1f} s ({done.get(org_id, 0) / dt:,.0f}/s)")
        with owner.begin() as c:
            c.execute(text("ANALYZE analytics_daily"))
            rows = c.execute(
                text("SELECT count(*) FROM analytics_daily WHERE organization_id = :o"), {"o": org_id}
            ).scalar()
        print(f"rollup rows of {args.org}: {rows:,}")

        # 2. each chart's DB time over the last --days days
        today = datetime.now(UTC).date()
        print(f"\nchart queries over {args.days} days (EXPLAIN ANALYZE x{args.repeat}, runtime role under RLS)")
        print(
            f"{'chart':<14} {'stmts':>5} {'DB p50 ms':>10} {'DB p99 ms':>10} {'build ms':>9}"
            f" {'again: stmts':>12} {'DB p50 ms':>10}"
        )
        with app.test_request_context(base_url=f"http://{args.org}.{hosts.apex()}"):
            org = db.session.get(Organization, org_id)
            g.org = org
            rng = services.Range(today - timedelta(days=args.days - 1), today, "custom", compare=False)

            def run(key):
                """The chart built once: its statements and the build's wall time."""
                cap = Capture()
                with tenant_context(org_id):
                    event.listen(engine, "before_cursor_execute", cap)
                    t0 = time.perf_counter()
                    services.build(key, org, rng)
                    build_ms = (time.perf_counter() - t0) * 1000
                    event.remove(engine, "before_cursor_execute", cap)
                db.session.rollback()
                return cap.statements, build_ms

            def db_times(statements):
                p50s, p99s = [], []
                for stmt, params in statements:
                    times = [explain(engine, org_id, stmt, params)[0] for _ in range(args.repeat)]
                    p50s.append(statistics.median(times))
                    p99s.append(pct(times, 99))
                return sum(p50s), sum(p99s)

            for key in services.CHARTS:
                # First build: nothing kept yet (the most active members' kept
                # totals start empty); second: what every later view runs.
                first, build_ms = run(key)
                again, _ = run(key)
                p50, p99 = db_times(first)
                a50, _ = db_times(again)
                print(
                    f"{key:<14} {len(first):>5} {p50:>10.2f} {p99:>10.2f} {build_ms:>9.1f}"
                    f" {len(again):>12} {a50:>10.2f}"
                )

        # 3. the dashboard's server time (page + every partial), as its owner
        owner_user = None
        with owner.begin() as c:
            owner_user = c.execute(
                text("SELECT user_id FROM memberships WHERE organization_id = :o AND role = 'owner' LIMIT 1"),
                {"o": org_id},
            ).scalar_one()
            sid = c.execute(
                text(
                    "INSERT INTO user_sessions (id, user_id, ip, user_agent)"
                    " VALUES (:id, :u, '127.0.0.1', 'bench') RETURNING id"
                ),
                {"id": uuid.uuid4(), "u": owner_user},
            ).scalar_one()
        host = f"{args.org}.{hosts.apex()}"
        client = app.test_client()
        with client.session_transaction(base_url=f"http://{host}") as sess:
            sessions.bind_cookie(sid, sess, host)
        q = f"range=custom&from={(today - timedelta(days=args.days - 1)).isoformat()}&to={today.isoformat()}"
        paths = [f"/analytics/?{q}"] + [f"/analytics/charts/{k}?{q}" for k in services.CHARTS]
        hx = {"HX-Request": "true"}
        for p in paths:  # warm-up (imports, plotly validators, pools)
            assert client.get(f"http://{host}{p}", headers=hx if "charts" in p else {}).status_code == 200, p
        rounds = []
        per_path = {p: [] for p in paths}
        for _ in range(args.repeat):
            total = 0.0
            for p in paths:
                t0 = time.perf_counter()
                r = client.get(f"http://{host}{p}", headers=hx if "charts" in p else {})
                dt = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200
                per_path[p].append(dt)
                total += dt
            rounds.append(total)
        print(f"\ndashboard over {args.days} days, page + {len(paths) - 1} partials, server time (x{args.repeat})")
        for p in paths:
            print(f"  {p.split('?')[0]:<34} p50 {statistics.median(per_path[p]):6.1f} ms")
        print(f"  total: p50 {statistics.median(rounds):.1f} ms, max {max(rounds):.1f} ms")
        with owner.begin() as c:
            c.execute(text("DELETE FROM user_sessions WHERE id = :s"), {"s": sid})

        # 4. raw 30-day per-day count against the rollup
        lo, hi = rollups.day_bounds(today - timedelta(days=29), today, "UTC")
        raw_sql = (
            "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM audit_events"
            " WHERE organization_id = :o AND occurred_at >= :lo AND occurred_at < :hi GROUP BY 1"
        )
        roll_sql = (
            "SELECT day, count FROM analytics_daily WHERE organization_id = :o AND metric = 'total'"
            " AND dimension = '' AND day >= :s AND day <= :e"
        )

        def compiled(sql, params):
            stmt = text(sql).bindparams(**params)
            c = stmt.compile(dialect=engine.dialect)
            return str(c), c.params

        raw_stmt, raw_params = compiled(raw_sql, {"o": org_id, "lo": lo, "hi": hi})
        roll_stmt, roll_params = compiled(roll_sql, {"o": org_id, "s": today - timedelta(days=29), "e": today})
        # psycopg placeholders
        raw_t = [explain(engine, org_id, raw_stmt, raw_params)[0] for _ in range(args.repeat)]
        roll_t = [explain(engine, org_id, roll_stmt, roll_params)[0] for _ in range(args.repeat)]
        r, o = statistics.median(raw_t), statistics.median(roll_t)
        print(f"\n30-day per-day count: raw events p50 {r:.2f} ms, rollup p50 {o:.3f} ms: {r / o:,.0f}x")
        owner.dispose()


if __name__ == "__main__":
    main()

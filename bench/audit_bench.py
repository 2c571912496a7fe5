"""Audit log benchmark: the viewer's queries per filter combination, and
``audit verify`` on about a million events.

    .venv/bin/python bench/gen_audit.py --events 10000000 --orgs 1000     # once
    .venv/bin/python bench/audit_bench.py --repeat 30

For each scenario the viewer's own code (``app.auditlog.services.page``) runs
once while its SQL is captured; each captured statement is then run with
``EXPLAIN (ANALYZE, BUFFERS)`` ``--repeat`` times on the runtime role with
the tenant setting (so row-level security is included), and the page's DB
time is the sum over its statements (date probes + id query + row fetch).
Printed: p50 / p99 / max of execution time, p50 planning time, the rows the
page returned, and the wall time of the whole ``page()`` call from Python.

Then: ``verify`` of the organization closest to ``--verify-events`` (1M),
``--verify-repeat`` times (p50 / p99 / max seconds, events per second), and
a "naive index" contrast: the rare-action query with its index dropped inside
a rolled-back transaction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text  # noqa: E402

from bench.benchdb import pct  # noqa: E402
from bench.gen_audit import BENCH_SECRET, DEFAULT_URL, make_app  # noqa: E402


class Capture:
    def __init__(self):
        self.statements = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        # Reads only (a WITH query too: the kept actor totals and the actives
        # computed at read time are WITH queries); nothing that writes.
        head = statement.lstrip().upper()
        writes = any(w in head for w in ("INSERT ", "UPDATE ", "DELETE "))
        if head.startswith(("SELECT", "WITH")) and not writes and "set_config" not in statement:
            self.statements.append((statement, parameters))


def explain(engine, org_id, statement, parameters):
    """(execution ms, planning ms, plan json) of one statement, as the runtime role under RLS."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT set_config('app.org_id', %s, false)", (str(org_id),))
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
        plan = cur.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        cur.execute("SELECT set_config('app.org_id', '', false)")
        raw.commit()
        return plan[0]["Execution Time"], plan[0]["Planning Time"], plan[0]["Plan"]
    finally:
        raw.close()


def plan_summary(plan) -> str:
    nodes = []

    def walk(n):
        label = n["Node Type"]
        if "Index Name" in n:
            label += f" {n['Index Name']}"
        nodes.append(label)
        for c in n.get("Plans", []):
            walk(c)

    walk(plan)
    return " > ".join(nodes[:4])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    ap.add_argument("--secret", default=BENCH_SECRET)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--org", default="audit-0000", help="the organization the viewer scenarios run on")
    ap.add_argument("--verify-events", type=int, default=1_000_000)
    ap.add_argument("--verify-repeat", type=int, default=3)
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--plans", action="store_true", help="print each statement's plan shape")
    args = ap.parse_args()

    app = make_app(args.url, args.secret)
    from app.auditlog import services
    from app.auditlog.services import Filters
    from app.extensions import db
    from app.scoping import all_organizations, tenant_context

    with app.app_context():
        engine = db.engine
        with engine.connect() as c:
            org_id = c.execute(text("SELECT id FROM organizations WHERE slug = :s"), {"s": args.org}).scalar()
            if org_id is None:
                sys.exit(f"no organization {args.org}: run bench/gen_audit.py first")
            # The runtime role sees one organization at a time; the total is
            # read as the cross-organization role.
            with all_organizations(reason="bench: count every organization's events") as cross:
                with cross.connect() as cc:
                    total = cc.execute(text("SELECT count(*) FROM audit_events")).scalar()
            c.execute(text("SELECT set_config('app.org_id', :o, false)"), {"o": str(org_id)})
            n_org = c.execute(
                text("SELECT count(*) FROM audit_events WHERE organization_id = :o"), {"o": org_id}
            ).scalar()
            print(f"database: {total:,} events; {args.org}: {n_org:,} events")
            actors = c.execute(
                text(
                    "SELECT actor_id, count(*) n FROM audit_events WHERE organization_id = :o GROUP BY 1 ORDER BY 2 DESC"
                ),
                {"o": org_id},
            ).all()
            top_actor, rare_actor = actors[0], actors[-1]
            targets = c.execute(
                text(
                    "SELECT target_id, count(*) n FROM audit_events WHERE organization_id = :o AND target_type = 'project'"
                    " GROUP BY 1 ORDER BY 2 DESC"
                ),
                {"o": org_id},
            ).all()
            top_target, rare_target = targets[0], targets[-1]
            ids = c.execute(
                text("SELECT min(id), max(id), max(occurred_at) FROM audit_events WHERE organization_id = :o"),
                {"o": org_id},
            ).first()
            mid_id = c.execute(
                text("SELECT id FROM audit_events WHERE organization_id = :o ORDER BY id DESC OFFSET :k LIMIT 1"),
                {"o": org_id, "k": n_org // 2},
            ).scalar()
            deep_id = c.execute(
                text("SELECT id FROM audit_events WHERE organization_id = :o ORDER BY id LIMIT 1 OFFSET 60"),
                {"o": org_id},
            ).scalar()
            rare_label = c.execute(
                text("SELECT target_label FROM audit_events WHERE organization_id = :o AND target_id = :t LIMIT 1"),
                {"o": org_id, "t": rare_target.target_id},
            ).scalar()
            c.execute(
                text("SELECT request_id FROM audit_events WHERE organization_id = :o AND id = :i"),
                {"o": org_id, "i": mid_id},
            ).scalar()
            c.rollback()
        latest = ids[2].date()
        print(
            f"top actor {top_actor.n:,} events, rarest {rare_actor.n:,}; top project {top_target.n:,} events,"
            f" rarest {rare_target.n:,}"
        )

        S = Filters
        scenarios = [
            ("first page (no filter)", S()),
            ("rare action (org.ownership_transferred)", S(action="org.ownership_transferred")),
            ("common action (project.updated)", S(action="project.updated")),
            ("mid action (member.role_changed)", S(action="member.role_changed")),
            ("top actor", S(actor=top_actor.actor_id)),
            ("rare actor", S(actor=rare_actor.actor_id)),
            ("person = top member (actor or target)", S(person=top_actor.actor_id)),
            ("target: busiest project", S(target_type="project", target_id=top_target.target_id)),
            ("target: quiet project", S(target_type="project", target_id=rare_target.target_id)),
            ("target type only: role (rare)", S(target_type="role")),
            ("target type only: project (common)", S(target_type="project")),
            ("date range: last 7 days", S(date_from=latest - timedelta(days=6), date_to=latest)),
            (
                "date range: one day, 6 months ago",
                S(date_from=latest - timedelta(days=180), date_to=latest - timedelta(days=180)),
            ),
            (
                "date range: a month, a year ago",
                S(date_from=latest - timedelta(days=360), date_to=latest - timedelta(days=330)),
            ),
            ("deep page: middle of the log (before=)", S(before=mid_id)),
            ("deep page: the oldest page (before=)", S(before=deep_id)),
            ("newer page (after=)", S(after=mid_id)),
            ("text: rare (a quiet project's name)", S(q=rare_label or "zenith")),
            ("text: medium (a first name)", S(q="kepler")),
            ("text: common (bench)", S(q="bench")),
            ("text: two words (first + last name)", S(q="kepler apollo")),
            ("text: a short prefix (a)", S(q="a")),
            ("actor + action", S(actor=top_actor.actor_id, action="member.role_changed")),
            ("actor + rare action", S(actor=top_actor.actor_id, action="org.ownership_transferred")),
            (
                "action + date range",
                S(
                    action="member.role_changed",
                    date_from=latest - timedelta(days=60),
                    date_to=latest - timedelta(days=30),
                ),
            ),
            (
                "target + date range",
                S(
                    target_type="project",
                    target_id=top_target.target_id,
                    date_from=latest - timedelta(days=90),
                    date_to=latest,
                ),
            ),
            ("person + action", S(person=top_actor.actor_id, action="project.updated")),
            ("action + deep page", S(action="project.updated", before=mid_id)),
            ("text + action", S(q="kepler", action="project.created")),
        ]

        print(
            f"\nviewer queries on {args.org} ({n_org:,} events of {total:,}); {args.repeat} runs each;"
            " DB time = sum of the page's statements (EXPLAIN ANALYZE execution)"
        )
        print(
            f"{'scenario':<44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'plan ms':>8} {'rows':>5} {'stmts':>5}"
            f" {'wall p50':>9}"
        )
        worst = 0.0
        for name, f in scenarios:
            cap = Capture()
            event.listen(engine, "before_cursor_execute", cap)
            try:
                with tenant_context(org_id):
                    t0 = time.perf_counter()
                    pg = services.page(org_id, f)
                    first_wall = (time.perf_counter() - t0) * 1000
                    db.session.rollback()
            finally:
                event.remove(engine, "before_cursor_execute", cap)
            walls = [first_wall]
            for _ in range(min(args.repeat, 10) - 1):
                with tenant_context(org_id):
                    t0 = time.perf_counter()
                    services.page(org_id, f)
                    walls.append((time.perf_counter() - t0) * 1000)
                    db.session.rollback()
            totals, plans = [], []
            shapes = []
            for i in range(args.repeat):
                tot, pl = 0.0, 0.0
                for stmt, params in cap.statements:
                    ex, pt, plan = explain(engine, org_id, stmt, params)
                    tot += ex
                    pl += pt
                    if i == 0:
                        shapes.append(plan_summary(plan))
                totals.append(tot)
                plans.append(pl)
            worst = max(worst, pct(totals, 99))
            print(
                f"{name:<44} {pct(totals, 50):8.3f} {pct(totals, 99):8.3f} {max(totals):8.3f}"
                f" {statistics.median(plans):8.3f} {len(pg.events):5d} {len(cap.statements):5d}"
                f" {statistics.median(walls):8.2f}"
            )
            if args.plans:
                for s in shapes:
                    print(f"{'':<6}{s}")
        print(f"worst p99 DB time over all scenarios: {worst:.3f} ms")

        # Naive index contrast: the rare action without its index.
        cap = Capture()
        event.listen(engine, "before_cursor_execute", cap)
        with tenant_context(org_id):
            services.page(org_id, S(action="org.ownership_transferred"))
            db.session.rollback()
        event.remove(engine, "before_cursor_execute", cap)
        stmt, params = cap.statements[0]
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        owner = create_engine(app.config["DATABASE_URL"], poolclass=NullPool)
        raw = owner.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SET lock_timeout = '5s'")
            for ix in (
                "ix_audit_events_org_action",
                "ix_audit_events_org_actor_action",
                "ix_audit_events_org_target_action",
            ):
                cur.execute(f"DROP INDEX {ix}")
            times = []
            for _ in range(3):
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt, params)
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                times.append(plan[0]["Execution Time"])
            print(
                f"\nnaive contrast - rare action without the indexes that hold action (dropped in a rolled-back"
                f" transaction): p50 {statistics.median(times):.1f} ms ({plan_summary(plan[0]['Plan'])})"
            )
        finally:
            raw.rollback()
            raw.close()
            owner.dispose()

        if args.skip_verify:
            return
        # verify on ~1M events
        from app.audit import integrity
        from app.auditlog.verification import verify_org

        with all_organizations(reason="bench: seal counts of every organization") as cross, cross.connect() as c:
            counts = c.execute(
                text(
                    "SELECT o.id, o.slug, count(*) n FROM audit_seals s JOIN organizations o ON o.id = s.organization_id"
                    " GROUP BY 1, 2"
                )
            ).all()
            c.rollback()
        target = min(counts, key=lambda r: abs(r.n - args.verify_events))
        ring = integrity.keyring()
        secs = []
        for _ in range(args.verify_repeat):
            with engine.connect() as c, c.begin():
                t0 = time.perf_counter()
                res = verify_org(c, target.id, target.slug, ring)
                secs.append(time.perf_counter() - t0)
            assert res.ok, res.first
        print(
            f"\nverify {target.slug}: {res.checked:,} events, {args.verify_repeat} runs:"
            f" p50 {pct(secs, 50):.2f} s, p99 {pct(secs, 99):.2f} s, max {max(secs):.2f} s"
            f" ({res.checked / statistics.median(secs):,.0f} events/s)"
        )
        from app.auditlog.sealing import seal_all

        t0 = time.perf_counter()
        results = seal_all(engine)
        print(f"seal (nothing new, {len(results)} organizations): {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()

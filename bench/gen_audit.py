"""Audit log data generator (COPY-based).

    .venv/bin/python bench/gen_audit.py --events 10000000 --orgs 1000
    .venv/bin/python bench/gen_audit.py --events 2000000 --orgs 200 --url postgresql://postgres@127.0.0.1:5432/x

Creates (if missing) and migrates the database (default ``DATABASE_URL`` or
postgresql://postgres@127.0.0.1:5432/tenantry_bench), then loads
``--orgs`` organizations (slugs ``audit-0000`` ...) with members, and
``--events`` audit events spread over the last ``--days`` days:

* skewed: ``audit-0000`` holds ``--skew`` (20%) of all events; the others
  follow a Zipf law (``audit-0001`` about half of what remains at 1000 orgs
  is ~1 million at 10 million events);
* realistic mixes inside an organization: a few actions dominate, some are
  rare (``org.ownership_transferred``: a handful per organization), actors
  and targets follow Zipf laws;
* every row carries a valid MAC and a seal (the chain is computed here,
  exactly as the sealer would), so ``audit verify`` is green and its speed
  can be measured (key: ``--secret``, default the bench key that
  ``bench/audit_bench.py`` uses).

Secondary indexes are dropped during the load and rebuilt after it (much
faster than maintaining them row by row), then the tables are analysed.
``--append`` adds events to an existing data set instead of refusing.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import ensure_database  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_bench"
BENCH_SECRET = "audit-bench-secret-key"
CHUNK = 50_000

# (action, weight, target type)
ACTIONS = [
    ("auth.login", 200, "user"),
    ("auth.logout", 90, "user"),
    ("auth.login_failed", 25, "user"),
    ("auth.password_changed", 6, "user"),
    ("auth.session_revoked", 4, "session"),
    ("project.updated", 220, "project"),
    ("project.created", 60, "project"),
    ("project.archived", 20, "project"),
    ("project.restored", 5, "project"),
    ("project.deleted", 8, "project"),
    ("member.invited", 25, "invitation"),
    ("member.joined", 18, "member"),
    ("member.role_changed", 12, "member"),
    ("member.deactivated", 3, "member"),
    ("member.reactivated", 1, "member"),
    ("member.removed", 2, "member"),
    ("member.invitation_resent", 4, "invitation"),
    ("member.invitation_revoked", 2, "invitation"),
    ("role.created", 1, "role"),
    ("role.updated", 2, "role"),
    ("role.deleted", 0.3, "role"),
    ("org.settings_changed", 1, "organization"),
    ("api_key.created", 1.5, "api_key"),
    ("api_key.revoked", 0.8, "api_key"),
    ("webhook.updated", 1.2, "webhook"),
    ("data.exported", 1, "organization"),
    ("audit.exported", 0.3, "organization"),
]
RARE_ACTION = "org.ownership_transferred"  # ~1 per 200,000 events, at least 1 per organization
RARE_RATE = 1 / 200_000
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "tenantry-cli/1.4 python-httpx/0.27",
]
WORDS = [
    "Apollo",
    "Borealis",
    "Comet",
    "Delta",
    "Eclipse",
    "Falcon",
    "Gemini",
    "Helix",
    "Ion",
    "Juno",
    "Kepler",
    "Lumen",
    "Meridian",
    "Nova",
    "Orion",
    "Pulsar",
    "Quasar",
    "Rigel",
    "Sirius",
    "Titan",
    "Umbra",
    "Vega",
    "Whirl",
    "Xenon",
    "Yonder",
    "Zenith",
]
SECONDARY_INDEXES = ("audit_events", "audit_seals")
# What the sealer records for free-text search (every generated event is sealed).
FILL_LABELS = """
INSERT INTO audit_label_words (organization_id, word, kind, ref_type, ref_id)
SELECT DISTINCT organization_id, left(w, 64), kind, ref_type, ref_id FROM (
  SELECT organization_id, 'actor' AS kind, actor_type AS ref_type, actor_id::text AS ref_id,
         lower(actor_label || ' ' || actor_type) AS label
    FROM (SELECT DISTINCT organization_id, actor_type, actor_id, actor_label FROM audit_events
           WHERE actor_id IS NOT NULL AND actor_label IS NOT NULL) a
  UNION ALL
  SELECT organization_id, 'target', target_type, target_id, lower(coalesce(target_label, '') || ' ' || target_type)
    FROM (SELECT DISTINCT organization_id, target_type, target_id, target_label FROM audit_events
           WHERE target_type IS NOT NULL AND target_id IS NOT NULL) t
) l CROSS JOIN LATERAL regexp_split_to_table(l.label, '[^[:alnum:]]+') AS w
WHERE w <> ''
ON CONFLICT DO NOTHING
"""


def zipf_cum(n: int, s: float = 1.0) -> list[float]:
    w = [1.0 / (k**s) for k in range(1, n + 1)]
    return list(itertools.accumulate(w))


def pick(cum: list[float], rnd: random.Random) -> int:
    return bisect.bisect_left(cum, rnd.random() * cum[-1])


def make_app(url: str, secret: str):
    import tempfile

    from app import create_app

    # Keep the benchmark's anchor file out of the repository (and out of the app's instance/).
    instance = Path(tempfile.gettempdir()) / "tenantry-audit-bench"
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": secret,
            "LOG_LEVEL": "WARNING",
            "INSTANCE_DIR": str(instance),
            "ENV_NAME": "development",
        }
    )


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(revision="heads")


def copy(conn, table: str, columns: list[str], rows) -> int:
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
            n += 1
    return n


def org_sizes(events: int, orgs: int, skew: float) -> list[int]:
    big = int(events * skew) if orgs > 1 else events
    rest = events - big
    cum = zipf_cum(max(orgs - 1, 1))
    weights = [cum[0]] + [cum[i] - cum[i - 1] for i in range(1, len(cum))]
    total = sum(weights)
    sizes = [big] + [int(rest * w / total) for w in weights][: orgs - 1]
    sizes[0] += events - sum(sizes)  # rounding
    return sizes


def drop_secondary_indexes(conn) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.schemaname = 'public' AND i.tablename = ANY(:t) "
            "AND NOT x.indisprimary AND NOT x.indisunique"
        ),
        {"t": list(SECONDARY_INDEXES)},
    ).all()
    for name, _ in rows:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [d for _, d in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--orgs", type=int, default=1000)
    ap.add_argument("--skew", type=float, default=0.20)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    ap.add_argument("--secret", default=BENCH_SECRET)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--append", action="store_true", help="add to existing audit data")
    args = ap.parse_args()

    from app.audit import integrity

    t0 = time.perf_counter()
    ensure_database(args.url)
    app = make_app(args.url, args.secret)
    migrate(app)
    owner_url = app.config["DATABASE_URL"]
    engine = create_engine(owner_url, poolclass=NullPool)
    rnd = random.Random(args.seed)
    with app.app_context():
        kid, key = integrity.current_key()

    with engine.begin() as c:
        existing = c.execute(text("SELECT count(*) FROM audit_events")).scalar()
        if existing and not args.append:
            print(f"{existing} audit events already present; use --append to add more, or drop the database")
            return

    # ------------------------------------------------------------ organizations and members
    sizes = org_sizes(args.events, args.orgs, args.skew)
    orgs = []  # (id, slug, members[(uid, label)], projects[(pid, name)])
    with engine.begin() as c:
        have = {r.slug: r.id for r in c.execute(text("SELECT slug, id FROM organizations WHERE slug LIKE 'audit-%'"))}
        new_orgs, users, memberships = [], [], []
        for i, size in enumerate(sizes):
            slug = f"audit-{i:04d}"
            oid = have.get(slug) or uuid.uuid5(uuid.NAMESPACE_DNS, slug + ".bench")
            n_members = max(3, min(2000, size // 500))
            n_projects = max(2, min(5000, size // 200))
            members = []
            for m in range(n_members):
                uid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{slug}-user-{m}.bench")
                name = f"{WORDS[m % 26]} {WORDS[(m // 26) % 26]}son {m}"
                email = f"user{m}@{slug}.bench"
                members.append((uid, f"{name} <{email}>"))
                if slug not in have:
                    users.append((uid, email, name))
                    memberships.append((oid, uid, "owner" if m == 0 else ("admin" if m < 3 else "member")))
            projects = [
                (
                    uuid.uuid5(uuid.NAMESPACE_DNS, f"{slug}-project-{p}.bench"),
                    f"{WORDS[p % 26]} {WORDS[(p * 7) % 26]} {p}",
                )
                for p in range(n_projects)
            ]
            orgs.append((oid, slug, members, projects))
            if slug not in have:
                new_orgs.append((oid, slug, f"Audit Bench {i}", "enterprise" if i < 10 else "pro"))
        if new_orgs:
            copy(c, "organizations", ["id", "slug", "name", "plan_key"], new_orgs)
            copy(c, "users", ["id", "email", "name"], users)
            copy(c, "memberships", ["organization_id", "user_id", "role"], memberships)
    print(
        f"{len(orgs)} organizations ({len(new_orgs)} new); largest {sizes[0]:,} events,"
        f" second {sizes[1] if len(sizes) > 1 else 0:,}"
    )

    # ------------------------------------------------------------ events (interleaved across orgs in time)
    with engine.begin() as c:
        dropped = drop_secondary_indexes(c)
        start_id = c.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar() + 1
        chains = {}
        for r in c.execute(
            text(
                "SELECT DISTINCT ON (organization_id) organization_id, seq, chain_mac FROM audit_seals"
                " ORDER BY organization_id, seq DESC"
            )
        ):
            chains[r.organization_id] = (r.seq, bytes(r.chain_mac))
    print(f"dropped {len(dropped)} secondary indexes for the load")

    org_cum = list(itertools.accumulate(sizes))
    action_cum = list(itertools.accumulate(w for _, w, _ in ACTIONS))
    member_cums, project_cums = {}, {}
    now = datetime.now(UTC).replace(microsecond=0)
    t_start = now - timedelta(days=args.days)
    with engine.connect() as c:
        latest = c.execute(text("SELECT max(occurred_at) FROM audit_events")).scalar()
    if latest is not None and latest >= t_start:  # --append: ids and times keep growing together
        t_start = latest + timedelta(seconds=1)
    span = (now - t_start).total_seconds()
    total = args.events
    eid = start_id
    from psycopg.types.json import Jsonb

    ev_cols = [
        "organization_id",
        "id",
        "occurred_at",
        "actor_type",
        "actor_id",
        "actor_label",
        "impersonator_id",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "changes",
        "metadata",
        "ip",
        "user_agent",
        "request_id",
        "key_id",
        "mac",
    ]
    seal_cols = ["organization_id", "seq", "event_id", "row_mac", "chain_mac", "horizon"]
    done = 0
    rare_next = {}
    tl = time.perf_counter()
    import queue
    import threading

    todo: queue.Queue = queue.Queue(maxsize=2)
    failure = []

    def copier():
        # COPY runs here while the main thread builds the next chunk.
        while True:
            item = todo.get()
            if item is None:
                return
            ev_rows, seal_rows = item
            try:
                with engine.begin() as c:
                    copy(c, "audit_events", ev_cols, ev_rows)
                    horizon = int(c.execute(text("SELECT pg_current_xact_id()::text")).scalar()) + 1
                with engine.begin() as c:
                    copy(c, "audit_seals", seal_cols, ((*r, str(horizon)) for r in seal_rows))
            except Exception as e:  # surfaced by the main thread
                failure.append(e)
                return

    worker = threading.Thread(target=copier, daemon=True)
    worker.start()
    while done < total:
        n = min(CHUNK, total - done)
        ev_rows, seal_rows = [], []
        for j in range(n):
            i = done + j
            o = bisect.bisect_right(org_cum, rnd.random() * org_cum[-1])
            o = min(o, len(orgs) - 1)
            oid, slug, members, projects = orgs[o]
            if o not in member_cums:
                member_cums[o] = zipf_cum(len(members), 1.1)
                project_cums[o] = zipf_cum(len(projects), 0.9)
                rare_next[o] = 0
            ts = t_start + timedelta(seconds=span * (i + 0.5) / total)
            actor_uid, actor_label = members[pick(member_cums[o], rnd)]
            if rnd.random() < RARE_RATE or (rare_next[o] == 0 and i >= total // 2):
                action, ttype = RARE_ACTION, "organization"
                rare_next[o] = 1
            else:
                action, _, ttype = ACTIONS[bisect.bisect_left(action_cum, rnd.random() * action_cum[-1])]
            changes, meta = {}, {}
            if ttype == "project":
                pid, pname = projects[pick(project_cums[o], rnd)]
                tid, tlabel = str(pid), pname
                if action == "project.updated":
                    changes = {"description": [f"v{rnd.randint(1, 99)}", f"v{rnd.randint(100, 199)}"]}
                elif action in ("project.archived", "project.restored"):
                    changes = {
                        "status": ["active", "archived"] if action.endswith("archived") else ["archived", "active"]
                    }
            elif ttype in ("member", "user"):
                tuid, tl_label = members[rnd.randrange(len(members))] if ttype == "member" else (actor_uid, actor_label)
                tid, tlabel = str(tuid), tl_label
                if action == "member.role_changed":
                    changes = {"role": ["Member", "Admin"]}
                if action.startswith("auth."):
                    meta = {"session_id": str(uuid.UUID(int=rnd.getrandbits(128)))}
            elif ttype == "organization":
                tid, tlabel = str(oid), f"Audit Bench {o}"
                if action == RARE_ACTION:
                    changes = {"owner": ["previous", "next"]}
            else:
                tid = uuid.UUID(int=rnd.getrandbits(128)).hex[:12]
                tlabel = f"{ttype.replace('_', ' ')} {tid[:6]}"
            row = {
                "organization_id": oid,
                "id": eid,
                "occurred_at": ts,
                "actor_type": "user",
                "actor_id": actor_uid,
                "actor_label": actor_label,
                "impersonator_id": None,
                "action": action,
                "target_type": ttype,
                "target_id": tid,
                "target_label": tlabel,
                "changes": changes,
                "metadata": meta,
                "ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                "user_agent": AGENTS[rnd.randrange(len(AGENTS))],
                "request_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
                "key_id": kid,
            }
            rm = integrity.row_mac(key, row)
            seq, prev = chains.get(oid, (0, integrity.ZERO))
            seq += 1
            prev = integrity.chain_mac(key, prev, oid, seq, eid, rm)
            chains[oid] = (seq, prev)
            ev_rows.append(
                (
                    oid,
                    eid,
                    ts,
                    "user",
                    actor_uid,
                    actor_label,
                    None,
                    action,
                    ttype,
                    tid,
                    tlabel,
                    Jsonb(changes),
                    Jsonb(meta),
                    row["ip"],
                    row["user_agent"],
                    row["request_id"],
                    kid,
                    rm,
                )
            )
            seal_rows.append((oid, seq, eid, rm, prev))
            eid += 1
        if failure:
            raise failure[0]
        todo.put((ev_rows, seal_rows))
        done += n
        rate = done / (time.perf_counter() - tl)
        print(f"  {done:,} / {total:,} events ({rate:,.0f}/s, eta {(total - done) / rate:,.0f}s)", flush=True)

    todo.put(None)
    worker.join()
    if failure:
        raise failure[0]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("SELECT setval('audit_events_id_seq', (SELECT max(id) FROM audit_events))"))
        c.commit()
        c.execute(text("SET maintenance_work_mem = '1GB'"))
        c.execute(text("SET max_parallel_maintenance_workers = 2"))
        for ddl in dropped:
            t1 = time.perf_counter()
            c.execute(text(ddl))
            c.commit()
            print(f"  rebuilt in {time.perf_counter() - t1:,.0f}s: {ddl[:110]}", flush=True)
        t1 = time.perf_counter()
        c.execute(text(FILL_LABELS))
        c.commit()
        print(f"  labels filled in {time.perf_counter() - t1:,.0f}s", flush=True)
        # VACUUM, not only ANALYZE: index-only scans need the visibility map
        # (in production autovacuum's insert threshold keeps it set).
        c.execute(text("VACUUM (ANALYZE) audit_label_words"))
        c.execute(text("VACUUM (ANALYZE) audit_events"))
        c.execute(text("VACUUM (ANALYZE) audit_seals"))
        c.execute(text("ANALYZE memberships"))
        c.execute(text("ANALYZE organizations"))
        c.execute(text("ANALYZE users"))
        c.commit()
        size = c.execute(text("SELECT pg_size_pretty(pg_total_relation_size('audit_events'))")).scalar()
    engine.dispose()
    print(f"done: {args.events:,} events in {time.perf_counter() - t0:,.0f}s; audit_events is {size}")


if __name__ == "__main__":
    main()

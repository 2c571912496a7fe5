"""Platform console benchmark: 10,000 organizations and 1,000,000 users.

    .venv/bin/python bench/platform_bench.py                  # default DB below
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_platform_bench \\
        .venv/bin/python bench/platform_bench.py --orgs 10000 --users 1000000 --repeat 30

Creates (once; reused on the next run) the database, migrates it, and loads
with COPY ``--orgs`` organizations (plans mixed, 5 % with a custom domain,
sizes skewed: most small, a few with thousands of members) and ``--users``
users, each a member of one organization (its first member is the owner).
Then it runs the periodic job's count once (``app.platform.stats.refresh``,
timed) and times, as a super-admin on the apex:

* **db**: the database time of the organizations list (the statements'
  execution, summed from SQLAlchemy's cursor events): first page, a search
  by name, by an owner's e-mail, with no match, and the size filter;
* **server**: the overview page and the organizations page through the
  whole app (test client: hooks, gate, queries, template).

Prints p50 / p99 / max in milliseconds per scenario, and whether pg_trgm
(trigram indexes) is present. Not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import ensure_database, migrated_app, report  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_platform_bench"
APEX = "bench.localhost"
WORDS = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "tyrell", "cyberdyne", "soylent", "hooli"]
KINDS = ["Labs", "Group", "Systems", "Partners", "Works", "Holdings", "Digital", "Studio"]


def copy_rows(conn, table: str, columns: list[str], rows) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def sizes(orgs: int, users: int, rng: random.Random) -> list[int]:
    """Members per organization, summing to ``users``: a long tail (most
    organizations are small, a few have thousands)."""
    weights = [rng.paretovariate(1.2) for _ in range(orgs)]
    total = sum(weights)
    out = [max(1, int(w / total * users)) for w in weights]
    out[0] += users - sum(out)  # the largest remainder goes to one organization
    if out[0] < 1:  # pragma: no cover - rounding on tiny inputs
        out[0] = 1
    return out


def load(owner_url: str, orgs: int, users: int) -> None:
    """COPY the organizations, users and memberships once (skipped when present)."""
    from app.auth.passwords import _hasher

    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.begin() as c:
        have = c.execute(text("SELECT count(*) FROM organizations WHERE slug LIKE 'pb-%'")).scalar()
        if have >= orgs:
            print(f"bench data present ({have:,} organizations)")
            return
        print(f"loading {orgs:,} organizations and {users:,} users …", flush=True)
        t0 = time.perf_counter()
        rng = random.Random(14)
        c.execute(
            text(
                "DELETE FROM memberships WHERE organization_id IN (SELECT id FROM organizations WHERE slug LIKE 'pb-%')"
            )
        )
        c.execute(text("DELETE FROM users WHERE email LIKE '%@pb.test'"))
        c.execute(text("DELETE FROM organizations WHERE slug LIKE 'pb-%'"))
        org_rows, org_ids = [], []
        for i in range(orgs):
            oid = uuid.uuid4()
            org_ids.append(oid)
            name = f"{rng.choice(WORDS).capitalize()} {rng.choice(KINDS)} {i}"
            plan = rng.choices(["free", "pro", "enterprise"], [70, 25, 5])[0]
            domain = f"portal.org{i}.example" if i % 20 == 0 else None
            created = f"20{23 + i % 3}-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
            org_rows.append((oid, f"pb-{i:05d}", name, plan, domain, created))
        copy_rows(c, "organizations", ["id", "slug", "name", "plan_key", "custom_domain", "created_at"], org_rows)
        print(f"  organizations in {time.perf_counter() - t0:.1f}s", flush=True)
        pw = _hasher(1, 1024).hash("bench-password")
        per_org = sizes(orgs, users, rng)
        user_rows, member_rows, k = [], [], 0
        for oid, n in zip(org_ids, per_org, strict=True):
            for j in range(n):
                uid = uuid.uuid4()
                user_rows.append((uid, f"user{k}@pb.test", f"Person {k}", pw))
                seen = None if k % 4 == 0 else f"2026-{1 + k % 11:02d}-{1 + k % 28:02d}T10:00:00Z"
                member_rows.append((oid, uid, "owner" if j == 0 else "member", "active", seen))
                k += 1
        t1 = time.perf_counter()
        copy_rows(c, "users", ["id", "email", "name", "password_hash"], user_rows)
        print(f"  users in {time.perf_counter() - t1:.1f}s", flush=True)
        t1 = time.perf_counter()
        copy_rows(c, "memberships", ["organization_id", "user_id", "role", "status", "last_seen_at"], member_rows)
        print(f"  memberships in {time.perf_counter() - t1:.1f}s", flush=True)
        print(f"loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for table in ("organizations", "users", "memberships"):
            c.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    ensure_database(url)
    os.environ.setdefault("TENANTRY_ENV", "development")
    app = migrated_app(url, APEX)
    load(app.config["DATABASE_URL"], args.orgs, args.users)

    import pyotp

    from app.auth import factors, sessions
    from app.auth.models import User, UserSession
    from app.extensions import db
    from app.platform import organizations as orgs
    from app.platform import stats
    from app.scoping import all_organizations

    db_time = {"t": 0.0}

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        db_time["t"] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

    with app.app_context():
        for engine in {db.engine, *db.engines.values()}:
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
        trgm = db.session.execute(text("SELECT to_regclass('ix_organizations_name_trgm') IS NOT NULL")).scalar()
        t0 = time.perf_counter()
        figures = stats.refresh()
        db.session.commit()
        refresh_s = time.perf_counter() - t0
        with all_organizations(reason="bench: a super-admin"):
            sup = db.session.execute(db.select(User).where(User.email == "super@pb.test")).scalar_one_or_none()
            if sup is None:
                sup = User(email="super@pb.test", name="Bench Super", password_hash="x", is_superadmin=True)
                db.session.add(sup)
                db.session.flush()
            owner_email = db.session.execute(
                text(
                    "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id "
                    "WHERE m.role = 'owner' AND u.email LIKE '%@pb.test' ORDER BY u.email DESC LIMIT 1"
                )
            ).scalar()
        # The user was written on the cross-organization connection: commit it
        # before the runtime connection's session row points at it.
        db.session.commit()
        # /platform lets in only a super-admin with a second factor.
        factors.enrol_fixed_secret(sup, pyotp.random_base32())
        db.session.commit()
        rec = UserSession(user_id=sup.id, ip="127.0.0.1", user_agent="bench")
        db.session.add(rec)
        db.session.commit()
        sid = str(rec.id)
        plan_keys = [p.key for p in orgs.plan_choices()]
        db.session.rollback()

    print(
        f"\nplatform console, {args.orgs:,} organizations and {args.users:,} users "
        f"(counted: {figures['users']:,} users); trigram indexes: {'yes' if trgm else 'no (pg_trgm missing)'}; "
        f"{args.repeat} runs each\n"
    )
    print(f"  periodic count (stats.refresh: member counts + overview figures): {refresh_s * 1000:.0f} ms once\n")

    n = args.repeat
    scenarios = [
        ("first page (name A–Z)", {}),
        ("first page (newest first)", {"sort": "-created"}),
        ("search 'umbrella sys' (a name)", {"q": "umbrella sys"}),
        ("search 'pb-0421' (an address)", {"q": "pb-0421"}),
        (f"search '{owner_email}' (an owner's e-mail)", {"q": owner_email}),
        ("search 'qqqzzz' (no match)", {"q": "qqqzzz"}),
        ("size filter 101-1000", {"size": "101-1000"}),
        ("size filter 1000+ and plan enterprise", {"size": "1000+", "plan": "enterprise"}),
    ]
    print("db: organizations list (database time per page, statements summed)")
    for label, params in scenarios:
        samples = []
        with app.test_request_context(f"http://{APEX}/platform/organizations"):
            q = orgs.OrgQuery.from_args(params, plan_keys)
            orgs.list_organizations(q)  # warm
            for _ in range(n):
                db_time["t"] = 0.0
                orgs.list_organizations(q)
                samples.append(db_time["t"])
                db.session.rollback()
        report(label, samples, digits=2)

    client = app.test_client()
    base = f"http://{APEX}"
    with client.session_transaction(base_url=base) as sess:
        sessions.bind_cookie(sid, sess, APEX)
    print("\nserver: whole requests through the app (test client, super-admin on the apex)")
    for label, path in [
        ("overview /platform/", "/platform/"),
        ("organizations /platform/organizations", "/platform/organizations"),
        ("organizations search ?q=umbrella", "/platform/organizations?q=umbrella"),
        ("organizations size filter ?size=11-100", "/platform/organizations?size=11-100"),
    ]:
        r = client.get(base + path)
        assert r.status_code == 200, (path, r.status_code)
        samples, dbs = [], []
        for _ in range(n):
            db_time["t"] = 0.0
            t0 = time.perf_counter()
            r = client.get(base + path)
            samples.append(time.perf_counter() - t0)
            dbs.append(db_time["t"])
            assert r.status_code == 200
        report(label, samples, digits=2)
        report("  of which database", dbs, digits=2)


if __name__ == "__main__":
    main()

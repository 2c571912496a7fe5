"""Members page benchmark: an organization of 50,000 members.

    .venv/bin/python bench/members_bench.py                 # default DB below
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_bench \\
        .venv/bin/python bench/members_bench.py --members 50000 --noise 50000 --repeat 50

Creates (once; reused on the next run) the database, migrates it, and loads
an organization ``bench`` with ``--members`` members (COPY) plus ``--noise``
members of another organization, so that global indexes (the trigram index
on memberships) hold other tenants' rows as in production. Then it times:

* **http**: the members page through the whole app (test client signed in as
  the bench Owner; host hook, permissions, queries, template) — full page and
  the HTMX fragment the live search swaps;
* **sql**: the listing queries alone (one page + the capped count), and the
  exact count for comparison.

Prints p50 / p99 / max in milliseconds per scenario. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import ensure_database, migrated_app, report  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_bench"
APEX = "bench.localhost"

SYL = [
    "an",
    "bel",
    "cor",
    "da",
    "el",
    "fin",
    "gar",
    "hal",
    "is",
    "jo",
    "ka",
    "lin",
    "mor",
    "nel",
    "or",
    "pe",
    "qui",
    "ros",
    "sa",
    "tor",
    "ul",
    "va",
    "wen",
    "xa",
    "yor",
    "zel",
]


def name_of(i: int) -> tuple[str, str]:
    """A deterministic (first, last) name for row i (~676 first × ~17,000 last names)."""
    a, b = i % 26, (i // 26) % 26
    first = (SYL[a] + SYL[b]).capitalize()
    j = (i * 7919) % 17576
    last = (SYL[j % 26] + SYL[(j // 26) % 26] + SYL[(j // 676) % 26]).capitalize()
    return first, last


def copy_rows(conn, table: str, columns: list[str], rows) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def load(owner_url: str, members: int, noise: int) -> None:
    """Create the bench organizations once (idempotent: skipped when present with enough members)."""
    from app.auth.passwords import _hasher

    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.begin() as c:
        have = c.execute(
            text(
                "SELECT count(*) FROM memberships m JOIN organizations o ON o.id = m.organization_id WHERE o.slug = 'bench'"
            )
        ).scalar()
        if have >= members:
            print(f"bench data present ({have} members in 'bench')")
            return
        print(f"loading {members} members (+{noise} in another organization) …", flush=True)
        t0 = time.perf_counter()
        c.execute(
            text(
                "DELETE FROM invitations WHERE organization_id IN (SELECT id FROM organizations WHERE slug IN ('bench', 'bench-noise'))"
            )
        )
        c.execute(
            text(
                "DELETE FROM memberships WHERE organization_id IN (SELECT id FROM organizations WHERE slug IN ('bench', 'bench-noise'))"
            )
        )
        c.execute(text("DELETE FROM users WHERE email LIKE '%@bench.test' OR email LIKE '%@noise.test'"))
        c.execute(text("DELETE FROM organizations WHERE slug IN ('bench', 'bench-noise')"))
        bench_id, noise_id = uuid.uuid4(), uuid.uuid4()
        c.execute(
            text(
                "INSERT INTO organizations (id, slug, name, plan_key) VALUES (:a, 'bench', 'Bench Corp', 'enterprise'),"
                " (:b, 'bench-noise', 'Noise Ltd', 'enterprise')"
            ),
            {"a": bench_id, "b": noise_id},
        )
        pw = _hasher(1, 1024).hash("bench-password")
        owner_id = uuid.uuid4()
        users, ms = [], []
        for i in range(members + noise):
            first, last = name_of(i)
            uid = owner_id if i == 0 else uuid.uuid4()
            domain = "bench.test" if i < members else "noise.test"
            users.append((uid, f"{first.lower()}.{last.lower()}{i}@{domain}", f"{first} {last}", pw))
            org = bench_id if i < members else noise_id
            role = (
                "owner"
                if i == 0
                else ("viewer" if i % 3 == 0 else "admin" if i % 500 == 7 else "manager" if i % 50 == 3 else "member")
            )
            status = "deactivated" if i % 23 == 5 else "active"
            ms.append(
                (
                    org,
                    uid,
                    role,
                    status,
                    "2024-01-01T00:00:00Z",
                    None if i % 5 == 0 else f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                )
            )
        copy_rows(c, "users", ["id", "email", "name", "password_hash"], users)
        # created_at spread over two years, deterministic.
        copy_rows(
            c,
            "memberships",
            ["organization_id", "user_id", "role", "status", "created_at", "last_seen_at"],
            [
                (o, u, r, s, f"2024-{1 + k % 12:02d}-{1 + k % 28:02d}T{k % 24:02d}:00:00Z", ls)
                for k, (o, u, r, s, _c, ls) in enumerate(ms)
            ],
        )
        c.execute(
            text(
                "INSERT INTO invitations (organization_id, id, email, role, token_hash, expires_at) "
                "SELECT :org, gen_random_uuid(), 'invitee' || g || '@bench-invites.test', 'member', md5(g::text) || md5(g::text), now() + interval '7 days' "
                "FROM generate_series(1, 200) g"
            ),
            {"org": bench_id},
        )
        print(f"loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE users"))
        c.execute(text("VACUUM ANALYZE memberships"))
        c.execute(text("VACUUM ANALYZE invitations"))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--noise", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    ensure_database(url)
    os.environ.setdefault("TENANTRY_ENV", "development")
    app = migrated_app(url, APEX)
    load(app.config["DATABASE_URL"], args.members, args.noise)

    from app.auth.models import UserSession
    from app.extensions import db
    from app.members import listing
    from app.scoping import tenant_context
    from app.tenancy.models import Organization

    with app.app_context():
        org = db.session.execute(db.select(Organization).where(Organization.slug == "bench")).scalar_one()
        with tenant_context(org.id):
            owner = db.session.execute(text("SELECT user_id FROM memberships WHERE role = 'owner' LIMIT 1")).scalar()
        trgm = db.session.execute(text("SELECT to_regclass('ix_memberships_search_trgm') IS NOT NULL")).scalar()
        rec = UserSession(user_id=owner, ip="127.0.0.1", user_agent="bench")
        db.session.add(rec)
        db.session.commit()
        sid, org_id = str(rec.id), org.id
        args.members + 200

    client = app.test_client()
    base = f"http://bench.{APEX}"
    from app.auth import sessions

    with client.session_transaction(base_url=base) as sess:
        sessions.bind_cookie(sid, sess, f"bench.{APEX}")  # a cookie is good on its own host only

    def first_name_fragment(i):
        return name_of(i)[0].lower()

    n = args.repeat
    print(
        f"\nmembers page, organization of {args.members:,} members + 200 invitations "
        f"({args.noise:,} members in another organization); trigram index: {'yes' if trgm else 'no'}; "
        f"{n} runs each\n"
    )

    scenarios = [
        ("first page (name A–Z)", "/members"),
        ("search 'ka' (2 chars, ~4% match)", "/members?q=ka"),
        (f"search '{first_name_fragment(1234)}' (a first name)", f"/members?q={first_name_fragment(1234)}"),
        (f"search '{name_of(4242)[1].lower()}' (a last name)", f"/members?q={name_of(4242)[1].lower()}"),
        ("search exact e-mail", f"/members?q={name_of(31337)[0].lower()}.{name_of(31337)[1].lower()}31337@bench.test"),
        ("search with no match 'qqqzzz'", "/members?q=qqqzzz"),
        ("filter role=viewer", "/members?role=viewer"),
        ("filter role=owner (rare)", "/members?role=owner"),
        ("filter status=deactivated", "/members?status=deactivated"),
        ("filter status=invited", "/members?status=invited"),
        ("search 'el' + role=member + status=active", "/members?q=el&role=member&status=active"),
        ("sort joined (newest first)", "/members?sort=joined&dir=desc"),
        ("sort last seen (most recent first)", "/members?sort=last_seen&dir=desc"),
        ("sort e-mail Z–A", "/members?sort=email&dir=desc"),
        ("last page (name)", "/members?last=1"),
    ]

    def timed_get(path, headers=None):
        t0 = time.perf_counter()
        r = client.get(base + path, headers=headers or {})
        dt = time.perf_counter() - t0
        assert r.status_code == 200, (path, r.status_code, r.data[:300])
        return dt, r

    print("http (whole request: host hook, permissions, queries, template):")
    for label, path in scenarios:
        timed_get(path)  # warm
        report(label, [timed_get(path)[0] for _ in range(n)])
    report(
        "live search fragment (HX-Request) 'ka'",
        [timed_get("/members?q=ka", {"HX-Request": "true"})[0] for _ in range(n)],
    )

    # Deep pages: walk next links from the start; time each page.
    import re

    samples, path = [], "/members"
    for _ in range(min(n, 60)):
        dt, r = timed_get(path, {"HX-Request": "true"})
        samples.append(dt)
        m = re.search(rb'href="(/members\?[^"]*after=[^"]+)" rel="next"', r.data)
        if not m:
            break
        path = m.group(1).decode().replace("&amp;", "&")
    report(f"next, next, next … ({len(samples)} consecutive pages)", samples)
    samples, path = [], "/members?sort=joined&dir=desc&last=1"
    for _ in range(min(n, 60)):
        dt, r = timed_get(path, {"HX-Request": "true"})
        samples.append(dt)
        m = re.search(rb'href="(/members\?[^"]*before=[^"]+)" rel="prev"', r.data)
        if not m:
            break
        path = m.group(1).decode().replace("&amp;", "&")
    report(f"from the last page backwards ({len(samples)} pages, joined)", samples)

    print("\nsql (listing queries only, no HTTP or template):")
    with app.app_context(), tenant_context(org_id):
        keys = {"owner", "admin", "manager", "member", "viewer"}
        for label, qs in [
            ("first page", {}),
            ("search 'ka'", {"q": "ka"}),
            (f"search '{first_name_fragment(1234)}'", {"q": first_name_fragment(1234)}),
            (f"search '{name_of(4242)[1].lower()}'", {"q": name_of(4242)[1].lower()}),
            ("search 'bench' (every e-mail)", {"q": "bench"}),
            ("role=viewer", {"role": "viewer"}),
            ("sort last seen", {"sort": "last_seen", "dir": "desc"}),
        ]:
            f = listing.parse_filters(qs, keys)
            report(
                f"plan + page of 50 + count (cap {listing.COUNT_CAP:,}): {label}",
                [
                    _t(
                        lambda: (lambda g: (listing.page(g), listing.count(g, cap=listing.COUNT_CAP)))(
                            listing.prepare(f)
                        )
                    )
                    for _ in range(n)
                ],
            )
            report(
                f"  for comparison, exact count: {label}",
                [_t(lambda: listing.count(listing.prepare(f))) for _ in range(n)],
            )
            if f.q:
                g = replace(listing.prepare(f), via_index=False)
                report(
                    f"  for comparison, page without the trigram index: {label}",
                    [_t(lambda: listing.page(g)) for _ in range(n)],
                )
            db.session.rollback()
        f = listing.parse_filters({}, keys)
        t0 = time.perf_counter()
        rows = sum(1 for _ in listing.iterate(f))
        print(f"  export walk (keyset batches of 1,000): {rows:,} rows in {(time.perf_counter() - t0) * 1000:.0f} ms")
    print(
        f"\ncommand: DATABASE_URL={url} .venv/bin/python bench/members_bench.py "
        f"--members {args.members} --noise {args.noise} --repeat {n}"
    )


def _t(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()

"""Every main page an admin opens, side by side with the bare page, in one run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_pages \\
        .venv/bin/python bench/pages.py --duration 10 --rounds 2
    .venv/bin/python bench/pages.py --profile 200     # where the time goes, no load test

What it does (not a test; it prints figures):

1. Creates the database if missing (never drops it), migrates it and loads
   the demo data (``flask demo``, idempotent) plus the page bench's own
   organization, whose 30 active projects the bare page renders.
2. Serves the app with gunicorn (2 sync workers, production settings, plain
   HTTP on loopback) and signs in as acme's Owner for real (the login form,
   then the hand-off to acme's host).
3. For each page: its size, and its SQL statements per request (counted in
   process, with the same configuration, on a warm request).
4. Loads each page with wrk (``-t2 -c8`` by default) and the bare page
   (``bench/bare_app.py``: Flask + SQLAlchemy + Jinja, 30 rows by an indexed
   organization filter) in the same round, round after round, the order
   rotated each round so that a drifting machine favours no page. Prints
   req/s, p50 and p99 and each page's ratio to the bare page of its round
   (best round of each page).

``--profile N`` instead requests each page N times in process under
cProfile and prints, per page, the milliseconds per request and the
functions where the time goes (by their own time, and grouped as SQL,
templates, hooks and the rest).

The figures are only as quiet as the machine: wrk, gunicorn and PostgreSQL
share its cores. Compare ratios, not absolute figures, across machines.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import page_bench as pb  # noqa: E402  (bench/ is the script's folder)
from benchdb import ensure_database  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_pages"
SLUG, EMAIL, PASSWORD = "acme", "owner@acme.test", "tenantry-demo"

# (label, path, the goal as a ratio of the bare page)
PAGES = [
    ("switcher partial (fixed cost)", "/switcher", 0.6),
    ("dashboard", "/dashboard", 0.6),
    ("roles", "/roles/", 0.6),
    ("projects list", "/projects/", 0.6),
    ("settings", "/settings/general", 0.6),
    ("audit log (50 rows)", "/audit/", 0.5),
    ("members (50 rows)", "/members", 0.5),
]
BARE = "bare Flask + ORM, 30 rows"


def load_demo(env: dict) -> None:
    subprocess.run(
        [str(pb.VENV_BIN / "flask"), "--app", "wsgi", "demo"],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "WARNING"},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def in_process_app(url: str, port: int):
    os.environ.update(pb.app_env(url, port))  # create_app reads the environment, like gunicorn's workers
    from app import create_app

    return create_app()


def statements_per_page(app, host: str, cookies: dict) -> dict[str, list[str]]:
    """SQL statements of one warm request to each page."""
    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client(use_cookies=False)
    headers = {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    with app.app_context():
        engines = {db.engine, *db.engines.values()}  # the cross-organization bind too
    out = {}
    for _, path, _ in PAGES:
        client.get(path, headers=headers)  # warm: connection, caches, last_seen refresh
        seen: list[str] = []
        listener = lambda *a, seen=seen: seen.append(a[2])  # noqa: E731
        for engine in engines:
            event.listen(engine, "before_cursor_execute", listener)
        try:
            r = client.get(path, headers=headers)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", listener)
        if r.status_code != 200:
            raise RuntimeError(f"in-process request to {path} answered {r.status_code}")
        out[path] = seen
    return out


def sql_times(app, host: str, cookies: dict, n: int) -> None:
    """Per page, each statement's mean wall time as the app sees it (driver + server), over n warm requests."""
    import time

    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client(use_cookies=False)
    headers = {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    with app.app_context():
        engines = {db.engine, *db.engines.values()}
    for label, path, _ in PAGES:
        client.get(path, headers=headers)
        totals: dict[str, list[float]] = {}
        started: list[float] = []

        def before(*a, started=started):
            started.append(time.perf_counter())

        def after(conn, cursor, statement, *a, totals=totals, started=started):
            totals.setdefault(statement, []).append(time.perf_counter() - started.pop())

        for engine in engines:
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
        t0 = time.perf_counter()
        try:
            for _ in range(n):
                client.get(path, headers=headers)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", before)
                event.remove(engine, "after_cursor_execute", after)
        wall = (time.perf_counter() - t0) / n * 1000
        sql = sum(sum(v) for v in totals.values()) / n * 1000
        print(f"\n== {label} {path}: {wall:.2f} ms a request, of which SQL {sql:.2f} ms")
        for statement, times in sorted(totals.items(), key=lambda kv: -sum(kv[1]))[:8]:
            one = " ".join(statement.split())[:110]
            print(f"   {sum(times) / n * 1000:7.2f} ms  x{len(times) / n:.0f}  {one}")


GROUPS = [
    ("SQL (driver + pool)", ("psycopg", "sqlalchemy/pool", "sqlalchemy/engine")),
    ("ORM", ("sqlalchemy/orm", "sqlalchemy/sql")),
    ("templates", ("jinja2", "/templates/", "markupsafe")),
    ("werkzeug + flask", ("werkzeug", "flask/", "flask_")),
    ("app code", ("/app/",)),
]


def profile(app, host: str, cookies: dict, n: int) -> None:
    client = app.test_client(use_cookies=False)
    headers = {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    for label, path, _ in PAGES:
        for _ in range(20):
            client.get(path, headers=headers)
        t0 = time.perf_counter()
        for _ in range(n):
            client.get(path, headers=headers)
        plain_ms = (time.perf_counter() - t0) * 1000 / n
        prof = cProfile.Profile(time.process_time)  # CPU time: robust on a shared machine
        prof.enable()
        for _ in range(n):
            client.get(path, headers=headers)
        prof.disable()
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())  # own time of every function
        groups = dict.fromkeys([g for g, _ in GROUPS] + ["other"], 0.0)
        for (file, _, _), v in stats.stats.items():
            for g, needles in GROUPS:
                if any(s in file for s in needles):
                    groups[g] += v[2]
                    break
            else:
                groups["other"] += v[2]
        print(f"\n== {label} {path}: {plain_ms:.2f} ms per request in process (unprofiled)")
        print("   own time by part: " + ", ".join(f"{g} {100 * t / total:.0f}%" for g, t in groups.items()))
        print("   app functions by cumulative time:")
        rows = sorted(
            ((k, v) for k, v in stats.stats.items() if "/app/" in k[0] and "site-packages" not in k[0]),
            key=lambda kv: kv[1][3],
            reverse=True,
        )[:14]
        for (file, line, fn), v in rows:
            short = file.replace(str(ROOT) + "/", "")
            print(f"     {1000 * v[3] / n:6.3f} ms  {v[1]:>6} calls  {short}:{line} {fn}")
        print("   top functions by own time:")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
        for (file, line, fn), v in rows:
            short = file.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
            print(f"     {1000 * v[2] / n:6.3f} ms  {v[1]:>6} calls  {short}:{line} {fn}")


def cpu(app, host: str, cookies: dict, bare_env: dict, n: int, batches: int = 9) -> None:
    """In-process CPU cost of each page against the bare page, as ratios.

    For a shared, noisy machine: both apps run in this one process through
    their test clients. Batches of N requests alternate, bare page then the
    page, and each pair gives a ratio (bare CPU time / page CPU time); the
    median pair is printed. Another process's burst, or the machine's speed
    drifting, slows both halves of a pair alike. CPU time is this process's
    alone: the Python cost, not PostgreSQL's, not HTTP parsing, so it is
    comparable to the wrk ratio but not equal to it.
    """
    os.environ.update(bare_env)
    import bare_app

    bare = bare_app.app.test_client()
    client = app.test_client(use_cookies=False)
    headers = {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}

    def batch(get) -> float:
        c0 = time.process_time()
        for _ in range(n):
            get()
        return (time.process_time() - c0) * 1000 / n

    def get_bare():
        return bare.get("/")

    print(f"\n== in process: CPU ms per request, median of {batches} pairs of {n}-request batches")
    print(f"   {'page':<32} {'bare ms':>8} {'page ms':>8} {'ratio':>6}  goal")
    for label, path, goal in PAGES:

        def get_page(path=path):
            return client.get(path, headers=headers)

        for _ in range(max(5, n // 10)):
            get_bare(), get_page()
        pairs = sorted(((batch(get_bare), batch(get_page)) for _ in range(batches)), key=lambda bp: bp[0] / bp[1])
        b_ms, p_ms = pairs[len(pairs) // 2]
        ratio = b_ms / p_ms
        flag = "  <" if goal and ratio < goal else ""
        print(f"   {label:<32} {b_ms:8.2f} {p_ms:8.2f} {ratio:6.2f}  {goal or 0:.2f}{flag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every page + the bare page (best of)")
    parser.add_argument("--port", type=int, default=8721)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N requests per page instead")
    parser.add_argument(
        "--cpu", type=int, default=0, metavar="N", help="in-process cost against the bare page, N requests a batch"
    )
    parser.add_argument("--sql", type=int, default=0, metavar="N", help="each statement's time per page, N requests")
    parser.add_argument("--save", default="", metavar="DIR", help="also write each page's HTML into DIR")
    parser.add_argument("--only", default="", help="comma-separated paths to measure (default: every page)")
    parser.add_argument("--also", default="", help="comma-separated further paths to measure (e.g. a filtered list)")
    args = parser.parse_args()
    if args.only:
        wanted = args.only.split(",")
        PAGES[:] = [p for p in PAGES if p[1] in wanted]
    PAGES.extend((path, path, None) for path in args.also.split(",") if path)
    if not (args.profile or args.cpu or args.sql) and not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    url = pb.owner_url() if os.environ.get("DATABASE_URL") else DEFAULT_URL
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    ensure_database(url)
    env = pb.app_env(url, args.port)
    pb.migrate(env)
    load_demo(env)
    orgs = pb.seed(url)
    log = Path(tempfile.gettempdir()) / "pages_bench_gunicorn.log"
    env["BENCH_HOST"] = f"localhost:{args.port}"

    with pb.gunicorn("wsgi:app", args.port, env, log):
        host, cookies = pb.sign_in(args.port, EMAIL, PASSWORD, SLUG)
        app = in_process_app(url, args.port)
        if args.profile:
            profile(app, host, cookies, args.profile)
            return 0
        if args.sql:
            sql_times(app, host, cookies, args.sql)
            return 0
        if args.cpu:
            cpu(app, host, cookies, {"BARE_DATABASE_URL": url, "BARE_ORG_ID": str(orgs[pb.SLUG])}, args.cpu)
            return 0
        sizes = {}
        for _, path, _ in PAGES:
            status, _, body, _ = pb.request(args.port, "GET", host, path, cookies)
            if status != 200:
                raise RuntimeError(f"{path} answered {status} for {EMAIL}")
            sizes[path] = len(body)
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                (Path(args.save) / (path.strip("/").replace("/", "_") or "dashboard")).with_suffix(".html").write_bytes(
                    body
                )
        statements = statements_per_page(app, host, cookies)
        print(f"\n== pages as {EMAIL} on {host}")
        print(f"   {'page':<32} {'size':>8} {'SQL':>4}")
        for label, path, _ in PAGES:
            print(f"   {label:<32} {sizes[path] / 1024:6.1f} KB {len(statements[path]):>4}")
        if args.rounds < 1:
            return 0

        bare_env = {
            **env,
            "BARE_DATABASE_URL": url,
            "BARE_ORG_ID": str(orgs[pb.SLUG]),
            "BENCH_HOST": f"localhost:{args.port + 1}",
        }
        bare_host = f"localhost:{args.port + 1}"
        with pb.gunicorn("bench.bare_app:app", args.port + 1, bare_env, log):

            def run(path, seconds):
                if path is None:
                    return pb.wrk(args.port + 1, bare_host, "/", None, seconds, args.threads, args.connections)
                return pb.wrk(args.port, host, path, cookies, seconds, args.threads, args.connections)

            targets = [None] + [p for _, p, _ in PAGES]
            for t in targets:  # warm-up: every worker has its connections and templates
                run(t, 2)
            ratios: dict[str, list[float]] = {p: [] for _, p, _ in PAGES}
            best: dict = {}
            print(f"\n== rounds (wrk -t{args.threads} -c{args.connections} -d{args.duration}s each)")
            for i in range(args.rounds):
                order = targets[i % len(targets) :] + targets[: i % len(targets)]
                got = {t: run(t, args.duration) for t in order}
                bare = got[None]["rps"]
                best[None] = max(best.get(None, got[None]), got[None], key=lambda r: r["rps"])
                line = [f"bare {bare:.0f} req/s"]
                for _, path, _ in PAGES:
                    ratios[path].append(got[path]["rps"] / bare)
                    best[path] = max(best.get(path, got[path]), got[path], key=lambda r: r["rps"])
                    line.append(f"{path} {ratios[path][-1]:.2f}")
                print(f"   round {i + 1}: " + ", ".join(line), flush=True)

    print(
        f"\n== wrk -t{args.threads} -c{args.connections} -d{args.duration}s, gunicorn 2 sync workers, loopback"
        f" ({args.rounds} rounds; ratio = page / bare page of the same round, best round)"
    )
    print(f"   {'page':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'goal':>5}")
    r = best[None]
    print(f"   {BARE:<32} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {1:6.2f}")
    missed = []
    for label, path, goal in PAGES:
        r, ratio = best[path], max(ratios[path])
        mark = "" if not goal or ratio >= goal else "  <"
        if goal and ratio < goal:
            missed.append(label)
        print(
            f"   {label:<32} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {ratio:6.2f} {goal or 0:5.2f}{mark}"
        )
    print("\n   every page at its goal" if not missed else f"\n   below the goal: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

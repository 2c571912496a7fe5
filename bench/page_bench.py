"""Page benchmark: the projects list of a member (a 30-row page) under load.

    .venv/bin/python bench/page_bench.py                    # DATABASE_URL or the default below
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_pagebench \\
        .venv/bin/python bench/page_bench.py --duration 15 --rounds 2

What it does (not a test; it prints figures):

1. Creates the database if missing (never drops it), migrates it
   (``flask db upgrade heads``) and loads, once, an organization
   ``pagebench`` with 40 projects and a member, plus other organizations'
   rows so that the filters have something to filter.
2. Times the list's SQL for offset vs keyset pagination and the capped
   count, in an organization of 20,000 projects (the pagination choice).
3. Serves the app with gunicorn (2 sync workers) on loopback, signs the
   member in for real (POST /login on the apex, then the hand-off to the
   organization's host) and keeps the cookie; counts the SQL statements of
   one list request.
4. Loads ``/projects/`` with wrk (``-t2 -c8`` by default) and prints req/s
   and p50/p99; then the same with the RLS layer switched off (``NO FORCE``
   + ``DISABLE`` on every tenant table, as the owner), and the ratio. RLS is
   restored afterwards, on failure and on Ctrl-C too, and the posture is
   re-checked.
5. Serves ``bench/bare_app.py`` (30 rows via the ORM, nothing else) the same
   way, as the floor the real page is compared with.

The figures are only as quiet as the machine: run it when nothing else
loads the CPU (wrk, gunicorn and PostgreSQL share it), and give it a
database of its own if other benchmarks use the server, since it switches
RLS off for a while.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import ensure_database  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_bench"
SLUG, BIG_SLUG = "pagebench", "pagebench-big"
EMAIL, PASSWORD = "member@pagebench.test", "pagebench-password-1"
PROJECTS, NOISE_ORGS, NOISE_PROJECTS, BIG_PROJECTS = 40, 20, 500, 20_000
VENV_BIN = ROOT / ".venv" / "bin"

WRK_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local o, x = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); x = x + t:get("other") end
  io.write(string.format("RESULT requests=%d seconds=%.3f ok=%d other=%d p50=%d p99=%d errors=%d\\n",
    summary.requests, summary.duration / 1e6, o, x, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


# --------------------------------------------------------------------------- database
def owner_url() -> str:
    from app.database import normalise

    return normalise(os.environ.get("DATABASE_URL") or DEFAULT_URL)


def app_env(url: str, port: int) -> dict:
    """The environment the app runs with: production settings, plain HTTP on loopback."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SERVER_NAME": f"localhost:{port}",
        "SECRET_KEY": "page-bench-secret-key-not-for-production",
        "TENANTRY_ENV": "production",
        # Production refuses to start without SMTP; nothing is sent during the run.
        "MAIL_URL": "smtp://127.0.0.1:1",
        # A fixed Fernet key (production refuses to start without one); nothing secret is stored.
        "ENCRYPTION_KEYS": "YmVuY2gtb25seS1rZXktbm90LWZvci1wcm9kdWN0aW8=",
        "URL_SCHEME": "http",
        "SESSION_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def migrate(env: dict) -> None:
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade", "heads"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def seed(url: str) -> dict:
    """Load the bench organizations once; return their ids. Idempotent.

    Ends with a database-wide ``ANALYZE``, every run: a served database has
    statistics (autovacuum keeps them), but autovacuum may be off where the
    bench runs (it is on the CI machine's PostgreSQL), and a table without
    statistics gets plans no production database would (the audit page's
    list read 15 ms instead of 1 ms: a nested loop over "2 rows" that were
    2,447)."""
    found = _seed(url)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
    engine.dispose()
    return found


def _seed(url: str) -> dict:
    from argon2 import PasswordHasher

    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as c:
        found = dict(
            c.execute(
                text("SELECT slug, id FROM organizations WHERE slug IN (:a, :b) AND deleted_at IS NULL"),
                {"a": SLUG, "b": BIG_SLUG},
            ).all()
        )
        if SLUG in found and BIG_SLUG in found:
            print(f"bench data present (organizations {SLUG}, {BIG_SLUG})")
            engine.dispose()
            return found
        print("loading bench data …", flush=True)
        pw = PasswordHasher().hash(PASSWORD)
        member = c.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, email_verified_at, password_changed_at) "
                "VALUES (gen_random_uuid(), :e, 'Bench Member', :pw, now(), now()) "
                "ON CONFLICT DO NOTHING RETURNING id"
            ),
            {"e": EMAIL, "pw": pw},
        ).scalar()
        if member is None:
            member = c.execute(text("SELECT id FROM users WHERE lower(email) = :e"), {"e": EMAIL}).scalar()
        owners = []
        for i in range(5):
            owners.append(
                c.execute(
                    text(
                        "INSERT INTO users (id, email, name, password_hash, email_verified_at) "
                        "VALUES (gen_random_uuid(), :e, :n, :pw, now()) RETURNING id"
                    ),
                    {"e": f"owner{i}-{uuid.uuid4().hex[:6]}@pagebench.test", "n": f"Owner {i}", "pw": pw},
                ).scalar()
            )

        def org(slug, name, n_projects, members):
            oid = c.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, plan_key) VALUES (gen_random_uuid(), :s, :n, 'pro') "
                    "RETURNING id"
                ),
                {"s": slug, "n": name},
            ).scalar()
            for uid, role in members:
                c.execute(
                    text("INSERT INTO memberships (organization_id, user_id, role) VALUES (:o, :u, :r)"),
                    {"o": oid, "u": uid, "r": role},
                )
            uids = [u for u, _ in members]
            c.execute(
                text(
                    "INSERT INTO projects (organization_id, id, name, description, status, owner_id, updated_at) "
                    "SELECT :o, gen_random_uuid(), 'Project ' || lpad(g::text, 5, '0'), "
                    "  'Work stream ' || g || ' of ' || :n, CASE WHEN g % 10 = 0 THEN 'archived' ELSE 'active' END, "
                    "  (:uids)[1 + g % :k], now() - (g || ' minutes')::interval "
                    "FROM generate_series(1, :count) g"
                ),
                {"o": oid, "n": name, "uids": uids, "k": len(uids), "count": n_projects},
            )
            return oid

        members = [(member, "member")] + [(u, "owner") for u in owners]
        # 40 projects, every 10th archived: 36 active, so the first page holds 30 rows.
        found[SLUG] = org(SLUG, "Page Bench", PROJECTS, members)
        found[BIG_SLUG] = org(BIG_SLUG, "Page Bench Big", BIG_PROJECTS, [(owners[0], "owner")])
        for i in range(NOISE_ORGS):
            org(f"pagebench-noise-{i}", f"Noise {i}", NOISE_PROJECTS, [(owners[1 + i % 4], "owner")])
    engine.dispose()
    return found


# --------------------------------------------------------------------------- RLS switch
def tenant_tables(url: str) -> list[str]:
    from app.rls import tenant_tables as find

    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as c:
        tables = find(c)
    engine.dispose()
    return tables


def set_rls(url: str, on: bool) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as c:
        for t in tenant_tables(url):
            if on:
                c.execute(text(f'ALTER TABLE "{t}" ENABLE ROW LEVEL SECURITY'))
                c.execute(text(f'ALTER TABLE "{t}" FORCE ROW LEVEL SECURITY'))
            else:
                c.execute(text(f'ALTER TABLE "{t}" NO FORCE ROW LEVEL SECURITY'))
                c.execute(text(f'ALTER TABLE "{t}" DISABLE ROW LEVEL SECURITY'))
    engine.dispose()


@contextmanager
def rls_off(url: str):
    """RLS disabled on every tenant table for the block; restored whatever happens."""
    set_rls(url, on=False)
    try:
        yield
    finally:
        set_rls(url, on=True)


def posture_ok(url: str) -> tuple[bool, list[str]]:
    from app.rls import posture

    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as c:
        rows = posture(c, "tenantry_app")
    engine.dispose()
    bad = [name for name, ok, _ in rows if not ok]
    return not bad, bad


# --------------------------------------------------------------------------- servers
@contextmanager
def gunicorn(app_spec: str, port: int, env: dict, log: Path):
    cmd = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        "2",
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app_spec,
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({proc.returncode}); see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request(
                    "GET",
                    "/healthz" if "wsgi" in app_spec else "/",
                    headers={"Host": env.get("BENCH_HOST", f"localhost:{port}")},
                )
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not answer on port {port}; see {log}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(port, method, host, path, cookies=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    jar = {}
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie":
            k, _, rest = value.partition("=")
            jar[k] = rest.split(";", 1)[0]
    return resp.status, resp.getheader("Location"), data, jar


def sign_in(port: int, email: str = EMAIL, password: str = PASSWORD, slug: str = SLUG) -> tuple[str, dict]:
    """The real flow: GET/POST /login on the apex, follow to the hand-off on
    the organization's host; returns that host and its cookie jar."""
    apex = f"localhost:{port}"
    status, _, page, jar = request(port, "GET", apex, "/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    status, location, _, more = request(
        port, "POST", apex, "/login", jar, {"csrf_token": token, "email": email, "password": password}
    )
    jar.update(more)
    # One cookie jar per host, as a browser keeps them (cookies are host-only).
    jars, host = {apex: jar}, apex
    for _ in range(8):  # / -> hand-off: begin (org) -> issue (apex) -> redeem (org) -> /dashboard
        if status not in (301, 302, 303) or not location:
            break
        parts = urlsplit(location)
        host = parts.netloc or host
        cookies = jars.setdefault(host, {})
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        status, location, _, more = request(port, "GET", host, path, cookies)
        cookies.update(more)
    cookies = {k: v for k, v in jars.get(host, {}).items() if v}  # drop cookies the server deleted
    if host != f"{slug}.localhost:{port}" or not cookies:
        raise RuntimeError(f"sign-in did not reach {slug}'s host (ended on {host}, status {status})")
    return host, cookies


def check_page(port, host, cookies) -> int:
    status, _, body, _ = request(port, "GET", host, "/projects/", cookies)
    rows = len(re.findall(rb'<a href="/projects/[0-9a-f-]{36}">', body))
    if status != 200 or rows != 30:
        raise RuntimeError(f"/projects/ answered {status} with {rows} rows; expected 200 and 30")
    return len(body)


def count_queries(url: str, port: int, host: str, cookies: dict, path: str = "/projects/") -> list[str]:
    """SQL statements of one request to ``path``, counted in-process with the same configuration."""
    os.environ.update(app_env(url, port))  # create_app reads the environment, like gunicorn's workers
    from sqlalchemy import event

    from app import create_app
    from app.extensions import db

    app = create_app()
    statements: list[str] = []
    client = app.test_client(use_cookies=False)
    headers = {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    with app.app_context():
        engine = db.engine
    client.get(path, headers=headers)  # warm: connection, last_seen refresh
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        r = client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    if r.status_code != 200:
        raise RuntimeError(f"in-process request to {path} answered {r.status_code}")
    engine.dispose()
    return statements


# --------------------------------------------------------------------------- measurements
def wrk(port, host, path, cookies, duration, threads, connections) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_LUA)
        script = fh.name
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        script,
        "-H",
        f"Host: {host}",
    ]
    if cookies:
        cmd += ["-H", "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items())]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    m = re.search(r"RESULT requests=(\d+) seconds=([\d.]+) ok=(\d+) other=(\d+) p50=(\d+) p99=(\d+) errors=(\d+)", out)
    if not m:
        raise RuntimeError("could not read wrk's output:\n" + out)
    requests_, seconds, ok, other, p50, p99, errors = m.groups()
    res = {
        "rps": int(ok) / float(seconds),
        "p50_ms": int(p50) / 1000,
        "p99_ms": int(p99) / 1000,
        "ok": int(ok),
        "other": int(other),
        "errors": int(errors),
    }
    if res["other"]:
        raise RuntimeError(f"{res['other']} responses were not 200: the measurement is void")
    return res


def pagination_sql(url: str, big_org_id) -> list[tuple[str, float]]:
    """Median milliseconds of the list's statements in a 20,000-project organization,
    as the runtime role under RLS (what the app runs)."""
    from app.database import apply_tenant_settings, runtime_url

    engine = create_engine(
        runtime_url(url, "tenantry_app", os.environ.get("DATABASE_RUNTIME_PASSWORD")), poolclass=NullPool
    )
    # The ORM adds organization_id = :org to every statement (the index
    # leads with it); RLS adds its policy on top. The last case is RLS alone.
    base = "FROM projects WHERE organization_id = :org AND status = 'active'"
    order = "ORDER BY lower(name), id"
    search = "AND (name ILIKE '%stream 19%' OR description ILIKE '%stream 19%')"
    cases = [
        ("offset page 1", f"SELECT * {base} {order} LIMIT 31 OFFSET 0"),
        ("offset page 100 (OFFSET 2970)", f"SELECT * {base} {order} LIMIT 31 OFFSET 2970"),
        ("offset page 600 (OFFSET 17970)", f"SELECT * {base} {order} LIMIT 31 OFFSET 17970"),
        (
            "keyset, any page",
            f"SELECT * {base} AND (lower(name), id) > ('project 09000', "
            f"'00000000-0000-0000-0000-000000000000'::uuid) {order} LIMIT 31",
        ),
        ("count capped at 1,001", f"SELECT count(*) FROM (SELECT 1 {base} LIMIT 1001) s"),
        ("exact count", f"SELECT count(*) {base}"),
        ("search 'stream 19' (ILIKE), page 1", f"SELECT * {base} {search} {order} LIMIT 31"),
        ("search 'stream 19', capped count", f"SELECT count(*) FROM (SELECT 1 {base} {search} LIMIT 1001) s"),
        (
            "page 1, RLS policy alone (no ORM filter)",
            f"SELECT * FROM projects WHERE status = 'active' {order} LIMIT 31",
        ),
    ]
    out = []
    with engine.connect() as c:
        for label, sql in cases:
            times = []
            for _ in range(15):
                with c.begin():
                    apply_tenant_settings(c, big_org_id)
                    t0 = time.perf_counter()
                    c.execute(text(sql), {"org": big_org_id}).all()
                    times.append((time.perf_counter() - t0) * 1000)
            out.append((label, statistics.median(times[3:])))
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="RLS on/off pairs, interleaved (best of)")
    parser.add_argument("--port", type=int, default=8711)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2

    # Ctrl-C and SIGTERM unwind through the finally blocks (RLS restored, servers stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    url = owner_url()
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    ensure_database(url)
    env = app_env(url, args.port)
    migrate(env)
    set_rls(url, on=True)  # a run interrupted before it could restore
    orgs = seed(url)
    log = Path(tempfile.gettempdir()) / "page_bench_gunicorn.log"

    print("\n== pagination SQL (organization of 20,000 projects, runtime role, RLS on; median ms)")
    for label, ms in pagination_sql(url, orgs[BIG_SLUG]):
        print(f"   {label:<40} {ms:7.2f} ms")

    results: dict[str, list[dict]] = {"rls on": [], "rls off": []}
    env["BENCH_HOST"] = f"localhost:{args.port}"
    with gunicorn("wsgi:app", args.port, env, log):
        host, cookies = sign_in(args.port)
        size = check_page(args.port, host, cookies)
        statements = count_queries(url, args.port, host, cookies)
        print(f"\n== /projects/ as {EMAIL} on {host}: 30 rows, {size} bytes")
        print(f"   SQL statements per request: {len(statements)}")
        for i, s in enumerate(statements, 1):
            print(f"     {i}. {' '.join(s.split())[:110]}")
        run = lambda: wrk(
            args.port,
            host,
            "/projects/",
            cookies,
            args.duration,
            args.threads,  # noqa: E731
            args.connections,
        )
        wrk(args.port, host, "/projects/", cookies, 3, args.threads, args.connections)  # warm-up
        print(f"\n== rounds (wrk -t{args.threads} -c{args.connections} -d{args.duration}s each)")
        for i in range(args.rounds):
            # Alternate which goes first: a machine whose load drifts would
            # otherwise always favour the same side.
            for variant in ("rls on", "rls off") if i % 2 == 0 else ("rls off", "rls on"):
                if variant == "rls on":
                    results[variant].append(run())
                else:
                    with rls_off(url):
                        check_page(args.port, host, cookies)
                        results[variant].append(run())
            on, off = results["rls on"][-1], results["rls off"][-1]
            print(
                f"   round {i + 1}: RLS on {on['rps']:7.1f} req/s, off {off['rps']:7.1f} req/s, "
                f"ratio {on['rps'] / off['rps']:.3f}",
                flush=True,
            )
        check_page(args.port, host, cookies)
    ok, bad = posture_ok(url)
    print(f"\n   RLS restored, posture check: {'green' if ok else 'RED: ' + ', '.join(bad)}")
    if not ok:
        return 1

    bare_env = {
        **env,
        "BARE_DATABASE_URL": url,
        "BARE_ORG_ID": str(orgs[SLUG]),
        "BENCH_HOST": f"localhost:{args.port + 1}",
    }
    with gunicorn("bench.bare_app:app", args.port + 1, bare_env, log):
        wrk(args.port + 1, f"localhost:{args.port + 1}", "/", None, 3, args.threads, args.connections)
        results["bare"] = [
            wrk(args.port + 1, f"localhost:{args.port + 1}", "/", None, args.duration, args.threads, args.connections)
        ]

    best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
    print(
        f"\n== wrk -t{args.threads} -c{args.connections} -d{args.duration}s, gunicorn 2 sync workers, loopback"
        f" (best of {args.rounds})"
    )
    print(f"   {'':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for label, key in [
        ("projects list, RLS on", "rls on"),
        ("projects list, RLS off", "rls off"),
        ("bare Flask + ORM, 30 rows", "bare"),
    ]:
        r = best[key]
        print(f"   {label:<34} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    ratio = best["rls on"]["rps"] / best["rls off"]["rps"]
    print(f"\n   isolation cost: RLS on / off = {ratio:.3f}  (goal >= 0.9)")
    print(f"   real page / bare page       = {best['rls on']['rps'] / best['bare']['rps']:.3f}  (goal >= 0.6)")
    print(f"   SQL statements per request  = {len(statements)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

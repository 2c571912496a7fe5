"""The API under load: ``GET /api/v1/members`` (50 items) with a key, against
the bare page, and the rate limiter's cost with Redis.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_apibench \\
    REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/api_bench.py --duration 10 --rounds 2

What it does (not a test; it prints figures):

1. Creates the database if missing, migrates it, loads the demo data (acme:
   200+ members) and the page bench's organization (the bare page's rows),
   and makes an API key of acme's Owner with ``members:view`` (its secret
   lives only in this process).
2. Raises the plans' ``api_requests_per_minute`` for the run (restored at
   the end): the budget must not be what is measured; the limiter still
   counts every request in Redis.
3. Serves the app with gunicorn (2 sync workers, production settings) three
   ways: the limiter on Redis (``REDIS_URL``), the limiter off
   (``RATELIMIT_ENABLED=0``), and the bare page (``bench/bare_app.py``), and
   loads each with wrk (``-t2 -c8``), rounds rotated, best round of each.
4. Prints req/s, p50/p99, the API's ratio to the bare page (goal ≥ 0.6) and
   the limiter's cost (1 - with/without; goal ≤ 10 %).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import page_bench as pb  # noqa: E402  (bench/ is the script's folder)
from benchdb import ensure_database  # noqa: E402
from pages import load_demo  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_apibench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
PATH = "/api/v1/members?limit=50"
BUDGET = 100_000_000


def make_key(url: str, port: int) -> str:
    """A fresh key of acme's Owner with members:view (not printed)."""
    from app import create_app
    from app.api import keys
    from app.auth.models import User
    from app.extensions import db
    from app.members.memberships import get_membership
    from app.scoping import all_organizations, tenant_context
    from app.tenancy.models import Organization

    os.environ.update(pb.app_env(url, port))  # the served app's configuration, read from the environment
    app = create_app()
    with app.app_context():
        with all_organizations(reason="api bench: acme and its owner"):
            acme = db.session.query(Organization).filter_by(slug="acme").one()
            owner_id = db.session.query(User.id).filter_by(email="owner@acme.test").scalar()
        with tenant_context(acme.id):
            key, full = keys.create_key("api bench", ["members:view"], 30, get_membership(owner_id))
            db.session.commit()
    return full


def set_budgets(url: str, value: int | None, saved: dict | None = None) -> dict:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as c:
        before = dict(c.exec_driver_sql("SELECT key, api_requests_per_minute FROM plans").all())
        if saved is None:
            c.exec_driver_sql("UPDATE plans SET api_requests_per_minute = %s", (value,))
        else:
            for k, v in saved.items():
                c.exec_driver_sql("UPDATE plans SET api_requests_per_minute = %s WHERE key = %s", (v, k))
    engine.dispose()
    return before


def wrk(port: int, host: str, path: str, headers: dict, duration: int, threads: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(pb.WRK_LUA)
        script = fh.name
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", script]
    for k, v in {"Host": host, **headers}.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    m = re.search(r"RESULT requests=(\d+) seconds=([\d.]+) ok=(\d+) other=(\d+) p50=(\d+) p99=(\d+) errors=(\d+)", out)
    if not m:
        raise RuntimeError("could not read wrk's output:\n" + out)
    _, seconds, ok, other, p50, p99, _ = m.groups()
    if int(other):
        raise RuntimeError(f"{other} responses were not 200: the measurement is void")
    return {"rps": int(ok) / float(seconds), "p50_ms": int(p50) / 1000, "p99_ms": int(p99) / 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8731)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = pb.owner_url() if os.environ.get("DATABASE_URL") else DEFAULT_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    print(f"database: {make_url(url).render_as_string(hide_password=True)}; limiter storage: {redis_url}")
    ensure_database(url)
    env = pb.app_env(url, args.port)
    pb.migrate(env)
    load_demo(env)
    orgs = pb.seed(url)
    key = make_key(url, args.port)
    saved = set_budgets(url, BUDGET)
    log = Path(tempfile.gettempdir()) / "api_bench_gunicorn.log"
    auth = {"Authorization": f"Bearer {key}"}
    servers = {
        "api, limiter on Redis": (
            "wsgi:app",
            args.port,
            {**env, "REDIS_URL": redis_url, "API_KEY_REQUESTS_PER_MINUTE": str(BUDGET)},
        ),
        "api, limiter off": ("wsgi:app", args.port + 1, {**env, "RATELIMIT_ENABLED": "0"}),
        "bare page": (
            "bench.bare_app:app",
            args.port + 2,
            {
                **env,
                "BARE_DATABASE_URL": url,
                "BARE_ORG_ID": str(orgs[pb.SLUG]),
                "BENCH_HOST": f"localhost:{args.port + 2}",
            },
        ),
    }
    try:
        with (
            pb.gunicorn(
                *servers["api, limiter on Redis"][:2],
                {**servers["api, limiter on Redis"][2], "BENCH_HOST": f"localhost:{args.port}"},
                log,
            ),
            pb.gunicorn(
                *servers["api, limiter off"][:2],
                {**servers["api, limiter off"][2], "BENCH_HOST": f"localhost:{args.port + 1}"},
                log,
            ),
            pb.gunicorn(*servers["bare page"][:2], servers["bare page"][2], log),
        ):

            def run(name, seconds):
                _, port, _ = servers[name]
                if name == "bare page":
                    return wrk(port, f"localhost:{port}", "/", {}, seconds, args.threads, args.connections)
                # Both API servers serve SERVER_NAME localhost:<--port>: the same Host for both.
                return wrk(port, f"acme.localhost:{args.port}", PATH, auth, seconds, args.threads, args.connections)

            names = list(servers)
            for n in names:
                run(n, 2)  # warm-up
            best: dict = {}
            print(f"\n== rounds (wrk -t{args.threads} -c{args.connections} -d{args.duration}s each)")
            for i in range(args.rounds):
                order = names[i % len(names) :] + names[: i % len(names)]
                got = {n: run(n, args.duration) for n in order}
                for n, r in got.items():
                    best[n] = max(best.get(n, r), r, key=lambda x: x["rps"])
                print(
                    "   round {}: {}".format(i + 1, ", ".join(f"{n} {got[n]['rps']:.0f} req/s" for n in names)),
                    flush=True,
                )
    finally:
        set_budgets(url, None, saved)

    print(f"\n== GET {PATH} with a key; gunicorn 2 sync workers, loopback (best of {args.rounds} rounds)")
    print(f"   {'':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for n in names:
        r = best[n]
        print(f"   {n:<24} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    ratio = best["api, limiter on Redis"]["rps"] / best["bare page"]["rps"]
    cost = 1 - best["api, limiter on Redis"]["rps"] / best["api, limiter off"]["rps"]
    print(f"\n   API (limiter on) / bare page: {ratio:.2f} (goal >= 0.60)")
    print(f"   limiter cost with Redis: {cost * 100:.1f} % (goal <= 10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Enqueue cost inside a request's transaction (issue 13: goal < 1 ms).

    .venv/bin/python bench/jobs_bench.py                      # default DB below
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tenantry_bench \\
        .venv/bin/python bench/jobs_bench.py --repeat 2000

Creates (once) and migrates the database, then, as the runtime role inside
an organization's scope (a request's transaction: RLS settings applied, a
tenant row already written), times:

* **enqueue**: one ``jobs.enqueue()`` of a mail-sized job (a 3 KB rendered
  message): the statement on the request's connection, through the session;
* **commit +job / commit**: committing such a transaction with and without
  the job (the job's NOTIFY and its event row ride on the commit).

Prints p50 / p99 / max in milliseconds. The queue is emptied afterwards.
Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import ensure_database  # noqa: E402  (bench/ is the script's folder)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tenantry_bench"


def ms(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return f"p50 {statistics.median(s) * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms  max {s[-1] * 1000:.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2000)
    args = ap.parse_args()
    os.environ.setdefault("TENANTRY_ENV", "test")
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    ensure_database(url)

    from flask_migrate import upgrade

    from app import create_app, jobs
    from app.extensions import db
    from app.mail.tasks import send
    from app.projects.models import Project
    from app.scoping import tenant_context

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "MAIL_URL": "smtp://127.0.0.1:1"})
    with app.app_context():
        upgrade(revision="heads")
        owner = create_engine(app.config["DATABASE_URL"], poolclass=NullPool)
        with owner.begin() as c:
            org_id = (
                c.execute(text("SELECT id FROM organizations WHERE slug = 'jobbench'")).scalar()
                or c.execute(
                    text(
                        "INSERT INTO organizations (id, slug, name, plan_key) VALUES (gen_random_uuid(), 'jobbench', 'Job bench', 'pro') RETURNING id"
                    )
                ).scalar()
            )
        message = "x" * 3000
        enqueue, with_job, without_job = [], [], []
        with tenant_context(org_id):
            for i in range(args.repeat + 50):
                db.session.add(Project(name=f"p{i}"))
                db.session.flush()  # the request's own write: the transaction is open, settings applied
                t0 = time.perf_counter()
                jobs.enqueue(send, template="bench", to="a@example.test", message=message, after_sent=None)
                t1 = time.perf_counter()
                db.session.commit()
                t2 = time.perf_counter()
                db.session.add(Project(name=f"q{i}"))
                db.session.flush()
                t3 = time.perf_counter()
                db.session.commit()
                t4 = time.perf_counter()
                if i >= 50:  # warm-up
                    enqueue.append(t1 - t0)
                    with_job.append(t2 - t1)
                    without_job.append(t4 - t3)
        print(f"enqueue (in the transaction)  {ms(enqueue)}")
        print(f"commit with the job           {ms(with_job)}")
        print(f"commit without a job          {ms(without_job)}")
        with owner.begin() as c:
            c.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'mail.send'"))
            c.execute(text("DELETE FROM projects WHERE organization_id = :o"), {"o": org_id})
        owner.dispose()


if __name__ == "__main__":
    main()

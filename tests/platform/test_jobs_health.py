"""The console's jobs and health pages (app.jobs.admin and real probes)."""

from __future__ import annotations

import re

from sqlalchemy import text

from app.audit import PLATFORM_ORG_ID
from app.extensions import db
from app.mail import queue_mail
from tests.conftest import url


def _job(owner_engine, status=None) -> int:
    queue_mail("someone@example.test", "Hi", "reset", user=None, link="http://x/", minutes=60)
    db.session.commit()
    with owner_engine.begin() as c:
        job_id = c.execute(text("SELECT max(id) FROM procrastinate_jobs")).scalar()
        if status:
            c.execute(text("UPDATE procrastinate_jobs SET status = :s WHERE id = :i"), {"s": status, "i": job_id})
    return job_id


def _status(owner_engine, job_id):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT status FROM procrastinate_jobs WHERE id = :i"), {"i": job_id}).scalar()


def test_jobs_page_shows_queues_and_failed_jobs_and_retry_requeues(console, world, post, owner_engine, events):
    failed = _job(owner_engine, "failed")
    body = console.get(url(None, "/platform/jobs")).get_data(as_text=True)
    assert "mail.send" in body and f'value="{failed}"' in body
    r = post(console, "/platform/jobs/retry", {"job_id": str(failed)})
    assert r.status_code == 302
    assert _status(owner_engine, failed) == "todo"
    assert "platform.job_retried" in [a for a, _, _ in events(PLATFORM_ORG_ID)]


def test_cancel_a_waiting_job(console, world, post, owner_engine):
    waiting = _job(owner_engine)
    assert post(console, "/platform/jobs/cancel", {"job_id": str(waiting)}).status_code == 302
    assert _status(owner_engine, waiting) == "cancelled"


def test_a_bad_job_number_or_state_is_422_and_records_nothing(console, world, post, owner_engine, events):
    for value in ("", "abc", "²", "-1", str(2**64)):
        r = post(console, "/platform/jobs/cancel", {"job_id": value})
        assert r.status_code == 422, value
    done = _job(owner_engine, "succeeded")
    r = post(console, "/platform/jobs/retry", {"job_id": str(done)})
    assert r.status_code == 422 and "only a failed or waiting job" in r.get_data(as_text=True)
    assert not [a for a, _, _ in events(PLATFORM_ORG_ID) if a.startswith("platform.job_")]


def test_health_page_reports_every_check(console, world):
    body = console.get(url(None, "/platform/health")).get_data(as_text=True)
    for name in (
        "Database reachable",
        "Migrations at head",
        "Security posture (flask check)",
        "Job lag",
        "Redis",
        "SMTP",
    ):
        assert name in body
    rows = re.findall(r"<tr><td>([^<]+)</td>\s*<td>(.*?)</td>", body, re.S)
    state = dict(rows)
    assert "OK" in state["Database reachable"] and "OK" in state["Migrations at head"]
    assert "OK" in state["Security posture (flask check)"], state
    assert "Version" in body and "up " in body


def test_jobs_page_title_is_only_its_name(console):
    """The cancel form once sat inside <title> (a misplaced block): the tab read as markup."""
    body = console.get(url(None, "/platform/jobs")).get_data(as_text=True)
    title = body.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "Jobs · Platform" in title and "<" not in title

"""Real ``flask --app wsgi worker`` processes: SIGTERM finishes the running
job, SIGKILL leaves it to another worker, and with two workers each
periodic run happens once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import text

from app.extensions import db
from app.mail import queue_mail
from tests.conftest import APEX, free_port

ROOT = Path(__file__).resolve().parents[2]


class SlowSmtp:
    """An SMTP server whose answer to DATA waits until ``release`` (or
    ``hold`` seconds); ``started`` is set when a message begins. Refuses
    with 451 (try again later) what arrived from a client that is gone."""

    def __init__(self, hold: float):
        from aiosmtpd.controller import Controller

        self.hold = hold
        self.started = threading.Event()
        self.release = threading.Event()
        self.received: list = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        first = not self.started.is_set()
        self.started.set()
        if first:
            deadline = time.monotonic() + self.hold
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.release.is_set():
                return "451 the client went away; try again"
        self.received.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 OK"

    def stop(self):
        self.controller.stop()


@pytest.fixture
def workers(database_url, tmp_path):
    """``start(mail_url, name)`` → a running worker process (stopped at the end)."""
    procs = []

    def start(mail_url: str, name: str = "w"):
        env = dict(os.environ)
        env.update(
            {
                "TENANTRY_ENV": "test",
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret-key-not-for-production",
                "SERVER_NAME": APEX,
                "MAIL_URL": mail_url,
                "TENANTRY_INSTANCE_DIR": str(tmp_path),
                "JOBS_CONCURRENCY": "2",
                "JOBS_HEARTBEAT_SECONDS": "0.5",
                "JOBS_STALLED_SECONDS": "2",
                "LOG_LEVEL": "INFO",
                "LOG_JSON": "0",
            }
        )
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        p = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        p.log_path = tmp_path / f"{name}.log"
        p.log_file = log
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.log_file.close()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def _mail_jobs(owner_engine) -> list:
    with owner_engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(text("SELECT status, attempts FROM procrastinate_jobs WHERE task_name = 'mail.send'"))
        ]


def _queue_one_mail():
    queue_mail("patient@example.test", "Slow mail", "reset", user=None, link="http://x/", minutes=60)
    db.session.commit()


def test_sigterm_lets_the_running_job_finish(workers, owner_engine):
    smtp = SlowSmtp(hold=2.0)
    try:
        _queue_one_mail()
        w = workers(f"smtp://127.0.0.1:{smtp.port}")
        _wait(smtp.started.is_set, 30, "the worker to start sending")
        w.send_signal(signal.SIGTERM)
        assert w.wait(30) == 0, w.log_path.read_text()
        assert [m["Subject"] for m in smtp.received] == ["Slow mail"]
        assert _mail_jobs(owner_engine) == []  # done, not abandoned
    finally:
        smtp.stop()


def test_sigkill_mid_job_leaves_the_job_to_another_worker(workers, owner_engine):
    smtp = SlowSmtp(hold=60.0)
    try:
        _queue_one_mail()
        first = workers(f"smtp://127.0.0.1:{smtp.port}", "first")
        _wait(smtp.started.is_set, 30, "the first worker to start sending")
        first.kill()
        first.wait(10)
        smtp.release.set()  # the dead worker's SMTP session is refused
        assert _mail_jobs(owner_engine) == [("doing", 0)]  # held by a dead worker
        with owner_engine.connect() as c:
            mail_job = str(c.execute(text("SELECT id FROM procrastinate_jobs WHERE task_name = 'mail.send'")).scalar())
        second = workers(f"smtp://127.0.0.1:{smtp.port}", "second")
        _wait(
            lambda: smtp.received,
            60,
            lambda: (
                f"the second worker to deliver the mail; jobs {_mail_jobs(owner_engine)}; "
                f"its log:\n{second.log_path.read_text()}"
            ),
        )
        assert [m["Subject"] for m in smtp.received] == ["Slow mail"]
        _wait(lambda: _mail_jobs(owner_engine) == [], 10, "the job to be done")
        requeued = re.findall(r"re-queued \d+ job\(s\) of stopped workers: ([\d, ]+)", second.log_path.read_text())
        assert any(mail_job in ids.split(", ") for ids in requeued), second.log_path.read_text()
    finally:
        smtp.stop()


DEFERRED = re.compile(r"Periodic job audit\.seal\[(\d+)\]\(timestamp=(\d+)\) deferred for timestamp")
STARTED = re.compile(r"Starting job audit\.seal\[(\d+)\]")


def test_with_two_workers_each_periodic_run_happens_once(workers, smtp_server):
    _, mail_url = smtp_server
    a, b = workers(mail_url, "a"), workers(mail_url, "b")
    # A worker handles SIGTERM once it runs (a loaded machine can take many
    # seconds to start one): count ticks from then.
    for w in (a, b):
        _wait(lambda w=w: "Starting worker on" in w.log_path.read_text(), 90, f"{w.log_path} to start")
    time.sleep(17)  # three or more 5-second ticks of audit.seal
    for w in (a, b):
        w.send_signal(signal.SIGTERM)
    for w in (a, b):
        assert w.wait(30) == 0
    logs = [w.log_path.read_text() for w in (a, b)]
    deferred = [m.groups() for log in logs for m in DEFERRED.finditer(log)]
    ticks = Counter(ts for _, ts in deferred)
    assert len(ticks) >= 3, logs
    assert max(ticks.values()) == 1, f"a tick deferred twice: {ticks}"
    started = Counter(job for log in logs for job in STARTED.findall(log))
    assert set(started) == {job for job, _ in deferred} and max(started.values()) == 1

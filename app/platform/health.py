"""The console's health page: what an operator checks first, in one place.

Each check answers ``(name, ok, detail)`` and never raises: a failing probe
is a red row, not a 500. ``/readyz`` stays the machine-readable form.
Probes of other machines (SMTP, Redis) give up after ``PROBE_TIMEOUT``
seconds so the page answers while they hang.
"""

from __future__ import annotations

import importlib.metadata
import os
import smtplib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.jobs import admin as jobs_admin
from app.rls import posture
from app.scoping import all_organizations

PROBE_TIMEOUT = 3.0
STARTED = time.time()
# Jobs waiting longer than this make the job-lag check fail.
JOB_LAG_LIMIT = 300


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not configured (neither good nor bad)
    detail: str


def _database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return Check("Database reachable", True, "answers as the runtime role")
    except Exception as e:  # any failure is the answer
        db.session.rollback()
        return Check("Database reachable", False, type(e).__name__)


def _migrations() -> Check:
    try:
        scripts = ScriptDirectory(os.path.join(os.path.dirname(current_app.root_path), "migrations"))
        head = scripts.get_current_head()
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.rollback()
        ok = current == head
        return Check("Migrations at head", ok, f"database {current}" + ("" if ok else f", code {head}"))
    except Exception as e:
        db.session.rollback()
        return Check("Migrations at head", False, type(e).__name__)


def _posture() -> list[Check]:
    cfg = current_app.config
    try:
        with all_organizations(reason="platform console: security posture") as engine, engine.connect() as conn:
            rows = posture(conn, cfg["DATABASE_RUNTIME_ROLE"], cfg["DATABASE_CROSS_ORG_ROLE"])
    except Exception as e:
        return [Check("Security posture (flask check)", False, type(e).__name__)]
    failed = [name for name, ok, _ in rows if not ok]
    summary = Check(
        "Security posture (flask check)",
        not failed,
        f"{len(rows) - len(failed)} of {len(rows)} checks pass" + (": " + "; ".join(failed[:5]) if failed else ""),
    )
    return [summary]


def _jobs() -> Check:
    try:
        status = jobs_admin.status(limit=0)
    except Exception as e:
        db.session.rollback()
        return Check("Job lag", False, type(e).__name__)
    ages = [q.oldest_waiting_seconds for q in status.queues if q.oldest_waiting_seconds is not None]
    lag = max(ages) if ages else 0.0
    return Check("Job lag", lag <= JOB_LAG_LIMIT, f"oldest waiting job: {lag:.0f} s (limit {JOB_LAG_LIMIT} s)")


def _redis() -> Check:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return Check("Redis", None, "not configured (rate limits in memory)")
    try:
        redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT).ping()
        return Check("Redis", True, "answers PING")
    except Exception as e:
        return Check("Redis", False, type(e).__name__)


def _smtp() -> Check:
    url = current_app.config.get("MAIL_URL")
    if not url:
        return Check("SMTP", None, "not configured (development outbox)")
    parts = urlsplit(url)
    secure = parts.scheme == "smtps"
    host, port = parts.hostname or "localhost", parts.port or (465 if secure else 25)
    try:
        cls = smtplib.SMTP_SSL if secure else smtplib.SMTP
        with cls(host, port, timeout=PROBE_TIMEOUT) as smtp:
            code, _ = smtp.noop()
        return Check("SMTP", code == 250, f"{host}:{port} answered {code}")
    except Exception as e:
        return Check("SMTP", False, f"{host}:{port}: {type(e).__name__}")


def version() -> str:
    try:
        return importlib.metadata.version("tenantry")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def uptime_seconds() -> float:
    return time.time() - STARTED


def checks() -> list[Check]:
    """Every check, in the order the page lists them."""
    return [_database(), _migrations(), *_posture(), _jobs(), _redis(), _smtp()]

"""Usage per key per day, and each key's "last used" (time and IP).

Neither is written per request: a write per API call would cost more than
most calls. Each process counts in memory and writes a key's counts (one
upsert) and its last use (one update) at most once every
``API_USAGE_FLUSH_SECONDS`` (60 s), when a request of that key comes. So
"last used" is exact to the minute, and a process that stops loses at most
its last minute of counts (the limits themselves are in the limiter's
storage, not here).
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

from flask import current_app, request
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from app import hooks
from app.api import ratelimit
from app.api.models import ApiKey, ApiUsageDaily
from app.audit.integrity import canonical_ip
from app.extensions import db
from app.util import utcnow

_lock = threading.Lock()
# key id -> {day: [requests, throttled]}
_pending: dict = {}
# key id -> time.monotonic() of this process's last write for it
_flushed: dict = {}


def count(key: ApiKey, throttled: bool) -> None:
    """Count one request of ``key`` (today, UTC), and write what is pending
    when this process last wrote for the key long enough ago."""
    day = utcnow().date()
    with _lock:
        days = _pending.setdefault(key.id, {})
        n = days.setdefault(day, [0, 0])
        n[0] += 1
        n[1] += 1 if throttled else 0
        last = _flushed.get(key.id)
        due = last is None or time.monotonic() - last >= current_app.config.get("API_USAGE_FLUSH_SECONDS", 60)
        if not due:
            return
        _flushed[key.id] = time.monotonic()
        days = _pending.pop(key.id, {})
    _write(key, days)


def _write(key: ApiKey, days: dict[date, list[int]]) -> None:
    """Upsert the counts and stamp the last use, committed on their own
    (a request refused after this, or rolled back, keeps them)."""
    for day, (requests, throttled) in days.items():
        stmt = insert(ApiUsageDaily).values(
            organization_id=key.organization_id, api_key_id=key.id, day=day, requests=requests, throttled=throttled
        )
        db.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["organization_id", "api_key_id", "day"],
                set_={
                    "requests": ApiUsageDaily.requests + stmt.excluded.requests,
                    "throttled": ApiUsageDaily.throttled + stmt.excluded.throttled,
                },
            )
        )
    now = utcnow()
    ip = canonical_ip(request.remote_addr)
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id)
        .values(last_used_at=now, last_used_ip=ip)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def requests_since(days: int) -> dict:
    """Requests per key of the current organization over the last ``days``
    UTC days, today included (``{key id: count}``): the keys list, the
    usage charts and the plan meters read this."""
    since = utcnow().date() - timedelta(days=days - 1)
    rows = db.session.execute(
        select(ApiUsageDaily.api_key_id, func.sum(ApiUsageDaily.requests))
        .where(ApiUsageDaily.day >= since)
        .group_by(ApiUsageDaily.api_key_id)
    ).all()
    return {k: int(n) for k, n in rows}


def requests_today() -> int:
    """The current organization's API requests today (UTC), every key: one statement."""
    return int(
        db.session.execute(
            select(func.coalesce(func.sum(ApiUsageDaily.requests), 0)).where(ApiUsageDaily.day == utcnow().date())
        ).scalar_one()
    )


@hooks.api_usage_of.connect
def _api_usage(org) -> hooks.ApiUsage:
    """Requests today (the daily rows) and this minute (the limiter's
    counter) for the plan and usage page's meters."""
    minute, per_minute = ratelimit.used_this_minute(org)
    return hooks.ApiUsage(today=requests_today(), this_minute=minute, per_minute=per_minute)


def forget() -> None:
    """Drop what this process holds (tests)."""
    with _lock:
        _pending.clear()
        _flushed.clear()

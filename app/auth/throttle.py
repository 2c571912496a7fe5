"""Throttles for sign-in and for everything that sends mail.

They count on Flask-Limiter's storage (Redis with ``REDIS_URL``, so every
worker shares the counts; memory in development) through its strategy
object, because the keys are not the request's address alone: failed log-ins
count per e-mail address (known or not, so the answer never reveals whether
an account exists), mail sends count per account.

A limit is named by the configuration key that holds it
(``"LOGIN_FAILURES_PER_ACCOUNT"`` → ``"5 per 15 minutes"``).
"""
from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import parse

from app.extensions import limiter

log = logging.getLogger("tenantry.throttle")


def _active() -> bool:
    return bool(limiter.enabled and getattr(limiter, "initialized", True) and limiter._limiter is not None)


def _item(config_key: str):
    return parse(current_app.config[config_key])


def _ids(config_key: str, key: str) -> tuple[str, str]:
    return ("tenantry", f"{config_key.lower()}:{(key or '').strip().lower()}")


def allowed(config_key: str, key: str) -> bool:
    """True while ``key`` is under the limit (consumes nothing)."""
    if not _active():
        return True
    try:
        return limiter.limiter.test(_item(config_key), *_ids(config_key, key))
    except Exception:  # storage down: fail open, loudly (a 500 on log-in helps nobody)
        log.exception("throttle storage failed (test %s)", config_key)
        return True


def hit(config_key: str, key: str) -> bool:
    """Count one event for ``key``; False when it went over the limit."""
    if not _active():
        return True
    try:
        return limiter.limiter.hit(_item(config_key), *_ids(config_key, key))
    except Exception:
        log.exception("throttle storage failed (hit %s)", config_key)
        return True


def retry_after(config_key: str, key: str) -> int:
    """Seconds until ``key`` may try again (at least 1)."""
    if not _active():
        return 1
    try:
        stats = limiter.limiter.get_window_stats(_item(config_key), *_ids(config_key, key))
        return max(1, math.ceil(stats.reset_time - time.time()))
    except Exception:
        log.exception("throttle storage failed (stats %s)", config_key)
        return 60


def wait_message(seconds: int, what: str = "attempts") -> str:
    """"Too many attempts. Try again in 15 minutes." — whole minutes, rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many {what}. Try again in {minutes} minute{'s' if minutes != 1 else ''}."

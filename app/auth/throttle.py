"""Throttles for sign-in and for everything that sends mail.

They count on Flask-Limiter's storage (Redis with ``REDIS_URL``, so every
worker shares the counts; memory in development) through its strategy
object, because the keys are not the request's address alone: failed log-ins
count per (e-mail address, client address) and per e-mail address (known or
not, so the answer never reveals whether an account exists), mail sends
count per account.

A limit is named by the configuration key that holds it
(``"LOGIN_FAILURES_PER_ACCOUNT_AND_IP"`` → ``"5 per 15 minutes"``); a tiered
one holds several (``"10 per minute; 20 per 15 minutes"``, ``tiered_wait``).

When Redis is down or hung, the throttles still limit: a call Redis does not
answer within ``REDIS_TIMEOUT_MS`` is answered from this process's memory,
with the same strategy. After ``REDIS_FAILURES_BEFORE_FALLBACK`` failures in
a row Redis is not asked at all for ``REDIS_RETRY_SECONDS`` (no request waits
on it); then one call tries it again, and once it answers the counts are
shared again. An outage logs one warning when it begins and one info line
when it ends, not a traceback per call.

What an outage keeps and loses:

- kept: every limit, counted per process — with N workers an attacker gets
  up to N times the attempts before "Too many attempts";
- not seen while it lasts: counts and lockouts made in Redis before it;
- lost: counts made in memory during it (not copied to Redis when it comes
  back, gone when the process restarts). Lockouts in Redis from before the
  outage, still inside their window, apply again once Redis answers.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from flask import current_app
from limits import parse, parse_many
from limits.storage import MemoryStorage

from app.extensions import limiter

log = logging.getLogger("tenantry.throttle")


class _Breaker:
    """Whether to ask the shared storage; per process, thread-safe.

    Closed (ask) until ``failures`` calls in a row have failed; then open
    (don't ask) for ``seconds``; then one call at a time may try: a success
    closes it, a failure opens it again. :meth:`failed` logs one warning per
    outage and :meth:`succeeded` one info line when it ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None  # time.monotonic(); None while closed
        self._probing = False
        self._outage_since: float | None = None

    def should_try(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._probing or time.monotonic() < self._open_until:
                return False
            self._probing = True  # this call is the one probe; the others keep to memory
            return True

    def succeeded(self) -> None:
        with self._lock:
            since = self._outage_since
            self._failures, self._open_until, self._probing, self._outage_since = 0, None, False, None
        if since is not None:
            log.info(
                "rate-limit storage answers again after %.0f s: throttles are shared across workers again",
                time.monotonic() - since,
            )

    def failed(self, exc: Exception, failures: int, seconds: float) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._open_until is None and self._failures < failures:
                # Below the threshold: one lost call, answered from memory.
                log.debug("rate-limit storage failed (%s: %s)", type(exc).__name__, exc)
                return
            self._open_until = time.monotonic() + seconds
            announce = self._outage_since is None
            if announce:
                self._outage_since = time.monotonic()
        if announce:
            log.warning(
                "rate-limit storage unreachable (%s: %s): throttles count in this process's memory "
                "and try the storage again every %s s",
                type(exc).__name__,
                exc,
                seconds,
            )


class _Guard:
    """The configured strategy, its in-memory stand-in, and their breaker."""

    def __init__(self, primary) -> None:
        self.primary = primary
        self.memory = type(primary)(MemoryStorage())
        self.breaker = _Breaker()


_guard: _Guard | None = None
_guard_lock = threading.Lock()


def _current_guard() -> _Guard:
    """The guard of the limiter's configured strategy. When ``create_app`` has
    bound a new storage (a second app, in the tests), a new guard: closed, with
    empty memory."""
    global _guard
    # The configured strategy itself, not ``limiter.limiter``: that one turns
    # into Flask-Limiter's own fallback once its request checks mark the
    # storage dead, and only they would ever mark it alive again.
    primary = limiter._limiter
    guard = _guard
    if guard is None or guard.primary is not primary:
        with _guard_lock:
            if _guard is None or _guard.primary is not primary:
                _guard = _Guard(primary)
            guard = _guard
    return guard


def _call(method: str, config_key: str, key: str):
    """``method`` of the strategy for this limit and key: from the shared
    storage while the breaker lets it be asked and it answers, otherwise from
    this process's memory. A storage failure never reaches the caller."""
    return call_item(method, _item(config_key), *_ids(config_key, key))


def call_item(method: str, item, *ids: str):
    """``method`` (``hit``, ``test``, ``get_window_stats``) of the configured
    strategy for the limit ``item`` and ``ids``, with the same fallback as the
    throttles: this process's memory while the shared storage fails. Used by
    the API's rate limits (``app.api.ratelimit``), whose limits vary by plan."""
    guard = _current_guard()
    if guard.breaker.should_try():
        try:
            result = getattr(guard.primary, method)(item, *ids)
        except Exception as exc:  # any storage failure: count in memory, never fail the request
            cfg = current_app.config
            guard.breaker.failed(exc, cfg.get("REDIS_FAILURES_BEFORE_FALLBACK", 3), cfg.get("REDIS_RETRY_SECONDS", 10))
        else:
            guard.breaker.succeeded()
            return result
    return getattr(guard.memory, method)(item, *ids)


def with_shared_storage(fn):
    """``fn(strategy)`` against the configured (shared) strategy, under the
    same breaker as ``call_item``; ``None`` while the breaker keeps the
    storage out or when the call fails (counted as a storage failure). The
    caller then counts through ``call_item``, which falls back to memory."""
    guard = _current_guard()
    if not guard.breaker.should_try():
        return None
    try:
        result = fn(guard.primary)
    except Exception as exc:  # any storage failure: the caller counts in memory, never fail the request
        cfg = current_app.config
        guard.breaker.failed(exc, cfg.get("REDIS_FAILURES_BEFORE_FALLBACK", 3), cfg.get("REDIS_RETRY_SECONDS", 10))
        return None
    guard.breaker.succeeded()
    return result


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
    return _call("test", config_key, key)


def hit(config_key: str, key: str) -> bool:
    """Count one event for ``key``; False when it went over the limit."""
    if not _active():
        return True
    return _call("hit", config_key, key)


def retry_after(config_key: str, key: str) -> int:
    """Seconds until ``key`` may try again (at least 1)."""
    if not _active():
        return 1
    stats = _call("get_window_stats", config_key, key)
    return max(1, math.ceil(stats.reset_time - time.time()))


def _items(config_key: str):
    return parse_many(current_app.config[config_key])


def tiered_wait(config_key: str, key: str) -> int:
    """Seconds ``key`` must wait under a tiered limit (``"10 per minute; 20
    per hour"``): 0 while every tier has room, else the longest wait of the
    tiers that are full. The more tiers are full, the longer the wait: a
    growing delay made of fixed limits (consumes nothing)."""
    if not _active():
        return 0
    wait = 0
    ids = _ids(config_key, key)
    for item in _items(config_key):
        if not call_item("test", item, *ids):
            stats = call_item("get_window_stats", item, *ids)
            wait = max(wait, max(1, math.ceil(stats.reset_time - time.time())))
    return wait


def hit_tiers(config_key: str, key: str) -> list:
    """Count one event for ``key`` in every tier of a tiered limit. Returns
    the tiers this event filled (it was counted, and now the tier has no
    room left): a lockout that starts with this event."""
    if not _active():
        return []
    ids = _ids(config_key, key)
    filled = []
    for item in _items(config_key):
        if call_item("hit", item, *ids) and not call_item("test", item, *ids):
            filled.append(item)
    return filled


def wait_message(seconds: int, what: str = "attempts") -> str:
    """ "Too many attempts. Try again in 15 minutes." — whole minutes, rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many {what}. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def active() -> bool:
    """True when rate limiting is on (``RATELIMIT_ENABLED`` and a storage)."""
    return _active()

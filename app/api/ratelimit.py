"""API rate limits: per organization by plan, and per key.

* The organization's budget is ``limit(org, "api_requests_per_minute")``
  (its plan, or an override); every key of the organization draws on it.
* Each key also has its own budget (``API_KEY_REQUESTS_PER_MINUTE``), so one
  runaway script cannot spend the whole organization's.
* Counters are keyed by organization id and key id: a noisy organization
  only ever spends its own counters, never another's.
* They live in Flask-Limiter's storage (Redis with ``REDIS_URL``, shared by
  every worker; memory otherwise), counted with its configured strategy.
* **Redis unreachable: keep answering**, with a per-process count in memory
  (``app.auth.throttle.call_item``: the same breaker as the sign-in
  throttles, one warning per outage, retried every ``REDIS_RETRY_SECONDS``).
  Refusing every API call while Redis is down would turn a cache outage
  into a full API outage; a per-process limit still caps each worker.
* Only ``/api/`` requests are counted (browser pages never are).

Counting costs one Redis round trip a request: with the default fixed-window
strategy on Redis, one script increments both budgets and reads their
expiries (``_hit_all``), the same keys and the same arithmetic as the
strategy's own ``hit`` + ``get_window_stats`` (which took six round trips, a
third of an API request's time). Any other strategy or storage (memory in
development) counts through the strategy itself.

Every API answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds) for the tighter of the two budgets; a refusal
is 429 problem+json with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from app.auth import throttle
from app.tenancy.entitlements import limit


@dataclass(frozen=True)
class State:
    """The tighter budget after this request: its size, what is left, seconds to reset."""

    limit: int
    remaining: int
    reset: int
    allowed: bool

    def headers(self) -> dict:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.reset))
        return out


def _count(per_minute: int, *ids: str) -> State:
    item = RateLimitItemPerMinute(per_minute)
    allowed = throttle.call_item("hit", item, *ids)
    stats = throttle.call_item("get_window_stats", item, *ids)
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    return State(per_minute, max(0, stats.remaining), reset, bool(allowed))


# For each key: INCRBY 1, set the expiry on the window's first hit (as the
# storage's own incr_expire script does), then the count and the TTL.
_HIT_ALL = """
local out = {}
for i, key in ipairs(KEYS) do
  local current = redis.call("incrby", key, 1)
  if tonumber(current) == 1 then
    redis.call("expire", key, ARGV[i])
  end
  out[#out + 1] = current
  out[#out + 1] = redis.call("ttl", key)
end
return out
"""
_scripts: dict[int, object] = {}


def _hit_all(budgets: list[tuple[int, tuple[str, ...]]]) -> list[State] | None:
    """Count one request against every ``(per_minute, ids)`` budget in one
    round trip, or ``None`` when the configured strategy is not fixed-window
    on Redis, or the shared storage is out (the caller counts per budget)."""

    def run(strategy):
        storage = strategy.storage
        if not (isinstance(strategy, FixedWindowRateLimiter) and isinstance(storage, RedisStorage)):
            return None
        script = _scripts.get(id(storage))
        if script is None or script.registered_client is not storage.get_connection():
            script = _scripts[id(storage)] = storage.get_connection().register_script(_HIT_ALL)
        items = [RateLimitItemPerMinute(n) for n, _ids in budgets]
        keys = [storage.prefixed_key(item.key_for(*ids)) for item, (_n, ids) in zip(items, budgets, strict=True)]
        return items, script(keys, [item.get_expiry() for item in items])

    answer = throttle.with_shared_storage(run)
    if answer is None:
        return None
    items, flat = answer
    states = []
    for i, item in enumerate(items):
        count, ttl = int(flat[2 * i]), int(flat[2 * i + 1])
        states.append(State(item.amount, max(0, item.amount - count), max(0, ttl), count <= item.amount))
    return states


def hit(org, api_key) -> State | None:
    """Count this request against the organization's and the key's budgets.

    Returns the tighter state (``allowed`` False when either budget is
    spent), or ``None`` when rate limiting is off or both are unlimited.
    """
    if not throttle.active():
        return None
    budgets = []
    org_limit = limit(org, "api_requests_per_minute")
    if org_limit is not None:
        budgets.append((org_limit, ("api-org", str(org.id))))
    key_limit = current_app.config.get("API_KEY_REQUESTS_PER_MINUTE")
    if key_limit:
        budgets.append((int(key_limit), ("api-key", str(api_key.id))))
    if not budgets:
        return None
    states = _hit_all(budgets)
    if states is None:
        states = [_count(n, *ids) for n, ids in budgets]
    refused = [s for s in states if not s.allowed]
    if refused:
        return max(refused, key=lambda s: s.reset)
    return min(states, key=lambda s: (s.remaining, -s.reset))


def used_this_minute(org) -> tuple[int | None, int | None]:
    """``(requests counted this minute, the organization's per-minute limit)``
    from the organization's own counter (the one ``hit`` judges by; reading
    it counts nothing). ``(None, limit)`` when it is not counted: rate
    limiting off or an unlimited rate."""
    per_minute = limit(org, "api_requests_per_minute")
    if not throttle.active() or per_minute is None:
        return None, per_minute
    stats = throttle.call_item("get_window_stats", RateLimitItemPerMinute(per_minute), "api-org", str(org.id))
    return max(0, per_minute - max(0, stats.remaining)), per_minute

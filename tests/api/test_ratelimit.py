"""Rate limits: per organization by plan and per key, headers, 429 with
Retry-After, isolation between organizations, Redis unreachable, pages not
counted, usage per key per day."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from app.extensions import db
from app.scoping import all_organizations
from app.tenancy.models import Plan
from tests.api.conftest import problem


@pytest.fixture
def tiny_plans(app):
    """Plans with tiny per-minute budgets (restored by the next test's truncation? plans are kept: restore here)."""
    with all_organizations(reason="test: tiny API budgets"):
        before = {p.key: p.api_requests_per_minute for p in db.session.query(Plan).all()}
        db.session.execute(update(Plan).values(api_requests_per_minute=3))
    db.session.commit()
    yield
    with all_organizations(reason="test: restore API budgets"):
        for k, v in before.items():
            db.session.execute(update(Plan).where(Plan.key == k).values(api_requests_per_minute=v))
    db.session.commit()


def test_every_answer_carries_ratelimit_headers(world, api, make_key):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    r = api.get("acme", "/members", key)
    assert r.headers["RateLimit-Limit"] == "300"  # the key's budget is tighter than pro's 600
    assert int(r.headers["RateLimit-Remaining"]) == 299 and int(r.headers["RateLimit-Reset"]) <= 60
    r = api.get("acme", "/projects", key)  # a refusal for scope still counts and says so
    assert r.status_code == 403 and r.headers["RateLimit-Remaining"] == "298"


def test_over_the_plans_budget_is_429_with_retry_after(world, api, make_key, tiny_plans):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    for _ in range(3):
        assert api.get("acme", "/members", key).status_code == 200
    r = api.get("acme", "/members", key)
    problem(r, 429, "rate-limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.headers["RateLimit-Remaining"] == "0"


def test_a_noisy_organization_never_throttles_another(world, api, make_key, tiny_plans):
    _, acme_key = make_key(world.acme, world.users["admin"], ["members:view"])
    _, globex_key = make_key(world.globex, world.users["globex_owner"], ["members:view"])
    for _ in range(10):
        api.get("acme", "/members", acme_key)
    assert api.get("acme", "/members", acme_key).status_code == 429
    r = api.get("globex", "/members", globex_key)
    assert r.status_code == 200 and r.headers["RateLimit-Remaining"] == "2"


def test_each_key_has_its_own_budget(world, api, make_key, app, monkeypatch):
    monkeypatch.setitem(app.config, "API_KEY_REQUESTS_PER_MINUTE", 2)
    _, k1 = make_key(world.acme, world.users["admin"], ["members:view"])
    _, k2 = make_key(world.acme, world.users["admin"], ["members:view"])
    assert [api.get("acme", "/members", k1).status_code for _ in range(3)] == [200, 200, 429]
    assert api.get("acme", "/members", k2).status_code == 200


def test_pages_are_not_counted(world, api, make_key, login, tiny_plans):
    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    browser = login(world.users["admin"], "acme")
    for _ in range(5):
        assert browser.get("http://acme.tenantry.localhost/members").status_code == 200
    assert api.get("acme", "/members", key).headers["RateLimit-Remaining"] == "2"


def test_usage_is_kept_per_key_per_day(world, api, make_key, app, monkeypatch, owner_engine, tiny_plans):
    monkeypatch.setitem(app.config, "API_USAGE_FLUSH_SECONDS", 0)
    kid, key = make_key(world.acme, world.users["admin"], ["members:view"])
    for _ in range(5):
        api.get("acme", "/members", key)
    with owner_engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT day, requests, throttled FROM api_usage_daily WHERE api_key_id = %s", (kid,)
        ).all()
    assert len(rows) == 1 and rows[0][1:] == (5, 2)


def test_redis_unreachable_keeps_answering_with_a_per_process_limit(world, make_key, app, caplog, tiny_plans):
    """With the limiter's storage on a Redis nobody listens to, the API still
    answers, counts in this process's memory (the 4th call is refused) and
    logs a warning once."""
    # The strategy the limiter built, pointed at a dead Redis: what a Redis
    # outage looks like from inside the process.
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    from app.auth import throttle
    from app.extensions import limiter

    _, key = make_key(world.acme, world.users["admin"], ["members:view"])
    real = limiter._limiter
    limiter._limiter = FixedWindowRateLimiter(
        storage_from_string("redis://127.0.0.1:1/0", socket_connect_timeout=0.05, socket_timeout=0.05)
    )
    try:
        from tests.api.conftest import Api

        api = Api(app)
        with caplog.at_level(logging.WARNING, logger="tenantry.throttle"):
            codes = [api.get("acme", "/members", key).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert any("unreachable" in r.message for r in caplog.records)
    finally:
        limiter._limiter = real
        throttle._guard = None


def _shared_redis_storage():
    from limits.storage import RedisStorage

    from app.extensions import limiter

    storage = limiter._limiter.storage
    return storage if isinstance(storage, RedisStorage) else None


def test_one_round_trip_counts_both_budgets_as_the_strategy_would(app):
    """With Redis, ``hit`` counts the organization's and the key's budgets in
    one script call (one round trip), and its states equal the strategy's
    own ``hit`` + ``get_window_stats`` over the same sequence, across the limit."""
    import uuid

    from app.api import ratelimit

    with app.test_request_context():
        storage = _shared_redis_storage()
        if storage is None:
            pytest.skip("the limiter's storage is memory here (set REDIS_URL to run this against Redis)")
        a, b = (str(uuid.uuid4()) for _ in range(2))
        client = storage.get_connection()
        sent = []
        original = client.execute_command

        def counting(*args, **kw):
            sent.append(args[0])
            return original(*args, **kw)

        client.execute_command = counting
        try:
            fast = [ratelimit._hit_all([(4, ("api-org", a)), (6, ("api-key", a))]) for _ in range(7)]
        finally:
            del client.execute_command
        assert 7 <= len(sent) <= 7 + 1  # one EVALSHA a request (plus one SCRIPT LOAD, once)
        slow = [[ratelimit._count(4, "api-org", b), ratelimit._count(6, "api-key", b)] for _ in range(7)]
        assert [[(s.limit, s.remaining, s.allowed) for s in pair] for pair in fast] == [
            [(s.limit, s.remaining, s.allowed) for s in pair] for pair in slow
        ]
        assert [s.allowed for s, _ in fast] == [True] * 4 + [False] * 3
        assert all(0 <= s.reset <= 60 for pair in fast for s in pair)

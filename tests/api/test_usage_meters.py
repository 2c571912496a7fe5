"""The plan and usage page's API meters: requests this minute (the
limiter's own counter, against the per-minute limit: amber over 80 %, red
at it, with what happens then) and today (the daily usage rows), read from
the API area through ``hooks.api_usage_of`` (settings never imports it)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from app.api.models import ApiUsageDaily
from app.extensions import db
from app.scoping import tenant_context
from app.util import utcnow
from tests.conftest import url


def _meter(html: str, label: str) -> str:
    """The meter block whose label is ``label``, from its state class on."""
    for block in html.split('<div class="usage usage--')[1:]:
        if f">{label}" in block.split("</span>")[0]:
            return "usage--" + block
    raise AssertionError(f"no meter {label!r}")


def _usage_rows(org, key_id, day, requests):
    with tenant_context(org.id):
        db.session.add(ApiUsageDaily(api_key_id=key_id, day=day, requests=requests, throttled=0))
        db.session.commit()


def test_requests_today_count_every_key_of_today_only(world, login, make_key):
    today = utcnow().date()
    k1, _ = make_key(world.acme, world.users["owner"], ["members:view"])
    k2, _ = make_key(world.acme, world.users["owner"], ["members:view"])
    g1, _ = make_key(world.globex, world.users["globex_owner"], ["members:view"])
    _usage_rows(world.acme, k1, today, 1200)
    _usage_rows(world.acme, k2, today, 34)
    _usage_rows(world.acme, k1, today - timedelta(days=1), 5000)  # yesterday: not today
    _usage_rows(world.globex, g1, today, 777)  # another organization's
    html = login(world.users["owner"], "acme").get(url("acme", "/settings/plan")).get_data(as_text=True)
    today_meter = _meter(html, "API requests today")
    assert "1,234 (no daily limit" in today_meter
    assert "<meter" not in today_meter  # nothing to draw against: the limit is per minute


def test_requests_this_minute_turn_amber_then_red_at_the_limit(world, login, make_key, api, owner_engine):
    _, key = make_key(world.acme, world.users["owner"], ["members:view"])
    # (plans are seeded once, not reset between tests: put it back)
    with owner_engine.begin() as conn:
        was = conn.execute(text("SELECT api_requests_per_minute FROM plans WHERE key = 'pro'")).scalar()
        conn.execute(text("UPDATE plans SET api_requests_per_minute = 6 WHERE key = 'pro'"))
    try:
        c = login(world.users["manager"], "acme")
        for _ in range(2):
            assert api.get("acme", "/members", key).status_code == 200
        minute = _meter(c.get(url("acme", "/settings/plan")).get_data(as_text=True), "API requests this minute")
        assert "2 of 6" in minute and "usage--ok" in minute and 'value="2"' in minute
        assert "429 Too Many Requests" in minute  # what happens at the limit, said before it
        for _ in range(3):
            assert api.get("acme", "/members", key).status_code == 200
        minute = _meter(c.get(url("acme", "/settings/plan")).get_data(as_text=True), "API requests this minute")
        assert "5 of 6" in minute and "usage--warn" in minute and "Over 80 %" in minute
        assert api.get("acme", "/members", key).status_code == 200
        assert api.get("acme", "/members", key).status_code == 429  # the limit holds
        minute = _meter(c.get(url("acme", "/settings/plan")).get_data(as_text=True), "API requests this minute")
        assert "6 of 6" in minute and "usage--full" in minute and "At the limit" in minute
        # Globex's counter is its own.
        g = login(world.users["globex_owner"], "globex")
        html = g.get(url("globex", "/settings/plan")).get_data(as_text=True)
        if "API requests this minute" in html:
            assert re.search(r"\b0 of \d+", _meter(html, "API requests this minute"))
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("UPDATE plans SET api_requests_per_minute = :m WHERE key = 'pro'"), {"m": was})


def test_a_plan_without_the_api_shows_no_api_meters(world, login):
    html = login(world.users["globex_owner"], "globex").get(url("globex", "/settings/plan")).get_data(as_text=True)
    if "Not in this plan" in html:  # Free has no API
        assert "API requests this minute" not in html and "API requests today" not in html

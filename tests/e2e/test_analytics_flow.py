"""Real Chromium on the analytics dashboard: an admin opens it, every chart
is drawn by the vendored plotly.js under the strict CSP (a
``securitypolicyviolation`` listener fails the test on any violation),
switches to 7 and then 30 days, turns on the comparison, opens a chart's
table and exports it as CSV. axe checks every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from app.analytics import services
from app.extensions import db
from tests.analytics.conftest import seal_everything, write_events
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.e2e

# Installed before any page script: collects every CSP violation the page sees.
LISTEN = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', function (e) {"
    "  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || ''));"
    "});"
)

# Charts with data in this test (the API slot and webhook deliveries stay empty).
DRAWN = [k for k in services.CHARTS if k not in ("api", "webhooks")]


def _history(world):
    now = datetime.now(UTC)
    users = [world.users[r] for r in ("owner", "admin", "manager", "member")]
    events = []
    for d in range(40):
        ts = now - timedelta(days=d, hours=1)
        for i, u in enumerate(users[: 1 + d % 4]):
            events.append((ts, ("project.created", "project.updated", "member.joined", "role.created")[i], u))
        if d % 3 == 0:
            events.append((ts, "auth.login_failed", None))
    write_events(db.engine, world.acme.id, events)
    seal_everything(db.engine)


def _all_drawn(page):
    for key in DRAWN:
        expect(page.locator(f"#chart-{key} .chart[data-drawn='done']")).to_have_count(1, timeout=20_000)
    expect(page.locator("#chart-api")).to_contain_text("No API request in this period.")
    expect(page.locator("#chart-webhooks")).to_contain_text("No webhook delivery in this period")


def _no_violations(page):
    assert page.evaluate("window.__csp") == []


def test_admin_reads_the_dashboard_compares_and_exports(page, live_server, world, shot, tmp_path):
    _history(world)
    page.add_init_script(LISTEN)
    sign_in(page, live_server, "admin@acme.test")
    page.get_by_role("link", name="Analytics").click()
    _all_drawn(page)
    # Plotly drew real SVG: the bars of the activity chart exist.
    assert page.locator("#chart-activity .chart svg .bars path").count() > 0
    _no_violations(page)
    shot(page, "dashboard-30-days")

    page.get_by_label("7 days").check()
    expect(page).to_have_url(live_server.org_url("acme", "/analytics/?range=7&from=&to="))
    expect(page.locator(".analytics-period")).to_contain_text("Last 7 days")
    _all_drawn(page)
    rows = page.locator("#chart-projects details table tbody tr")
    expect(rows).to_have_count(7)
    shot(page, "7-days")

    page.get_by_label("30 days").check()
    expect(page.locator(".analytics-period")).to_contain_text("Last 30 days")
    _all_drawn(page)
    page.get_by_label("Compare with the previous period").check()
    expect(page.locator(".analytics-period")).to_contain_text("compared with the 30 days before")
    _all_drawn(page)
    expect(page.locator("#chart-activity .delta")).to_be_visible()
    assert "compare=1" in page.url
    _no_violations(page)
    shot(page, "compare")

    card = page.locator("#chart-projects")
    card.get_by_text("View as table").click()
    table = card.locator("table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(30)
    shot(page, "view-as-table")

    with page.expect_download() as dl:
        card.get_by_role("button", name="Export Projects as CSV").click()
    path = tmp_path / "projects.csv"
    dl.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "Day,Created,Updated,Archived,Deleted" and len(lines) == 31
    _no_violations(page)

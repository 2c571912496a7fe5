"""The console's overview draws sign-ups and events per day from the
analytics rollups across organizations, with the shared chart component,
and shows the webhook failure rate."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app import audit
from app.extensions import db
from tests.analytics.conftest import seal_everything, write_events
from tests.conftest import url


def _table(html: str, key: str) -> dict[str, int]:
    card = html[html.index(f'id="chart-{key}"') :]
    card = card[: card.index("</section>")]
    return {
        d: int(n.replace(",", ""))
        for d, n in re.findall(r'<th scope="row">([\d-]+)</th><td class="text-right">([\d,]+)</td>', card)
    }


def test_overview_charts_sum_the_rollups_of_every_organization(world, console, owner_engine):
    """Events of acme and globex on two days add up per day; sign-ups come
    from the platform log; the platform log's own events are not counted as
    organization events. The figures are real figure JSON in the page."""
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    user = audit.Actor.of_user(world.users["owner"])
    write_events(
        db.engine, world.acme.id, [(now, "project.created", user)] * 3 + [(yesterday, "project.updated", user)]
    )
    write_events(db.engine, world.globex.id, [(now, "project.created", user)] * 2)
    with owner_engine.begin() as c:  # the platform organization row (the migration's; truncated by the tests)
        c.execute(
            text(
                "INSERT INTO organizations (id, slug, name, plan_key) VALUES (:id, 'platform', 'Tenantry platform',"
                " 'enterprise') ON CONFLICT DO NOTHING"
            ),
            {"id": audit.PLATFORM_ORG_ID},
        )
    write_events(db.engine, audit.PLATFORM_ORG_ID, [(now, "auth.signup", user), (yesterday, "auth.signup", user)])
    seal_everything(db.engine)

    html = console.get(url(None, "/platform/")).get_data(as_text=True)
    events = _table(html, "events")
    assert events[now.date().isoformat()] == 5 and events[yesterday.date().isoformat()] == 1
    assert sum(events.values()) == 6
    signups = _table(html, "signups")
    assert signups[now.date().isoformat()] == 1 and sum(signups.values()) == 2
    m = re.search(r'<script type="application/json" id="chart-events-data">(.*?)</script>', html, re.S)
    assert json.loads(m.group(1))["data"][0]["type"] == "bar"
    assert "components" not in html and "vendor/plotly.min.js" in html


def test_overview_shows_the_webhook_failure_rate(world, console, owner_engine):
    """One failed delivery of four finished ones in the last week: 25 %."""
    import uuid

    with owner_engine.begin() as c:
        ep = uuid.uuid4()
        c.execute(
            text(
                "INSERT INTO webhook_endpoints (organization_id, id, url, event_types, secret_encrypted)"
                " VALUES (:o, :id, 'https://example.test/hook', ARRAY['project.created'], 'x')"
            ),
            {"o": world.acme.id, "id": ep},
        )
        for status in ("succeeded", "succeeded", "succeeded", "failed", "pending"):
            c.execute(
                text(
                    "INSERT INTO webhook_deliveries (organization_id, id, endpoint_id, event_type, payload, status)"
                    " VALUES (:o, :id, :ep, 'project.created', '{}', :s)"
                ),
                {"o": world.acme.id, "id": uuid.uuid4(), "ep": ep, "s": status},
            )
    html = console.get(url(None, "/platform/")).get_data(as_text=True)
    rate = html[html.index('id="webhook-failure-rate"') :][:400]
    assert "25.0&nbsp;%" in rate and "1 failed of 4" in rate


def test_empty_platform_shows_friendly_empty_charts(world, console):
    html = console.get(url(None, "/platform/")).get_data(as_text=True)
    assert "No sign-up yet." in html and "No organization has recorded anything yet." in html

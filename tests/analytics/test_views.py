"""The analytics pages: who may see and export them, the partials, the
range in the URL, the table twin, exports, empty states."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.analytics import services
from app.extensions import db
from tests.analytics.conftest import seal_everything, write_events
from tests.conftest import csrf_token, url

HX = {"HX-Request": "true"}


@pytest.fixture
def history(world):
    """Ten days of events in acme: projects, joins, failed sign-ins."""
    now = datetime.now(UTC)
    owner, member = world.users["owner"], world.users["member"]
    events = []
    for d in range(10):
        ts = now - timedelta(days=d)
        events += [(ts, "project.created", owner), (ts, "project.updated", member), (ts, "auth.login_failed", None)]
    events.append((now - timedelta(days=2), "member.joined", member))
    write_events(db.engine, world.acme.id, events)
    seal_everything(db.engine)
    return events


def test_dashboard_has_a_lazy_slot_per_chart(world, login, history):
    """The page paints at once: one slot per chart, each fetching its own
    partial on load, with the range of the URL; a no-JS link in each."""
    client = login(world.users["admin"], "acme")
    r = client.get(url("acme", "/analytics/?range=90&compare=1"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for key in services.CHARTS:
        assert f'id="chart-{key}"' in html
        assert f"/analytics/charts/{key}?range=90&amp;compare=1" in html
    assert html.count('hx-trigger="load"') == len(services.CHARTS)
    assert "vendor/plotly.min.js" in html and "js/charts.js" in html
    assert "HX-Request" in r.headers.get("Vary", "")


@pytest.mark.parametrize("key", list(services.CHARTS))
def test_each_chart_partial_is_a_fragment_with_its_figure_and_table(world, login, history, key):
    """With HX-Request a chart answers its card alone: the figure as JSON in
    a non-executable script block (parseable), and the same numbers as a table."""
    client = login(world.users["admin"], "acme")
    r = client.get(url("acme", f"/analytics/charts/{key}?range=30"), headers=HX)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<html" not in html and f'id="chart-{key}"' in html
    if key == "api":
        assert "No API request in this period." in html
        return
    if key == "webhooks":
        assert "No webhook delivery in this period" in html
        return
    m = re.search(r'<script type="application/json" id="chart-' + key + r'-data">(.*?)</script>', html, re.S)
    assert m, html
    figure = json.loads(m.group(1))
    assert figure["data"], figure
    assert "View as table" in html and "<table" in html


def test_chart_numbers_are_the_events(world, login, history):
    """The projects chart's table holds one created and one updated project a
    day over the last ten days (the history), and the failed sign-ins chart ten."""
    client = login(world.users["owner"], "acme")
    r = client.get(url("acme", "/analytics/charts/projects?range=30"), headers=HX)
    html = r.get_data(as_text=True)
    rows = re.findall(r"<tr><th scope=\"row\">(\d{4}-\d\d-\d\d)</th>(.*?)</tr>", html)
    assert len(rows) == 30
    nonzero = [(d, re.findall(r'<td class="text-right">([\d,]+)</td>', cells)) for d, cells in rows]
    nonzero = [(d, c) for d, c in nonzero if c != ["0", "0", "0", "0"]]
    assert len(nonzero) == 10 and all(c == ["1", "1", "0", "0"] for _, c in nonzero)


def test_compare_shows_the_change_beside_the_title(world, login, history):
    """With compare on, each chart's title carries the change against the
    previous period of the same length: 7 failed sign-ins in the last 7 days
    against 3 in the 7 before (+133 %)."""
    client = login(world.users["owner"], "acme")
    html = client.get(url("acme", "/analytics/charts/failed_logins?range=7&compare=1"), headers=HX).get_data(
        as_text=True
    )
    assert 'class="delta delta--up"' in html and "+133\u00a0%" in html
    html = client.get(url("acme", "/analytics/charts/failed_logins?range=7"), headers=HX).get_data(as_text=True)
    assert "delta--" not in html


def test_a_new_organization_sees_friendly_empty_states(world, login):
    """No events at all: every chart answers 200 with its empty sentence, no figure."""
    client = login(world.users["globex_owner"], "globex")
    for key in services.CHARTS:
        r = client.get(url("globex", f"/analytics/charts/{key}?range=90"), headers=HX)
        assert r.status_code == 200, key
        html = r.get_data(as_text=True)
        if key != "members":  # the member count is drawn even when nobody joined
            assert 'type="application/json"' not in html, key
            assert "empty-state" in html, key


def test_bad_custom_range_is_422_with_the_message_beside_the_field(world, login):
    """A custom range with a malformed or reversed date: 422, the message
    beside the field, the default 30 days shown; nothing is a 500."""
    client = login(world.users["admin"], "acme")
    r = client.get(url("acme", "/analytics/?range=custom&from=2026-13-01&to=2026-01-01"))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'id="analytics-from-error"' in html and "YYYY-MM-DD" in html
    r = client.get(url("acme", "/analytics/?range=custom&from=2026-02-01&to=2026-01-01"))
    assert r.status_code == 422 and "must not be before the start" in r.get_data(as_text=True)
    for q in (
        "range=5",
        "range=custom&from=1000-01-01&to=2026-01-01",
        "range=custom&from=abc&to=x",
        "range=custom&to=2999-01-01&from=2026-01-01",
    ):
        assert client.get(url("acme", f"/analytics/?{q}")).status_code == 422, q
        assert client.get(url("acme", f"/analytics/charts/activity?{q}"), headers=HX).status_code == 422, q
    ok = client.get(url("acme", "/analytics/charts/activity?range=custom&from=2026-01-01&to=2026-01-31"), headers=HX)
    assert ok.status_code == 200


def test_unknown_chart_is_404(world, login):
    client = login(world.users["admin"], "acme")
    assert client.get(url("acme", "/analytics/charts/nope")).status_code == 404


def test_other_organizations_member_gets_404(world, login):
    """A globex member on acme's analytics: 404 (acme's existence is not told)."""
    client = login(world.users["globex_owner"], "acme")
    assert client.get(url("acme", "/analytics/")).status_code == 404
    assert client.get(url("acme", "/analytics/charts/activity"), headers=HX).status_code == 404


def test_anonymous_visitor_is_sent_to_log_in(world, client):
    r = client.get(url("acme", "/analytics/"))
    assert r.status_code in (302, 401)


def test_viewer_may_view_but_not_export(world, login, history):
    """Viewers see the charts (the brief's matrix: everyone views reports)
    but exporting needs analytics:export: 403, nothing recorded."""
    client = login(world.users["viewer"], "acme")
    html = client.get(url("acme", "/analytics/charts/projects?range=30"), headers=HX).get_data(as_text=True)
    assert "Export" not in html
    r = client.post(
        url("acme", "/analytics/export"),
        data={"csrf_token": csrf_token(client, "acme"), "chart": "projects", "format": "csv", "range": "30"},
    )
    assert r.status_code == 403
    assert _exports(world) == []


def _exports(world):
    from sqlalchemy import text

    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        rows = (
            db.session.execute(
                text("SELECT metadata FROM audit_events WHERE action = 'analytics.exported' ORDER BY id")
            )
            .scalars()
            .all()
        )
    db.session.rollback()
    return rows


def test_csv_export_is_the_table_and_is_audited(world, login, history):
    """CSV export of a chart: the table's rows, as an attachment, and an
    ``analytics.exported`` event naming chart, format and range."""
    client = login(world.users["manager"], "acme")
    r = client.post(
        url("acme", "/analytics/export"),
        data={"csrf_token": csrf_token(client, "acme"), "chart": "projects", "format": "csv", "range": "30"},
    )
    assert r.status_code == 200
    assert "attachment" in r.headers["Content-Disposition"] and ".csv" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["Day", "Created", "Updated", "Archived", "Deleted"]
    assert len(rows) == 31 and sum(int(x[1]) for x in rows[1:]) == 10
    (meta,) = _exports(world)
    assert meta["chart"] == "projects" and meta["format"] == "csv"


def test_json_export_carries_range_and_rows(world, login, history):
    client = login(world.users["admin"], "acme")
    r = client.post(
        url("acme", "/analytics/export"),
        data={"csrf_token": csrf_token(client, "acme"), "chart": "top_actors", "format": "json", "range": "7"},
    )
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = json.loads(r.get_data(as_text=True))
    assert body["chart"] == "top_actors" and body["columns"] == ["Member", "Actions"]
    assert {row[0] for row in body["rows"]} == {"Acme Owner", "Acme Member"}


def test_bad_export_request_is_422_and_records_nothing(world, login):
    client = login(world.users["admin"], "acme")
    token = csrf_token(client, "acme")
    for data in (
        {"chart": "nope", "format": "csv", "range": "30"},
        {"chart": "projects", "format": "xml", "range": "30"},
        {"chart": "projects", "format": "csv", "range": "custom", "from": "x"},
    ):
        r = client.post(url("acme", "/analytics/export"), data={"csrf_token": token, **data})
        assert r.status_code == 422, data
    assert _exports(world) == []


def test_export_without_csrf_token_is_refused(world, login):
    client = login(world.users["admin"], "acme")
    r = client.post(url("acme", "/analytics/export"), data={"chart": "projects", "format": "csv", "range": "30"})
    assert r.status_code in (400, 403)
    assert _exports(world) == []


def test_a_name_cannot_close_the_figure_script(world, login, owner_engine):
    """A member named ``</script><script>…`` is data inside the figure's JSON:
    escaped, so the page never holds a second script element."""
    from sqlalchemy import text

    with owner_engine.begin() as c:
        c.execute(
            text("UPDATE users SET name = '</script><script>alert(1)</script>' WHERE id = :u"),
            {"u": world.users["member"].id},
        )
    db.session.expire_all()
    from app.audit import Actor

    write_events(
        db.engine,
        world.acme.id,
        [(datetime.now(UTC), "project.updated", Actor("user", world.users["member"].id, "x"))],
    )
    seal_everything(db.engine)
    client = login(world.users["admin"], "acme")
    html = client.get(url("acme", "/analytics/charts/top_actors?range=7"), headers=HX).get_data(as_text=True)
    assert html.count("<script") == 1
    assert "\\u003c\\u002fscript\\u003e\\u003cscript\\u003ealert(1)" in html


def test_versioned_plotly_is_cached_for_a_year_and_the_page_asks_for_that_version(world, login, client):
    """The 4.8 MB bundle is fetched once per version: the page asks for it with
    ``?v=``, and such a request is cacheable for a year; the same file without
    a version is revalidated as every other static file."""
    html = login(world.users["admin"], "acme").get(url("acme", "/analytics/")).get_data(as_text=True)
    src = re.search(r'src="([^"]*vendor/plotly\.min\.js\?v=[^"]+)"', html).group(1)
    r = client.get(src)
    assert r.status_code == 200
    assert "max-age=31536000" in r.headers["Cache-Control"] and "immutable" in r.headers["Cache-Control"]
    r.close()
    plain = client.get("/static/vendor/plotly.min.js")
    assert "max-age=31536000" not in plain.headers.get("Cache-Control", "")
    plain.close()


def test_api_chart_stacks_requests_per_key_and_says_when_the_plan_has_no_api(world, login, owner_engine):
    """Two keys' daily usage: one series per key, the table's numbers are the
    counts; an organization whose plan lacks the ``api`` feature sees that
    the API is not enabled."""
    import uuid

    from sqlalchemy import text

    today = datetime.now(UTC).date()
    with owner_engine.begin() as c:
        for name, n in (("Reporting", 40), ("Sync", 7)):
            kid = uuid.uuid4()
            c.execute(
                text(
                    "INSERT INTO api_keys (organization_id, id, key_id, secret_hash, name, scopes)"
                    " VALUES (:o, :id, :k, 'x', :n, ARRAY['projects:view'])"
                ),
                {"o": world.acme.id, "id": kid, "k": uuid.uuid4().hex[:16], "n": name},
            )
            c.execute(
                text(
                    "INSERT INTO api_usage_daily (organization_id, api_key_id, day, requests) VALUES (:o, :k, :d, :n)"
                ),
                {"o": world.acme.id, "k": kid, "d": today, "n": n},
            )
    client = login(world.users["admin"], "acme")
    html = client.get(url("acme", "/analytics/charts/api?range=7"), headers=HX).get_data(as_text=True)
    figure = json.loads(re.search(r'id="chart-api-data">(.*?)</script>', html, re.S).group(1))
    assert [t["name"] for t in figure["data"]] == ["Reporting", "Sync"]
    assert (
        f'<th scope="row">{today.isoformat()}</th><td class="text-right">40</td><td class="text-right">7</td>' in html
    )

    # A plan without the API (a copy of free with api off), removed afterwards:
    # plans survive the tests' truncation.
    with owner_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO plans SELECT (jsonb_populate_record(NULL::plans, to_jsonb(p)"
                ' || \'{"key": "test-no-api", "name": "Test no API", "feature_api": false}\'::jsonb)).*'
                " FROM plans p WHERE key = 'free'"
            )
        )
        c.execute(text("UPDATE organizations SET plan_key = 'test-no-api' WHERE id = :o"), {"o": world.acme.id})
    try:
        html = client.get(url("acme", "/analytics/charts/api?range=7"), headers=HX).get_data(as_text=True)
        assert "Available once the API is enabled." in html
    finally:
        with owner_engine.begin() as c:
            c.execute(text("UPDATE organizations SET plan_key = 'pro' WHERE id = :o"), {"o": world.acme.id})
            c.execute(text("DELETE FROM plans WHERE key = 'test-no-api'"))

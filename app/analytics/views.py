"""Analytics: the organization's dashboard of charts, from the daily rollups.

* ``/analytics/`` (``analytics:view``): the range form (7 / 30 / 90 days or
  custom, "compare with the previous period"; all in the URL) and one slot
  per chart. Each slot loads its chart as its own HTMX partial
  (``hx-trigger="load"``), so the page paints at once and a slow chart
  never holds the others; without JavaScript each slot links to the chart's
  own page.
* ``/analytics/charts/<key>``: one chart (a page, or with ``HX-Request`` the
  card the slot swaps in): the figure, its "view as table" twin with the
  same numbers, the change against the previous period beside the title.
* ``POST /analytics/export`` (``analytics:export``): one chart's numbers as
  CSV or JSON; audited (``analytics.exported``) before the first byte.

Numbers: ``app.analytics.services`` over ``app.audit.rollups``.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, g, request
from flask_login import login_required

from app import audit
from app.analytics import services
from app.audit import rollups
from app.extensions import db
from app.rbac.decorators import require
from app.web import nav
from app.web.access import has
from app.web.downloads import csv_chunks, download
from app.web.htmx import render

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
nav.link(bp, "index", "Analytics", section="main", order=30)


def _range(args) -> services.Range:
    return services.Range.from_args(args, rollups.today_in(rollups.org_timezone(g.org)))


@bp.get("/")
@login_required
@require("analytics:view")
def index():
    """The dashboard: the range form and a lazily loaded slot per chart.

    Bad range input: 422, the message beside the field, the default 30 days
    shown. With ``HX-Request`` (the range form) only ``#analytics-charts``."""
    rng = _range(request.args)
    return render(
        "analytics/index.html",
        "analytics/_charts.html",
        status=422 if rng.errors else 200,
        rng=rng,
        charts=list(services.CHARTS.values()),
        can_export=has("analytics:export"),
        zone=rollups.org_timezone(g.org),
    )


@bp.get("/charts/<key>")
@login_required
@require("analytics:view")
def chart(key: str):
    """One chart over the range of the URL (404 for an unknown chart); with
    ``HX-Request`` the card alone (what a dashboard slot swaps in)."""
    if key not in services.CHARTS:
        abort(404)
    rng = _range(request.args)
    c = services.build(key, g.org, rng)
    return render(
        "analytics/chart.html",
        "analytics/_chart.html",
        status=422 if rng.errors else 200,
        chart=c,
        rng=rng,
        can_export=has("analytics:export"),
    )


@bp.post("/export")
@login_required
@require("analytics:export")
def export():
    """One chart's numbers (its table) as CSV or JSON, for the range posted.

    Audited (``analytics.exported``: chart, format, range) and committed
    before the first byte. An unknown chart or format, or a bad range: 422."""
    key = request.form.get("chart", "")
    fmt = request.form.get("format", "csv")
    rng = _range(request.form)
    if key not in services.CHARTS or fmt not in ("csv", "json") or rng.errors:
        return render(
            "analytics/index.html",
            "analytics/_charts.html",
            status=422,
            rng=rng,
            charts=list(services.CHARTS.values()),
            can_export=True,
            zone=rollups.org_timezone(g.org),
            export_error="Choose a chart, CSV or JSON, and a valid range.",
        )
    c = services.build(key, g.org, rng)
    audit.record(
        "analytics.exported",
        target=g.org,
        metadata={"chart": key, "format": fmt, "from": rng.start.isoformat(), "to": rng.end.isoformat()},
    )
    db.session.commit()
    name = f"{g.org.slug}-{key}-{rng.start.isoformat()}-{rng.end.isoformat()}"
    columns, rows = services.export_rows(c)
    if fmt == "csv":
        return download(csv_chunks(columns, [rows]), f"{name}.csv")
    body = json.dumps(
        {
            "chart": key,
            "title": c.title,
            "from": rng.start.isoformat(),
            "to": rng.end.isoformat(),
            "time_zone": rollups.org_timezone(g.org),
            "columns": columns,
            "rows": rows,
        },
        indent=1,
    )
    return download([body], f"{name}.json", "application/json")

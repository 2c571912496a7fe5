"""Compliance reports (``audit:export``): access, changes and security events.

* ``/reports/``: choose a period (the last 30 days by default) and a report;
* ``/reports/<kind>``: the report as a printable page (the print stylesheet
  drops the navigation, repeats table headers and breaks pages between rows);
* ``POST /reports/<kind>/export``: the same report as CSV, streamed;
  audited (``audit.report_exported``) and committed before the first byte.

A bad period (not a date, end before start, longer than
``services.MAX_DAYS`` days) answers 422 with the reason beside the field and
nothing exported.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, request
from flask_login import login_required

from app import audit
from app.extensions import db
from app.rbac.decorators import require
from app.reports import services
from app.web import nav
from app.web.downloads import download
from app.web.htmx import render

bp = Blueprint("reports", __name__, url_prefix="/reports")
nav.link(bp, "index", "Compliance reports", section="admin", order=32)


def _kind_or_404(kind: str) -> str:
    return kind if kind in services.KINDS else abort(404)


def _period(args):
    """``(period, errors)``: the period asked for, or ``None`` and the errors by field."""
    try:
        return services.Period.from_args(args), {}
    except services.PeriodError as e:
        return None, e.errors


def _chooser(errors: dict, status: int = 200):
    """The chooser page: the period's fields (with what was typed and the
    errors beside them) and a link, a print view and a CSV button per report."""
    default = services.Period.default()
    return render(
        "reports/index.html",
        kinds=services.KINDS,
        descriptions=services.DESCRIPTIONS,
        values={
            "from": request.values.get("from") or default.start.isoformat(),
            "to": request.values.get("to") or default.end.isoformat(),
        },
        errors=errors,
        max_days=services.MAX_DAYS,
        status=status,
    )


@bp.get("/")
@login_required
@require("audit:export")
def index():
    """The period chooser and the three reports; a bad period in the URL is a 422 beside its field."""
    _period_value, errors = _period(request.args)
    return _chooser(errors, 422 if errors else 200)


@bp.get("/<kind>")
@login_required
@require("audit:export")
def show(kind: str):
    """One report for the period as a printable page (at most
    ``services.PAGE_ROWS`` rows; the CSV has them all). A bad period: the
    chooser with the errors, 422."""
    _kind_or_404(kind)
    period, errors = _period(request.args)
    if errors:
        return _chooser(errors, 422)
    report = services.build(kind, period)
    return render("reports/show.html", report=report, columns=services.columns(kind), org=g.org)


@bp.post("/<kind>/export")
@login_required
@require("audit:export")
def export(kind: str):
    """The whole report as CSV, streamed with constant memory. Audited
    (``audit.report_exported``: which report, which period) and committed
    before the first byte leaves; a bad period is a 422 and nothing is recorded."""
    _kind_or_404(kind)
    period, errors = _period(request.form)
    if errors:
        return _chooser(errors, 422)
    audit.record(
        "audit.report_exported",
        target=g.org,
        metadata={"report": kind, "from": period.start.isoformat(), "to": period.end.isoformat(), "format": "csv"},
    )
    db.session.commit()
    stream = services.csv_stream(current_app._get_current_object(), g.org.id, kind, period)
    return download(stream, f"{g.org.slug}-{kind}-{period.start.isoformat()}-{period.end.isoformat()}.csv")

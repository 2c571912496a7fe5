"""Settings → Data export (``org:export``, Owner only by default): start an
export of every row of the organization, watch its progress (an HTMX-polled
bar), download the archive for 24 hours. Format: ``app.orgdata.archive``."""

from __future__ import annotations

from flask import Blueprint, abort, g, make_response, redirect, url_for
from flask_login import login_required

from app import concurrency
from app.errors import UserError
from app.extensions import db
from app.orgdata import services
from app.orgdata.forms import StartExportForm
from app.rbac.decorators import require
from app.util import utcnow
from app.web.forms import with_error
from app.web.htmx import is_htmx, render

bp = Blueprint("orgdata", __name__, url_prefix="/settings/export")


def _export_or_404(export_id: str):
    """This organization's export, or 404 (malformed, unknown and foreign ids alike)."""
    return services.find(export_id) or abort(404)


def _page(form=None, status: int = 200):
    return render(
        "orgdata/index.html",
        "orgdata/_exports.html",
        status=status,
        form=form or StartExportForm(),
        exports=services.recent(),
        now=utcnow(),
    )


@bp.get("/")
@login_required
@require("org:export")
def index():
    """The exports of the organization, newest first, and the button that starts one."""
    return _page()


@bp.post("/")
@login_required
@require("org:export")
def create():
    """Start an export (a job); the page then shows its progress bar. A
    second submit of the same form starts nothing new; one running already: 422."""
    form = StartExportForm()
    if not form.validate():
        return _page(form, 422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("orgdata.index"))
    try:
        export = services.start_export()
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return _page(form, e.status)
    concurrency.settle_submit_key(form.submit_key.data, url_for("orgdata.index"))
    db.session.commit()
    if is_htmx():
        return _page()
    return redirect(url_for("orgdata.show", export_id=export.id))


@bp.get("/<export_id>")
@login_required
@require("org:export")
def show(export_id: str):
    """One export: its progress (with ``HX-Request``, only the bar, which asks
    again every second until the archive is ready or the job failed)."""
    export = _export_or_404(export_id)
    return render("orgdata/show.html", "orgdata/_progress.html", export=export, now=utcnow())


@bp.get("/<export_id>/download")
@login_required
@require("org:export")
def download(export_id: str):
    """The archive, within its 24 hours (audited); afterwards 410 with a page saying so."""
    export = _export_or_404(export_id)
    try:
        data = services.download(export)
    except UserError as e:
        db.session.rollback()
        return render("orgdata/show.html", export=export, refusal=e.message, status=e.status, now=utcnow())
    db.session.commit()
    resp = make_response(data)
    resp.headers["Content-Type"] = "application/zip"
    resp.headers["Content-Disposition"] = f'attachment; filename="{services.filename(export, g.org.slug)}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp

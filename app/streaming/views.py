"""Audit streaming: streams (list, create, edit, enable/disable, delete, send
a test event) and each stream's status (events behind, last delivered, last error).

Thin views over ``app.streaming.services``. Every view needs ``audit:stream``
and the plan's ``audit_streaming`` feature (otherwise the 403 "not on your
plan" page). A stream id that is malformed or another organization's is a
404 either way.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import login_required

from app import concurrency
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac.decorators import require, requires_feature
from app.streaming import services
from app.streaming.forms import EditStreamForm, NewStreamForm
from app.streaming.models import KINDS
from app.tenancy.entitlements import entitled
from app.web import nav
from app.web.forms import with_error
from app.web.htmx import render

FEATURE = services.FEATURE

bp = Blueprint("streaming", __name__, url_prefix="/audit-streams")
nav.link(
    bp,
    "index",
    "Audit streaming",
    section="admin",
    order=31,
    when=lambda: g.get("org") is not None and entitled(g.org, FEATURE),
)
nav.entity_page(bp, "audit_stream", "show", lambda stream_id: {"stream_id": stream_id})


def _stream_or_404(stream_id: str):
    return services.find_stream(stream_id) or abort(404)


def _edit_form(stream, current: bool = False) -> EditStreamForm:
    return EditStreamForm(obj=stream, formdata=None) if current else EditStreamForm(obj=stream)


@bp.get("/")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def index():
    """The organization's streams with their state and lag."""
    streams = services.list_streams()
    return render("streaming/index.html", streams=streams, states={s.id: services.status(s) for s in streams})


@bp.get("/new")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def new():
    """The empty stream form."""
    return render("streaming/new.html", form=NewStreamForm(), kinds=KINDS)


@bp.post("/")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def create():
    """Create a stream; an HTTPS stream's signing secret is shown once. Bad
    input (URL, private address, missing token...): 422 beside the field,
    nothing saved. A second submit of the same form lands on the first's stream."""
    form = NewStreamForm()
    if not form.validate():
        return render("streaming/new.html", form=form, kinds=KINDS, status=422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("streaming.index"))
    try:
        stream, secret = services.create_stream(
            g.org, form.name.data, form.kind.data, form.url.data, form.token.data, form.start.data or "new"
        )
    except UserError as e:
        db.session.rollback()
        return render("streaming/new.html", form=with_error(form, e), kinds=KINDS, status=e.status)
    concurrency.settle_submit_key(form.submit_key.data, url_for("streaming.show", stream_id=stream.id))
    db.session.commit()
    if secret:
        return render("streaming/secret.html", stream=stream, secret=secret, status=201)
    flash("Stream created: events are sent as they are sealed.", "success")
    return redirect(url_for("streaming.show", stream_id=stream.id))


@bp.get("/<stream_id>")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def show(stream_id: str):
    """One stream: its settings and status (events behind, delivered, last
    success, last error, next attempt). With ``HX-Request``, the status panel only."""
    stream = _stream_or_404(stream_id)
    return render("streaming/show.html", "streaming/_status.html", stream=stream, state=services.status(stream))


@bp.get("/<stream_id>/edit")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def edit(stream_id: str):
    """The edit form (the kind is fixed; the token is never shown)."""
    stream = _stream_or_404(stream_id)
    return render("streaming/edit.html", form=_edit_form(stream), stream=stream)


@bp.post("/<stream_id>")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def update(stream_id: str):
    """Save an edit: 422 with the errors beside the fields, 409 when someone saved in between."""
    stream = _stream_or_404(stream_id)
    form = _edit_form(stream)
    if not form.validate():
        return render("streaming/edit.html", form=form, stream=stream, status=422)
    try:
        services.update_stream(stream, form.name.data, form.url.data, form.token.data, version=form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        stream = _stream_or_404(stream_id)
        return render(
            "streaming/edit.html", form=with_error(_edit_form(stream, current=True), e), stream=stream, status=e.status
        )
    except UserError as e:
        db.session.rollback()
        return render("streaming/edit.html", form=with_error(form, e), stream=stream, status=e.status)
    db.session.commit()
    flash("Stream saved.", "success")
    return redirect(url_for("streaming.show", stream_id=stream.id))


@bp.route("/<stream_id>/delete", methods=["GET", "POST"])
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def delete(stream_id: str):
    """GET asks for confirmation; POST deletes the stream (the audit log itself stays)."""
    stream = _stream_or_404(stream_id)
    if request.method == "GET":
        return render("streaming/delete.html", stream=stream)
    services.delete_stream(stream)
    db.session.commit()
    flash("Stream deleted.", "success")
    return redirect(url_for("streaming.index"))


@bp.post("/<stream_id>/disable")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def disable(stream_id: str):
    """Stop sending; the cursor stays where it is."""
    stream = _stream_or_404(stream_id)
    if services.disable_stream(stream):
        db.session.commit()
        flash(
            "Stream disabled: nothing is sent until it is enabled again; it then goes on from where it stopped.",
            "success",
        )
    return redirect(url_for("streaming.show", stream_id=stream.id))


@bp.post("/<stream_id>/enable")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def enable(stream_id: str):
    """Send again, from the cursor."""
    stream = _stream_or_404(stream_id)
    if services.enable_stream(stream):
        db.session.commit()
        flash("Stream enabled.", "success")
    return redirect(url_for("streaming.show", stream_id=stream.id))


@bp.post("/<stream_id>/test")
@login_required
@require("audit:stream")
@requires_feature(FEATURE)
def send_test(stream_id: str):
    """Send one test event now, in the stream's format, and say what the destination answered."""
    stream = _stream_or_404(stream_id)
    outcome = services.send_test(stream)
    db.session.commit()
    if outcome.success:
        flash(f"Test event delivered: the destination answered HTTP {outcome.status_code}.", "success")
    else:
        flash(f"The test event was not delivered: {outcome.error}", "error")
    return redirect(url_for("streaming.show", stream_id=stream.id))

"""Webhooks: endpoints (list, create, edit, delete, rotate, disable/enable,
send a test event) and each endpoint's delivery log (filter, inspect,
resend one, replay the failed ones since a time).

Thin views over ``app.webhooks.services``: ``webhooks:view`` to see,
``webhooks:manage`` to change. An endpoint or delivery id that is malformed
or another organization's is a 404 either way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import login_required

from app import concurrency
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac.decorators import require
from app.tenancy.entitlements import limit
from app.util import utcnow
from app.web import nav
from app.web.forms import with_error
from app.web.htmx import render
from app.web.templating import page_zone
from app.webhooks import services
from app.webhooks.delivery import TEST_EVENT
from app.webhooks.forms import EditEndpointForm, EndpointForm, NewEndpointForm, ReplayForm
from app.webhooks.services import DeliveryQuery

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
nav.link(bp, "index", "Webhooks", section="admin", order=40)
nav.entity_page(bp, "webhook", "show", lambda endpoint_id: {"endpoint_id": endpoint_id})


def _endpoint_or_404(endpoint_id: str):
    return services.find_endpoint(endpoint_id) or abort(404)


def _form(endpoint=None, current: bool = False) -> EndpointForm:
    cls = NewEndpointForm if endpoint is None else EditEndpointForm
    form = cls(obj=endpoint, formdata=None) if current else cls(obj=endpoint)
    if endpoint is not None and (request.method == "GET" or current):
        form.event_types.data = list(endpoint.event_types)
    return form


def _page(template: str, form, status: int = 200, **context):
    return render(template, form=form, groups=services.event_groups(), status=status, **context)


def _submit(form: EndpointForm, action):
    """Validate ``form`` and call ``action(url, description, event_types)``; a
    ``UserError`` is rolled back and shown beside its field (422)."""
    if not form.validate():
        return False, None
    try:
        return True, action(form.url.data, form.description.data, request.form.getlist("event_types"))
    except StaleEdit:
        raise
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return False, None


@bp.get("/")
@login_required
@require("webhooks:view")
def index():
    """The organization's endpoints, with the plan's limit."""
    endpoints = services.list_endpoints()
    return render("webhooks/index.html", endpoints=endpoints, most=limit(g.org, "max_webhooks"))


@bp.get("/new")
@login_required
@require("webhooks:manage")
def new():
    """The empty endpoint form."""
    return _page("webhooks/new.html", _form())


@bp.post("/")
@login_required
@require("webhooks:manage")
def create():
    """Create an endpoint and show its signing secret, once. Bad input: 422
    beside the field, nothing saved. A second submit of the same form lands
    on the endpoint the first created (its secret is not shown again)."""
    form = _form()

    def create_once(*fields):
        first = concurrency.claim_submit_key(form.submit_key.data)
        return first if first is not None else services.create_endpoint(g.org, *fields)

    ok, result = _submit(form, create_once)
    if not ok:
        return _page("webhooks/new.html", form, status=422)
    if isinstance(result, str):
        db.session.commit()
        return redirect(result or url_for("webhooks.index"))
    endpoint, secret = result
    concurrency.settle_submit_key(form.submit_key.data, url_for("webhooks.show", endpoint_id=endpoint.id))
    db.session.commit()
    return render("webhooks/secret.html", endpoint=endpoint, secret=secret, created=True, status=201)


@bp.get("/<endpoint_id>")
@login_required
@require("webhooks:view")
def show(endpoint_id: str):
    """One endpoint: its settings and its delivery log (filter by status and
    event). With ``HX-Request``, the log's table only."""
    endpoint = _endpoint_or_404(endpoint_id)
    query = DeliveryQuery.from_args(request.args)
    deliveries, has_next = services.list_deliveries(endpoint, query)
    return render(
        "webhooks/show.html",
        "webhooks/_deliveries.html",
        endpoint=endpoint,
        query=query,
        deliveries=deliveries,
        has_next=has_next,
        groups=services.event_groups(),
        test_event=TEST_EVENT,
        replay=ReplayForm(formdata=None),
        now=utcnow(),
    )


@bp.get("/<endpoint_id>/edit")
@login_required
@require("webhooks:manage")
def edit(endpoint_id: str):
    """The edit form."""
    endpoint = _endpoint_or_404(endpoint_id)
    return _page("webhooks/edit.html", _form(endpoint), endpoint=endpoint)


@bp.post("/<endpoint_id>")
@login_required
@require("webhooks:manage")
def update(endpoint_id: str):
    """Save an edit: 422 with the errors beside the fields, 409 when someone saved in between."""
    endpoint = _endpoint_or_404(endpoint_id)
    form = _form(endpoint)
    try:
        ok, _ = _submit(form, lambda *f: services.update_endpoint(endpoint, *f, version=form.version.data))
    except StaleEdit as e:
        db.session.rollback()
        endpoint = _endpoint_or_404(endpoint_id)
        return _page(
            "webhooks/edit.html", with_error(_form(endpoint, current=True), e), status=e.status, endpoint=endpoint
        )
    if not ok:
        return _page("webhooks/edit.html", form, status=422, endpoint=endpoint)
    db.session.commit()
    flash("Endpoint saved.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/delete", methods=["GET", "POST"])
@login_required
@require("webhooks:manage")
def delete(endpoint_id: str):
    """GET asks for confirmation; POST deletes the endpoint and its delivery log."""
    endpoint = _endpoint_or_404(endpoint_id)
    if request.method == "GET":
        return render("webhooks/delete.html", endpoint=endpoint)
    services.delete_endpoint(endpoint)
    db.session.commit()
    flash("Endpoint deleted.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/<endpoint_id>/rotate")
@login_required
@require("webhooks:manage")
def rotate(endpoint_id: str):
    """A new signing secret, shown once; the old one stays valid for 24 hours."""
    endpoint = _endpoint_or_404(endpoint_id)
    secret = services.rotate_secret(endpoint)
    db.session.commit()
    return render("webhooks/secret.html", endpoint=endpoint, secret=secret, created=False)


@bp.post("/<endpoint_id>/disable")
@login_required
@require("webhooks:manage")
def disable(endpoint_id: str):
    """Stop sending to the endpoint."""
    endpoint = _endpoint_or_404(endpoint_id)
    if services.disable_endpoint(endpoint):
        db.session.commit()
        flash("Endpoint disabled: no event is sent to it until it is enabled again.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.post("/<endpoint_id>/enable")
@login_required
@require("webhooks:manage")
def enable(endpoint_id: str):
    """Send to the endpoint again."""
    endpoint = _endpoint_or_404(endpoint_id)
    if services.enable_endpoint(endpoint):
        db.session.commit()
        flash("Endpoint enabled.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.post("/<endpoint_id>/test")
@login_required
@require("webhooks:manage")
def send_test(endpoint_id: str):
    """Queue a ``webhook.test`` delivery; it appears in the log at once."""
    endpoint = _endpoint_or_404(endpoint_id)
    try:
        services.send_test_event(endpoint)
    except UserError as e:
        db.session.rollback()
        flash(e.message, "error")
        return redirect(url_for("webhooks.show", endpoint_id=endpoint.id)), e.status
    db.session.commit()
    flash("Test event queued: it appears in the delivery log below.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.get("/<endpoint_id>/deliveries/<delivery_id>")
@login_required
@require("webhooks:view")
def delivery(endpoint_id: str, delivery_id: str):
    """One delivery: its payload and every attempt's request and response."""
    endpoint = _endpoint_or_404(endpoint_id)
    found = services.find_delivery(endpoint, delivery_id) or abort(404)
    return render("webhooks/delivery.html", endpoint=endpoint, delivery=found, attempts=services.attempts_of(found))


@bp.post("/<endpoint_id>/deliveries/<delivery_id>/resend")
@login_required
@require("webhooks:manage")
def resend(endpoint_id: str, delivery_id: str):
    """Send one delivery again now, with the same ``webhook-id``."""
    endpoint = _endpoint_or_404(endpoint_id)
    found = services.find_delivery(endpoint, delivery_id) or abort(404)
    try:
        services.resend(endpoint, found)
    except UserError as e:
        db.session.rollback()
        flash(e.message, "error")
        return redirect(url_for("webhooks.delivery", endpoint_id=endpoint.id, delivery_id=found.id))
    db.session.commit()
    flash("Delivery queued again.", "success")
    return redirect(url_for("webhooks.delivery", endpoint_id=endpoint.id, delivery_id=found.id))


def parse_since(value: str | None) -> datetime:
    """A ``datetime-local`` value (``2026-11-29T14:00``) in the organization's
    time zone, as an aware datetime; ``UserError`` on the ``since`` field."""
    try:
        naive = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise UserError("Enter a date and time, like 2026-11-29 14:00.", "since") from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=page_zone()).astimezone(UTC)


@bp.post("/<endpoint_id>/replay")
@login_required
@require("webhooks:manage")
def replay(endpoint_id: str):
    """Send again every failed delivery since a time (recovery after the receiver's outage)."""
    endpoint = _endpoint_or_404(endpoint_id)
    form = ReplayForm()
    try:
        if not form.validate():
            raise UserError("This form expired. Reload the page and try again.")
        count = services.replay_failed(endpoint, parse_since(form.since.data))
    except UserError as e:
        db.session.rollback()
        query = DeliveryQuery()
        deliveries, has_next = services.list_deliveries(endpoint, query)
        return render(
            "webhooks/show.html",
            endpoint=endpoint,
            query=query,
            deliveries=deliveries,
            has_next=has_next,
            groups=services.event_groups(),
            test_event=TEST_EVENT,
            replay=with_error(form, e),
            now=utcnow(),
            status=e.status,
        )
    db.session.commit()
    flash(f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))

"""The audit log viewer, its exports, and the platform log for super-admins.

* ``/audit/`` (``audit:view``): newest first, filters in the URL, keyset
  pages; with ``HX-Request`` only the results fragment.
* ``/audit/<id>``: one event: the diff field by field, request context,
  links to the actor and target, its place in the chain.
* ``POST /audit/export`` (``audit:export``): the current filter as CSV or
  JSON Lines, streamed; audited (``audit.exported``) before the first byte.
* The platform log (``app.audit.PLATFORM_ORG_ID``: account events and
  every super-admin action) is shown in the platform console, at
  ``/platform/audit``: ``platform_log`` and ``platform_event`` below are
  mounted there by the app wiring (``app.blueprints``), behind the console's
  gate. The old ``/audit/platform`` URLs redirect there (super-admins on
  the apex only; everyone else 404, as before).

The CLI (``flask --app wsgi audit seal|verify|purge|actions``) is in
``app.auditlog.cli``.
"""

from __future__ import annotations

import functools
import json

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from app import audit
from app.audit import catalogue
from app.auditlog import services
from app.extensions import db
from app.rbac import services as rbac
from app.rbac.decorators import require
from app.scoping import tenant_context
from app.web import nav, templating
from app.web.access import has, login_only
from app.web.downloads import download
from app.web.fragments import FragmentCache
from app.web.htmx import render

bp = Blueprint("auditlog", __name__, url_prefix="/audit")
# Where the app wiring mounts the platform log (in the console).
PLATFORM_LIST = "platform.audit"
PLATFORM_SHOW = "platform.audit_event"
nav.link(bp, "index", "Audit log", section="admin", order=30)


def recent_activity(org) -> dict:
    """The dashboard's "recent activity": the organization's last events,
    newest first (the viewer's own query, ``services.page``: one statement)."""
    return {
        "events": services.page(org.id, services.Filters(), size=RECENT_EVENTS).events,
        "describe": catalogue.describe,
    }


RECENT_EVENTS = 10
nav.dashboard_panel(bp, "activity", "auditlog/_recent.html", recent_activity, view="index", order=10)


# ----------------------------------------------------------------------------- helpers
def entity_links(kind: str, entity_id, on_org_host: bool) -> dict:
    """Where an actor or a target can be looked at: the page its area declared
    for its kind (``app.web.nav.entity_page``), on the organization's host."""
    if entity_id is None:
        return {}
    return {"page": nav.entity_url(kind, entity_id) if on_org_host else None}


def display_value(value) -> str:
    """A before/after value as text (JSON for structures)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@bp.app_template_filter("audit_value")
def _audit_value_filter(value):
    return display_value(value)


@functools.cache
def _action_option_parts() -> tuple[tuple[str | None, str, str], ...]:
    """The action filter's ``<optgroup>``s and ``<option>``s, escaped once per
    process (the catalogue is fixed at import): (action or None, markup,
    markup when selected)."""
    parts: list[tuple[str | None, str, str]] = []
    for group, actions in catalogue.groups():
        parts.append((None, f'<optgroup label="{escape(group)}">', ""))
        for a in actions:
            value, text = escape(a.name), f"{escape(a.description)} ({escape(a.name)})"
            parts.append(
                (
                    a.name,
                    f'<option value="{value}">{text}</option>',
                    f'<option value="{value}" selected>{text}</option>',
                )
            )
        parts.append((None, "</optgroup>", ""))
    return tuple(parts)


def action_options(selected: str | None) -> Markup:
    """The action filter's options with ``selected`` selected: every page of
    the viewer shows the whole catalogue (a hundred options and more), which
    rendered option by option cost a fifth of the page."""
    return Markup(
        "".join(on if name is not None and name == selected else off for name, off, on in _action_option_parts())
    )


_ROWS = FragmentCache("auditlog/_row.html")


def rows_html(events, row_hrefs: dict, show_endpoint: str) -> Markup:
    """The table's rows, each rendered once per process and kept (an event
    never changes; an erased one has new labels, so a new key). The key is
    every input of ``auditlog/_row.html``: the row's values, the page's time
    zone (``time_tag``), its three link patterns and the details endpoint."""
    zone = templating.page_zone()
    links = (row_hrefs["actor"], row_hrefs["target"], row_hrefs["show"], show_endpoint)
    return Markup("").join(
        _ROWS.render(
            (tuple(ev), zone, links),
            ev=ev,
            row_hrefs=row_hrefs,
            show_endpoint=show_endpoint,
            describe=catalogue.describe,
        )
        for ev in events
    )


def _context(org_id, f: services.Filters, page, *, platform: bool, people=None) -> dict:
    labels = {}
    for uid in (f.actor, f.person):
        if uid and str(uid) not in labels:
            labels[str(uid)] = services.label_for(org_id, uid) or str(uid)
    list_endpoint = PLATFORM_LIST if platform else "auditlog.index"
    show_endpoint = PLATFORM_SHOW if platform else "auditlog.show"
    show_href = url_for(show_endpoint, event_id=0)
    # Each row's three links, built once a page (``__…__`` replaced per
    # row), not 150 url_for calls: a sixth of the page's time.
    row_hrefs = {
        "actor": url_for(list_endpoint, **f.params(actor="__actor__")),
        "target": url_for(list_endpoint, **f.params(target_type="__type__", target="__target__")),
        "show": show_href[: -len("0")] if show_href.endswith("/0") else None,
    }
    return {
        "f": f,
        "page": page,
        "rows_html": rows_html(page.events, row_hrefs, show_endpoint),
        "action_groups": catalogue.groups(),
        "action_options": action_options(f.action),
        "list_url": url_for(list_endpoint),
        "describe": catalogue.describe,
        "actor_labels": labels,
        "person_label": labels.get(str(f.person), "") if f.person else "",
        "person_q": request.args.get("person_q", "")[:100] if not f.person else "",
        "people": people,
        "target_types": services.TARGET_TYPES,
        "platform": platform,
        "list_endpoint": list_endpoint,
        "show_endpoint": show_endpoint,
        "can_export": (not platform) and has("audit:export"),
    }


def _person_from_text(f: services.Filters):
    """Without JavaScript the member picker sends only its text (``person_q``):
    one matching member becomes the filter; several are offered as links;
    none is a 422 beside the field. With JavaScript a pick sends ``person``."""
    text = " ".join((request.args.get("person_q") or "").split())[:100]
    if f.person or not text or f.errors.get("person"):
        return None
    matches = rbac.search_members(text, limit=rbac.PICK_LIMIT + 1, any_status=True)
    if len(matches) == 1:
        f.person = matches[0].user_id
        return None
    if not matches:
        f.errors["person"] = f"No member matches “{text}”."
        return None
    return {"matches": matches[: rbac.PICK_LIMIT], "more": len(matches) > rbac.PICK_LIMIT, "q": text}


def _list(org_id, platform: bool):
    f = services.Filters.from_args(request.args)
    people = None if platform else _person_from_text(f)
    status = 422 if f.errors else 200
    page = services.page(org_id, f) if not f.errors else services.Page([], None, None)
    ctx = _context(org_id, f, page, platform=platform, people=people)
    ctx["state"] = services.log_state(org_id)
    return render("auditlog/index.html", "auditlog/_results.html", status=status, **ctx)


def _show(org_id, event_id: int, platform: bool):
    ev = services.get_event(org_id, event_id) or abort(404)
    on_org = not platform
    return render_template(
        "auditlog/show.html",
        ev=ev,
        describe=catalogue.describe,
        integrity=services.event_integrity(org_id, ev),
        state=services.log_state(org_id),
        actor_links=entity_links("user", ev.actor_id, on_org) if ev.actor_type in ("user", "support") else {},
        target_links=entity_links(ev.target_type or "", ev.target_id, on_org),
        list_endpoint=PLATFORM_LIST if platform else "auditlog.index",
        platform=platform,
    )


def _platform_or_404():
    if g.get("host_kind") != "apex" or not getattr(current_user, "is_superadmin", False):
        abort(404)


# ----------------------------------------------------------------------------- organization log
@bp.get("/people")
@login_required
@require("audit:view")
def people():
    """The member filter's options as you type (an HTMX fragment of
    ``<li role="option">``): members of any status whose name or e-mail
    contains ``q``, at most ``PICK_LIMIT``. Replaces a select of every member
    (5,000 options for a large organization, on every page view)."""
    q = (request.args.get("person_q") or "")[:100]
    matches = rbac.search_members(q, limit=rbac.PICK_LIMIT + 1, any_status=True)
    return render(
        "auditlog/_people_options.html",
        matches=matches[: rbac.PICK_LIMIT],
        more=len(matches) > rbac.PICK_LIMIT,
        q=q,
    )


@bp.get("/")
@login_required
@require("audit:view")
def index():
    """The organization's audit log: filters (actor/person, action, target,
    dates, text) in the URL, keyset pages ("Newer"/"Older", never OFFSET),
    the log's verification state and retention. HTMX gets the results only.
    A bad filter value answers 422 with the reason beside the control."""
    return _list(g.org.id, platform=False)


@bp.get("/<int:event_id>")
@login_required
@require("audit:view")
def show(event_id: int):
    """One event of this organization (another organization's id is a 404)."""
    return _show(g.org.id, event_id, platform=False)


@bp.post("/export")
@login_required
@require("audit:export")
def export():
    """Every event matching the current filters as CSV or JSON Lines, streamed
    with constant memory. The export is itself audited, and committed before
    the first byte leaves."""
    f = services.Filters.from_args(request.form)
    fmt = request.form.get("format", "csv")
    if fmt not in ("csv", "jsonl"):
        f.errors["format"] = "Choose CSV or JSON Lines."
    if f.errors:
        ctx = _context(g.org.id, f, services.Page([], None, None), platform=False)
        ctx["state"] = services.log_state(g.org.id)
        return render("auditlog/index.html", "auditlog/_results.html", status=422, **ctx)
    audit.record("audit.exported", target=g.org, metadata={"format": fmt, "filters": f.params()})
    db.session.commit()
    stream = services.export_stream(current_app._get_current_object(), g.org.id, f, fmt)
    if fmt == "csv":
        return download(stream, f"{g.org.slug}-audit.csv")
    return download(stream, f"{g.org.slug}-audit.jsonl", "application/x-ndjson")


# ----------------------------------------------------------------------------- platform log (console)
def platform_log():
    """The platform log: account events (log-ins, failed log-ins, password
    changes) and every super-admin action, with the organization log's
    filters and pages. Mounted in the console (``/platform/audit``), whose
    gate has already answered 404 to anyone but a super-admin on the apex."""
    with tenant_context(audit.PLATFORM_ORG_ID):
        return _list(audit.PLATFORM_ORG_ID, platform=True)


def platform_event(event_id: int):
    """One platform-log event (mounted at ``/platform/audit/<id>``)."""
    with tenant_context(audit.PLATFORM_ORG_ID):
        return _show(audit.PLATFORM_ORG_ID, event_id, platform=True)


@bp.get("/platform")
@login_required
@login_only
def platform():
    """The old address of the platform log: a super-admin on the apex is sent
    to the console's (filters kept); everyone else 404, as before."""
    _platform_or_404()
    return redirect(url_for(PLATFORM_LIST, **request.args.to_dict(flat=False)), 301)


@bp.get("/platform/<int:event_id>")
@login_required
@login_only
def platform_show(event_id: int):
    """The old address of one platform-log event: redirected like the list."""
    _platform_or_404()
    return redirect(url_for(PLATFORM_SHOW, event_id=event_id), 301)

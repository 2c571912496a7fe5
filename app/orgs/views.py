"""The apex (landing, your organizations, create) and an organization's dashboard."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from app.auth.views import go_to
from app.domains import services as domain_services
from app.errors import UserError
from app.extensions import db
from app.orgs import services
from app.orgs.forms import OrganizationForm
from app.rbac.decorators import require
from app.tenancy.entitlements import limit
from app.tenancy.services import create_organization, my_memberships
from app.web import hosts, nav
from app.web.access import login_only, may_open, public
from app.web.forms import with_error
from app.web.htmx import render

bp = Blueprint("orgs", __name__)
nav.link(bp, "dashboard", "Dashboard", section="main", order=10)


@bp.get("/")
@public
def home():
    """Apex: the landing page, or the signed-in user's organizations.

    Straight to the organization when there is one (or the last used one);
    on an organization host, the dashboard.
    """
    if g.get("org") is not None:
        # The first page in the side navigation the member may open (a custom
        # role may lack the dashboard, e.g. an "Auditor"); none: the picker.
        return redirect(nav.landing_url() or hosts.apex_url("/?pick=1"))
    if not current_user.is_authenticated:
        return render_template("orgs/landing.html")
    memberships = my_memberships(current_user.id)
    if request.args.get("pick") is None:
        if len(memberships) == 1:
            return go_to(hosts.org_url(memberships[0].org, "/"))
        last = next((m for m in memberships if m.organization_id == current_user.last_org_id), None)
        if last is not None:
            return go_to(hosts.org_url(last.org, "/"))
    return render_template(
        "orgs/picker.html", memberships=memberships, suggestion=domain_services.suggestion_for(current_user)
    )


@bp.route("/organizations/new", methods=["GET", "POST"])
@login_required
@login_only
def new():
    """Create an organization (any verified user, on the apex); the creator becomes Owner."""
    if g.get("host_kind") != "apex":
        return redirect(hosts.apex_url(url_for("orgs.new")))
    form = OrganizationForm()
    if request.method == "GET":
        return render_template("orgs/new.html", form=form)
    if not form.validate():
        return render_template("orgs/new.html", form=form), 422
    if not current_user.is_verified:
        form.name.errors.append("Verify your e-mail address before creating an organization.")
        return render_template("orgs/new.html", form=form), 422
    try:
        org = create_organization(form.name.data, form.slug.data, current_user)
    except UserError as e:
        db.session.rollback()
        return render_template("orgs/new.html", form=with_error(form, e)), e.status
    db.session.commit()
    return go_to(hosts.org_url(org, "/"))


@bp.get("/dashboard")
@login_required
@require("org:view")
def dashboard():
    """The organization's home: each area's figure (``app.web.nav.dashboard_figure``)
    and the plan at a glance; the getting-started checklist (each step ticked
    from real data, shown to those who may act on it, until someone who may
    change the settings hides it or every step is done); each area's panel
    the member may see (recent activity for readers of the audit log).

    Statements are pinned (``tests/web/test_page_statements.py``): the
    figures and the checklist are one statement whatever their number,
    recent activity two."""
    figures, steps = nav.dashboard(g.org, with_checklist=not services.getting_started_hidden(g.org))
    if steps and all(done for _step, done, _url in steps):
        steps = []  # all done: nothing left to suggest
    panels = [Markup(render_template(p.template, **ctx)) for p, ctx in nav.dashboard_panels(g.org)]
    return render_template(
        "orgs/dashboard.html",
        figures=figures,
        api_rate=limit(g.org, "api_requests_per_minute"),
        steps=steps,
        panels=panels,
    )


@bp.post("/dashboard/getting-started/hide")
@login_required
@require("org:update")
def dismiss_getting_started():
    """Hide the getting-started checklist for everyone in the organization (audited)."""
    if services.hide_getting_started(g.org):
        db.session.commit()
        flash("The getting-started list is hidden.", "success")
    return redirect(url_for("orgs.dashboard"))


@bp.get("/switcher")
@login_required
@login_only(suspended_ok=True)
def switcher():
    """The org switcher's list (an HTMX fragment; a full page without HTMX).

    Each entry goes through the apex hand-off and lands on the same section
    (``section``: the first path segment of the page it was opened from).
    """
    section = request.args.get("section", "/")
    if not section.startswith("/") or section.startswith("//") or len(section) > 64:
        section = "/"
    memberships = my_memberships(current_user.id)
    for m in memberships:
        m.landing = section if _may_open(section, m) else "/"
    return render("orgs/switcher.html", "orgs/_switcher_list.html", memberships=memberships)


def _may_open(path: str, membership) -> bool:
    """True when ``path`` exists and ``membership``'s role may open it (so a
    switch lands on the same section only where that works).

    A custom role of another organization is invisible from this one (RLS),
    so its holder lands on that organization's root instead.
    """
    from flask import current_app
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect

    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method="GET")
    except RequestRedirect as r:  # /projects -> /projects/
        try:
            endpoint, _ = adapter.match(r.new_url.split("localhost", 1)[1], method="GET")
        except (HTTPException, RequestRedirect):
            return False
    except HTTPException:
        return False
    return may_open(current_app.view_functions[endpoint], membership.permissions)

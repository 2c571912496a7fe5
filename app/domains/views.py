"""Settings → Domains: add a domain, verify it by DNS, serve a custom host on
it, and choose what it does for people with an address at it.

Thin views over ``app.domains.services``; every view needs
``settings:domain`` and the plan's ``custom_domains`` feature (a plan
without it gets a 403 page saying so, and nothing to act on). A domain id
that is malformed or another organization's is a 404 either way.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user, login_required

from app import concurrency
from app.domains import services
from app.domains.forms import AddDomainForm, CustomHostForm, DomainSettingsForm, RemoveForm, VerifyForm
from app.domains.models import RECORD_LABEL
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac.decorators import require, requires_feature
from app.web import nav
from app.web.access import login_only
from app.web.forms import with_error
from app.web.htmx import render

FEATURE = services.FEATURE

bp = Blueprint("domains", __name__, url_prefix="/settings/domains")
# On the apex: a signed-in person asks the organization at their domain to let them in.
join_bp = Blueprint("domain_join", __name__, url_prefix="/join")
nav.entity_page(bp, "domain", "show", lambda domain_id: {"domain_id": domain_id})


def _unavailable() -> str:
    """The refusal on a plan without custom domains, in the settings layout."""
    return render_template("settings/unavailable.html", title="Domains", feature=FEATURE)


def _domain_or_404(domain_id: str):
    return services.find_domain(domain_id) or abort(404)


def _index(form=None, status: int = 200):
    domains = services.list_domains()
    return render(
        "domains/index.html",
        settings_current="domains.index",
        domains=domains,
        form=form or AddDomainForm(formdata=None),
        host_domain=services.host_domain(g.org, domains),
        status=status,
    )


def _show(domain, status: int = 200, verify=None, settings=None, host=None):
    if settings is None:
        settings = DomainSettingsForm(formdata=None, obj=domain)
    if host is None:
        under = services.host_domain(g.org, [domain])
        host = CustomHostForm(formdata=None, host=g.org.custom_domain if under else "", version=g.org.version)
    host.host.render_kw = {**(host.host.render_kw or {}), "placeholder": f"portal.{domain.name}"}
    return render(
        "domains/show.html",
        settings_current="domains.index",
        domain=domain,
        verify=verify or VerifyForm(formdata=None),
        settings=settings,
        host=host,
        remove=RemoveForm(formdata=None),
        serving=services.host_domain(g.org, [domain]) is not None,
        record_label=RECORD_LABEL,
        labels=services.AUTO_JOIN_LABELS,
        status=status,
    )


@bp.get("/")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def index():
    """The organization's domains with their state, and the form to add one."""
    return _index()


@bp.post("/")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def create():
    """Add a domain (pending) and show the TXT record to publish. Bad input
    (invalid, free-mail, already here, verified by another organization):
    422 beside the field, nothing saved. A second submit lands on the first's domain."""
    form = AddDomainForm()
    if not form.validate():
        return _index(form, 422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("domains.index"))
    try:
        domain = services.add_domain(form.name.data)
    except UserError as e:
        db.session.rollback()
        return _index(with_error(form, e, "name"), e.status)
    concurrency.settle_submit_key(form.submit_key.data, url_for("domains.show", domain_id=domain.id))
    db.session.commit()
    flash(f"{domain.name} added. Publish the TXT record below, then verify.", "success")
    return redirect(url_for("domains.show", domain_id=domain.id))


@bp.get("/<domain_id>")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def show(domain_id: str):
    """One domain: the record to publish, its state and last check; once
    verified, the custom host and auto-join settings."""
    return _show(_domain_or_404(domain_id))


@bp.post("/<domain_id>/verify")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def verify(domain_id: str):
    """Look the TXT record up now. Found: verified (302). Missing or wrong:
    422 with what was found beside the button, and the check recorded (state
    failed, last checked now; audited). DNS not answering, or verified by
    another organization: 422 beside the button, nothing changed."""
    domain = _domain_or_404(domain_id)
    form = VerifyForm()
    if not form.validate():
        return _show(domain, 422, verify=form)
    try:
        services.verify_domain(domain)
    except services.CheckFailed as e:
        db.session.commit()  # the failed check is recorded: state, time, audit event
        return _show(_domain_or_404(domain_id), e.status, verify=with_error(form, e, "verify"))
    except UserError as e:
        db.session.rollback()
        return _show(_domain_or_404(domain_id), e.status, verify=with_error(form, e, "verify"))
    db.session.commit()
    flash(f"{domain.name} is verified.", "success")
    return redirect(url_for("domains.show", domain_id=domain.id))


@bp.post("/<domain_id>/settings")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def update(domain_id: str):
    """Save auto-join (off / automatic) and its role: 422 beside the
    field on bad input, 409 when someone saved in between."""
    domain = _domain_or_404(domain_id)
    form = DomainSettingsForm()
    if not form.validate():
        return _show(domain, 422, settings=form)
    try:
        changed = services.update_settings(domain, form.auto_join.data, form.auto_join_role.data, form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        domain = _domain_or_404(domain_id)
        return _show(domain, e.status, settings=with_error(DomainSettingsForm(formdata=None, obj=domain), e))
    except UserError as e:
        db.session.rollback()
        return _show(_domain_or_404(domain_id), e.status, settings=with_error(form, e))
    if changed:
        db.session.commit()
        flash("Saved.", "success")
    return redirect(url_for("domains.show", domain_id=domain.id))


@bp.post("/<domain_id>/host")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def set_host(domain_id: str):
    """Serve the organization on a host at this verified domain (replacing
    any other custom host). 422 beside the field on bad input."""
    domain = _domain_or_404(domain_id)
    form = CustomHostForm()
    if not form.validate():
        return _show(domain, 422, host=form)
    try:
        host = services.set_custom_host(g.org, domain, form.host.data, form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        return _show(_domain_or_404(domain_id), e.status, host=with_error(form, e))
    except UserError as e:
        db.session.rollback()
        return _show(_domain_or_404(domain_id), e.status, host=with_error(form, e))
    db.session.commit()
    flash(f"{g.org.name} is now served on {host} as well.", "success")
    return redirect(url_for("domains.show", domain_id=domain.id))


@bp.post("/custom-host/clear")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def clear_host():
    """Stop serving the custom host (the subdomain keeps working)."""
    if RemoveForm().validate() and services.clear_custom_host(g.org, reason="stopped by an admin"):
        db.session.commit()
        flash("The custom host no longer serves this organization.", "success")
    return redirect(url_for("domains.index"))


@bp.post("/<domain_id>/delete")
@login_required
@require("settings:domain")
@requires_feature(FEATURE, page=_unavailable)
def delete(domain_id: str):
    """Remove the domain: its custom host stops serving, nobody joins by it."""
    domain = _domain_or_404(domain_id)
    if not RemoveForm().validate():
        return _show(domain, 422)
    name = domain.name
    services.remove_domain(g.org, domain)
    db.session.commit()
    flash(f"{name} removed.", "success")
    return redirect(url_for("domains.index"))


@join_bp.post("/<org_id>")
@login_required
@login_only
def ask(org_id: str):
    """Ask the organization suggested on "Your organizations" (it verified
    the domain of this person's verified address, in "suggest" mode) to
    invite them: its members who may invite are e-mailed, once a day at
    most. Anything but that suggestion is 404."""
    if g.get("host_kind") != "apex" or not RemoveForm().validate():
        abort(404)
    try:
        sent = services.request_to_join(current_user, org_id)
    except UserError:
        db.session.rollback()
        abort(404)
    db.session.commit()
    if sent:
        flash("Your request was sent to the organization's administrators. They will invite you.", "success")
    else:
        flash("You already asked today: the administrators have your request.", "info")
    return redirect(url_for("orgs.home", pick=1))

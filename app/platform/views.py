"""The platform console (super-admins, apex host, ``/platform``).

Views are thin: read the request, call a service, commit, render or
redirect. The gate (``app.platform.gate``) has already answered 404 to
anyone who is not a super-admin on the apex. Every action takes a reason;
bad input answers 422 with the message beside its field and changes nothing
(the service raises before flushing and the view rolls back).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app import audit
from app.audit import catalogue
from app.auth import sessions
from app.auth.stepup import step_up
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.jobs import admin as jobs_admin
from app.platform import health as health_checks
from app.platform import organizations as orgs
from app.platform import overview, plans, stats, support
from app.platform import users as people
from app.platform.forms import (
    ImpersonateForm,
    OverrideForm,
    PlanEditForm,
    PlanForm,
    PurgeForm,
    ReasonForm,
    RemoveOverrideForm,
    SuspendForm,
    choice,
)
from app.platform.gate import bp, in_support_session
from app.tenancy import entitlements
from app.util import utcnow
from app.web import hosts, nav
from app.web.forms import with_error
from app.web.htmx import render

nav.console_link(bp, "index", "Platform console")


def _org_or_404(org_id: str):
    """The organization (any status), or 404 for a malformed or unknown id."""
    return orgs.find(org_id) or abort(404)


# --------------------------------------------------------------------------- overview
@bp.get("/")
def index():
    """The overview: organizations by plan and status, users, active
    organizations over 7 and 30 days, the job queue's depth, the webhook
    failure rate, and sign-ups and events per day over 90 days (charts from
    the analytics rollups)."""
    return render(
        "platform/index.html",
        kpis=overview.kpis(),
        charts=overview.charts(),
        webhooks=overview.webhook_failure_rate(),
        webhook_days=overview.WEBHOOK_WINDOW_DAYS,
    )


# --------------------------------------------------------------------------- organizations
@bp.get("/organizations")
def organizations():
    """Every organization: search (name, address, custom domain, an owner's
    e-mail), plan, status and size filters, sort, keyset pages of 50. With
    ``HX-Request`` only ``#platform-orgs`` (the active search)."""
    plans = orgs.plan_choices()
    query = orgs.OrgQuery.from_args(request.args, [p.key for p in plans])
    page = orgs.list_organizations(query)
    return render(
        "platform/organizations.html",
        "platform/_org_table.html",
        page=page,
        query=query,
        plans=plans,
        sizes=stats.SIZES,
    )


def _plan_form(org, formdata=None) -> PlanForm:
    if formdata is None:
        form = PlanForm(formdata=None, prefix="plan", data={"plan": org.plan_key, "version": org.version})
    else:
        form = PlanForm(formdata=formdata, prefix="plan")
    form.plan.choices = [choice(p.key, p.name) for p in orgs.plan_choices()]
    return form


def _override_form(formdata=None) -> OverrideForm:
    form = OverrideForm(formdata=formdata, prefix="override")
    form.name.choices = [choice("", "Choose…")] + [
        choice(n, f"{entitlements.label(n)} ({entitlements.kind_of(n)})")
        for n in [*entitlements.limit_names(), *entitlements.feature_names()]
    ]
    return form


def _org_page(org, status: int = 200, **forms):
    """The organization's page with its action forms (``forms`` replaces the
    blank form of the action that was just refused, errors and all)."""
    empty = None  # no formdata: blank forms, not the request's
    context = {
        "plan_form": _plan_form(org),
        "suspend_form": SuspendForm(formdata=empty, prefix="suspend"),
        "reactivate_form": ReasonForm(formdata=empty, prefix="reactivate"),
        "restore_form": ReasonForm(formdata=empty, prefix="restore"),
        "purge_form": PurgeForm(formdata=empty, prefix="purge"),
        "override_form": _override_form(),
        "remove_form": None,  # the refused removal's form, shown on its row
    }
    context.update(forms)
    return render(
        "platform/organization.html",
        d=orgs.detail(org),
        overrides=plans.overrides_of(org),
        now=utcnow(),
        describe=catalogue.describe,
        status=status,
        **context,
    )


@bp.get("/organizations/<org_id>")
def organization(org_id: str):
    """One organization: owners, member count, usage against its limits,
    its entitlements and where each comes from, its recent audit events, and
    the actions (plan, suspend/reactivate, restore, purge)."""
    return _org_page(_org_or_404(org_id))


def _refused(org, name: str, form, error: UserError):
    db.session.rollback()
    org = _org_or_404(str(org.id))  # as stored now
    if name in ("plan_form", "override_form") and isinstance(error, orgs.NeedsConfirmation):
        form.confirm.errors = list(error.problems)
        form.needs_confirm = True
        return _org_page(org, 422, **{name: form})
    return _org_page(org, error.status, **{name: with_error(form, error, "reason")})


@bp.post("/organizations/<org_id>/plan")
def change_plan(org_id: str):
    """Move the organization to another plan. An unknown plan or an empty
    reason: 422. A plan whose limits are below what the organization uses
    now: 422 saying what that means, and the same form with "change anyway"
    to confirm. A change made from a stale page: 409."""
    org = _org_or_404(org_id)
    form = _plan_form(org, request.form)
    if not form.validate():
        return _org_page(org, 422, plan_form=form)
    try:
        changed = orgs.change_plan(
            org, form.plan.data, form.reason.data, confirmed=bool(form.confirm.data), version=form.version.data
        )
    except UserError as e:
        if isinstance(e, StaleEdit):
            db.session.rollback()
            org = _org_or_404(org_id)
            return _org_page(org, e.status, plan_form=with_error(_plan_form(org), e))
        return _refused(org, "plan_form", form, e)
    db.session.commit()
    flash(f"{org.name} is now on the {org.plan.name} plan." if changed else "The plan is unchanged.", "success")
    return redirect(url_for("platform.organization", org_id=org.id))


def _action(org_id: str, form_name: str, form, service, done: str):
    org = _org_or_404(org_id)
    if not form.validate():
        return _org_page(org, 422, **{form_name: form})
    try:
        service(org, form)
    except UserError as e:
        return _refused(org, form_name, form, e)
    db.session.commit()
    flash(done.format(name=org.name), "success")
    return redirect(url_for("platform.organization", org_id=org.id))


@bp.post("/organizations/<org_id>/suspend")
def suspend(org_id: str):
    """Suspend: its members see only the suspension page, with the reason."""
    return _action(
        org_id,
        "suspend_form",
        SuspendForm(prefix="suspend"),
        lambda o, f: orgs.suspend(o, f.reason.data),
        "{name} is suspended.",
    )


@bp.post("/organizations/<org_id>/reactivate")
def reactivate(org_id: str):
    """Reinstate a suspended organization."""
    return _action(
        org_id,
        "reactivate_form",
        ReasonForm(prefix="reactivate"),
        lambda o, f: orgs.reactivate(o, f.reason.data),
        "{name} is active again.",
    )


@bp.post("/organizations/<org_id>/restore")
def restore(org_id: str):
    """Restore a deleted organization within its 30-day window."""
    return _action(
        org_id,
        "restore_form",
        ReasonForm(prefix="restore"),
        lambda o, f: orgs.restore(o, f.reason.data),
        "{name} is restored.",
    )


@bp.post("/organizations/<org_id>/purge")
@step_up(back="platform.organization")
def purge(org_id: str):
    """Purge a deleted organization's data now; the address typed must match."""
    return _action(
        org_id,
        "purge_form",
        PurgeForm(prefix="purge"),
        lambda o, f: orgs.purge_now(o, f.reason.data, f.confirm.data),
        "{name}'s data is purged.",
    )


@bp.post("/organizations/<org_id>/overrides")
def set_override(org_id: str):
    """Give the organization its own value for a limit or a feature,
    optionally until a date, with a reason; recorded in its log and the
    platform's. Bad input: 422 beside the field; a limit below what it uses:
    422 saying what that means, and "set it anyway" to confirm."""
    org = _org_or_404(org_id)
    form = _override_form(request.form)
    if not form.validate():
        return _org_page(org, 422, override_form=form)
    name = form.name.data
    raw = form.enabled.data if entitlements.kind_of(name or "") == "feature" else form.value.data
    try:
        plans.set_override(
            org,
            name,
            raw,
            form.until.data,
            form.reason.data,
            current_user.id,
            confirmed=bool(form.confirm.data),
        )
    except UserError as e:
        return _refused(org, "override_form", form, e)
    db.session.commit()
    flash(f"{org.name} has its own {plans.label(name)} now.", "success")
    return redirect(url_for("platform.organization", org_id=org.id, _anchor="overrides"))


@bp.post("/organizations/<org_id>/overrides/remove")
def remove_override(org_id: str):
    """Remove one of the organization's overrides (its plan's value applies
    again), with a reason; recorded in its log and the platform's."""
    org = _org_or_404(org_id)
    form = RemoveOverrideForm(prefix="remove")
    if not form.validate():
        return _org_page(org, 422, remove_form=form)
    try:
        plans.remove_override(org, form.name.data, form.reason.data)
    except UserError as e:
        db.session.rollback()
        return _org_page(_org_or_404(org_id), e.status, remove_form=with_error(form, e, "reason"))
    db.session.commit()
    flash(f"{org.name}'s {plans.label(form.name.data)} comes from its plan again.", "success")
    return redirect(url_for("platform.organization", org_id=org.id, _anchor="overrides"))


# --------------------------------------------------------------------------- plans
@bp.get("/plans")
def plans_index():
    """Every plan with its limits, features and how many live organizations use it."""
    rows = [(p, plans.organizations_on_plan(p)) for p in orgs.plan_choices()]
    return render(
        "platform/plans.html",
        rows=rows,
        limit_names=entitlements.limit_names(),
        feature_names=entitlements.feature_names(),
        plan_limit=entitlements.plan_limit,
        plan_feature=entitlements.plan_feature,
    )


def _plan_or_404(key: str):
    return plans.find_plan(key) or abort(404)


def _plan_edit_form(plan, formdata=None):
    cls = PlanEditForm
    if formdata is not None:
        return cls(formdata=formdata, prefix="plan")
    data = {"version": plan.version}
    for name in entitlements.limit_names():
        value = entitlements.plan_limit(plan, name)
        data[f"limit_{name}"] = "" if value is None else str(value)
    for name in entitlements.feature_names():
        data[f"feature_{name}"] = entitlements.plan_feature(plan, name)
    return cls(formdata=None, prefix="plan", data=data)


def _plan_page(plan, form, status: int = 200):
    return render(
        "platform/plan.html",
        plan=plan,
        form=form,
        organizations=plans.organizations_on_plan(plan),
        limit_names=entitlements.limit_names(),
        feature_names=entitlements.feature_names(),
        status=status,
    )


@bp.get("/plans/<key>")
def plan(key: str):
    """One plan's limits and features, as a form."""
    plan = _plan_or_404(key)
    return _plan_page(plan, _plan_edit_form(plan))


@bp.post("/plans/<key>")
def update_plan(key: str):
    """Save a plan's limits and features. A value that is not a whole number
    or an empty reason: 422 beside the field, nothing changed. A limit below
    what organizations on the plan use: 422 naming them and saying what it
    means, and "save anyway" to confirm. From a stale page: 409."""
    plan = _plan_or_404(key)
    form = _plan_edit_form(plan, request.form)
    if not form.validate():
        return _plan_page(plan, form, 422)
    limits: dict[str, int | None] = {}
    try:
        for name in entitlements.limit_names():
            limits[name] = plans.parse_limit(
                form[f"limit_{name}"].data,
                field=f"limit_{name}",
                may_be_unlimited=entitlements.may_be_unlimited(name),
            )
        features = {name: bool(form[f"feature_{name}"].data) for name in entitlements.feature_names()}
        changed = plans.update_plan(
            plan, limits, features, form.reason.data, confirmed=bool(form.confirm.data), version=form.version.data
        )
    except UserError as e:
        db.session.rollback()
        plan = _plan_or_404(key)
        if isinstance(e, StaleEdit):
            return _plan_page(plan, with_error(_plan_edit_form(plan), e), e.status)
        if isinstance(e, orgs.NeedsConfirmation):
            form.confirm.errors = list(e.problems)
            form.needs_confirm = True
            return _plan_page(plan, form, 422)
        return _plan_page(plan, with_error(form, e, "reason"), e.status)
    db.session.commit()
    flash(f"The {plan.name} plan is saved." if changed else "Nothing changed in the plan.", "success")
    return redirect(url_for("platform.plans_index"))


# --------------------------------------------------------------------------- users
@bp.get("/users")
def users():
    """Every person, across organizations: search on e-mail and name,
    status filter (active, disabled, super-admins), keyset pages of 50."""
    query = people.UserQuery.from_args(request.args)
    return render("platform/users.html", "platform/_user_table.html", page=people.list_users(query), query=query)


def _user_or_404(user_id: str):
    return people.find(user_id) or abort(404)


def _user_page(user, status: int = 200, **forms):
    empty = None
    context = {
        "disable_form": ReasonForm(formdata=empty, prefix="disable"),
        "enable_form": ReasonForm(formdata=empty, prefix="enable"),
        "reset_form": ReasonForm(formdata=empty, prefix="reset"),
        "impersonate_form": ImpersonateForm(formdata=empty, prefix="impersonate"),
    }
    context.update(forms)
    return render("platform/user.html", d=people.detail(user), describe=catalogue.describe, status=status, **context)


@bp.get("/users/<user_id>")
def user(user_id: str):
    """One person: their organizations and roles, live sessions, recent
    account events; disable / re-enable, send a reset link, impersonate."""
    return _user_page(_user_or_404(user_id))


def _user_action(user_id: str, form_name: str, form, service, done: str):
    target = _user_or_404(user_id)
    if not form.validate():
        return _user_page(target, 422, **{form_name: form})
    try:
        service(target, form)
    except UserError as e:
        db.session.rollback()
        return _user_page(_user_or_404(user_id), e.status, **{form_name: with_error(form, e, "reason")})
    db.session.commit()
    flash(done.format(name=target.name), "success")
    return redirect(url_for("platform.user", user_id=target.id))


@bp.post("/users/<user_id>/disable")
def disable_user(user_id: str):
    """Disable the person: no sign-in, and every session of theirs ends now."""
    return _user_action(
        user_id,
        "disable_form",
        ReasonForm(prefix="disable"),
        lambda u, f: people.disable(u, current_user, f.reason.data),
        "{name} is disabled; their sessions have ended.",
    )


@bp.post("/users/<user_id>/enable")
def enable_user(user_id: str):
    """Let a disabled person sign in again."""
    return _user_action(
        user_id,
        "enable_form",
        ReasonForm(prefix="enable"),
        lambda u, f: people.enable(u, f.reason.data),
        "{name} can sign in again.",
    )


@bp.post("/users/<user_id>/password-reset")
def send_password_reset(user_id: str):
    """Mail the person the ordinary password-reset link (a mail job)."""
    return _user_action(
        user_id,
        "reset_form",
        ReasonForm(prefix="reset"),
        lambda u, f: people.send_password_reset(u, f.reason.data),
        "A password reset link is on its way to {name}.",
    )


# --------------------------------------------------------------------------- support impersonation
@bp.post("/users/<user_id>/impersonate")
@step_up(back="platform.user")
def impersonate(user_id: str):
    """Act as the person in this browser for at most 30 minutes, with a
    reason; a banner on every page says so and offers "stop"."""
    target = _user_or_404(user_id)
    form = ImpersonateForm(prefix="impersonate")
    if not form.validate():
        return _user_page(target, 422, impersonate_form=form)
    try:
        support.start(
            target, current_user._get_current_object(), sessions.current(), form.reason.data, form.ticket.data
        )
    except UserError as e:
        db.session.rollback()
        return _user_page(_user_or_404(user_id), e.status, impersonate_form=with_error(form, e, "reason"))
    db.session.commit()
    flash(f"You are acting as {target.name} for support. Stop from the banner when done.", "warning")
    return redirect(hosts.apex_url("/"))


@bp.post("/impersonation/stop")
def stop_impersonating():
    """End the support session (every host it reached) and go back to the
    person's page in the console, as the super-admin again. Outside a
    support session (a super-admin's own): 404, there is nothing to stop."""
    if not in_support_session():
        abort(404)
    rec = sessions.current()
    support.stop(rec)
    user_id = rec.user_id
    db.session.commit()
    return redirect(hosts.apex_url(url_for("platform.user", user_id=user_id)))


@bp.context_processor
def _entitlement_labels():
    """``entitlement_label(name)`` for the console's pages."""
    return {"entitlement_label": entitlements.label}


@bp.app_context_processor
def _support_banner():
    """``support_session``: the support session this page is shown in, for
    the banner every page carries (``None`` outside one)."""
    if not in_support_session():
        return {"support_session": None}
    rec = sessions.current()
    left = sessions.SUPPORT_SESSION_MAX - (utcnow() - rec.created_at)
    return {"support_session": rec, "support_minutes_left": max(int(left.total_seconds() // 60), 0)}


# --------------------------------------------------------------------------- jobs and health
def _jobs_page(status: int = 200, error: str | None = None):
    return render("platform/jobs.html", state=jobs_admin.status(limit=50), error=error, status=status)


@bp.get("/jobs")
def jobs():
    """Queues (waiting, scheduled, running, failed, oldest wait) and the
    newest failed jobs with their last error."""
    return _jobs_page()


def _job_action(action: str):
    """Retry or cancel the job named by the form's ``job_id``: recorded in the
    platform log, committed with the change; a bad id or a job in the wrong
    state is 422 with the reason, nothing changed."""
    raw = (request.form.get("job_id") or "").strip()
    jid = int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None
    if jid is None:
        return _jobs_page(422, "Give the number of a job (a whole number, as listed).")
    audit.record(
        f"platform.job_{action}",
        target=("job", str(jid), f"job {jid}"),
        organization_id=audit.PLATFORM_ORG_ID,
    )
    try:
        outcome = (jobs_admin.retry if action == "retried" else jobs_admin.cancel)(jid)
    except jobs_admin.JobActionError as e:
        db.session.rollback()
        return _jobs_page(422, str(e).capitalize() + ".")
    flash(f"Job {jid}: {'queued to run again' if action == 'retried' else outcome}.", "success")
    return redirect(url_for("platform.jobs"))


@bp.post("/jobs/retry")
def retry_job():
    """Run a failed job again now (or a job waiting for a later retry now)."""
    return _job_action("retried")


@bp.post("/jobs/cancel")
def cancel_job():
    """Cancel a waiting job, or ask a running one to abort."""
    return _job_action("cancelled")


@bp.get("/health")
def health():
    """Database, migrations, the security posture, job lag, Redis, SMTP,
    version and uptime. ``/readyz`` stays the machine-readable form."""
    return render(
        "platform/health.html",
        checks=health_checks.checks(),
        version=health_checks.version(),
        uptime=int(health_checks.uptime_seconds()),
    )

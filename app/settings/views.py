"""Organization settings: one page per section, each behind its own permission.

General (``org:update``), Branding (``settings:branding``, plan feature
``branding``), Domains (``settings:domain``, its own area, linked when it is
registered), Security (``settings:security``), Notifications (every admin who
receives one, for themselves), Plan and usage (``billing:view``) and the
danger zone (``org:delete`` / ``org:transfer``). A section whose plan
feature the organization lacks answers 403 with a page saying so, and
offers nothing.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required

from app import hooks
from app.auth.stepup import step_up
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac.decorators import require, require_any, requires_feature
from app.settings import notifications as _notifications  # noqa: F401  (connects its hook receiver)
from app.settings import services
from app.settings.forms import (
    ColourForm,
    DeleteOrganizationForm,
    GeneralSettingsForm,
    LogoForm,
    NotificationsForm,
    RemoveLogoForm,
    SecurityForm,
)
from app.settings.models import LOGO_MAX_BYTES
from app.tenancy import entitlements, lifecycle, notify
from app.tenancy import policy as security_policy
from app.web import hosts, nav
from app.web.forms import with_error
from app.web.input_guard import accepts_files

bp = Blueprint("settings", __name__, url_prefix="/settings")
nav.link(bp, "index", "Settings", section="admin", order=90)
nav.entity_page(bp, "organization", "general", lambda _id: {})

# Every permission that opens a section (the "Settings" link shows for any).
SECTION_PERMISSIONS = (
    "org:update",
    "settings:branding",
    "settings:domain",
    "settings:security",
    "settings:sso",
    "billing:view",
    "org:delete",
    "org:transfer",
    "members:update_role",
    "webhooks:manage",
    "org:export",
)


def sections() -> list[tuple[str, str, bool]]:
    """``(endpoint, label, shown)`` of the section navigation, in order."""
    perms = g.permissions
    items = [
        ("settings.index", "Overview", True),
        ("settings.general", "General", "org:update" in perms),
        ("settings.branding", "Branding", "settings:branding" in perms),
        (
            "domains.index",
            "Domains",
            "settings:domain" in perms and "domains.index" in current_app.view_functions,
        ),
        ("settings.security", "Security", "settings:security" in perms),
        (
            "sso.index",
            "Single sign-on",
            "settings:sso" in perms and "sso.index" in current_app.view_functions,
        ),
        (
            "scim_settings.index",
            "SCIM provisioning",
            "settings:sso" in perms and "scim_settings.index" in current_app.view_functions,
        ),
        ("settings.notifications", "Notifications", bool(_offered_kinds())),
        ("settings.plan", "Plan and usage", "billing:view" in perms),
        (
            "orgdata.index",
            "Data export",
            "org:export" in perms and "orgdata.index" in current_app.view_functions,
        ),
        ("settings.danger", "Danger zone", bool({"org:delete", "org:transfer"} & perms)),
    ]
    return items


# The section a form's POST endpoint belongs to (the nav marks it after a 422 or 409).
SECTION_OF = {
    "settings.update": "settings.general",
    "settings.update_colour": "settings.branding",
    "settings.upload_logo": "settings.branding",
    "settings.remove_logo": "settings.branding",
    "settings.update_security": "settings.security",
    "settings.update_notifications": "settings.notifications",
    "settings.delete": "settings.danger",
}


@bp.app_context_processor
def _settings_nav():
    current = SECTION_OF.get(request.endpoint, request.endpoint) if has_request_context() else None
    if current and current.startswith("domains."):
        current = "domains.index"  # every page of the domains area is that section
    if current and current.startswith(("sso.", "sso_setup.")):
        current = "sso.index"
    if current and current.startswith("orgdata."):
        current = "orgdata.index"
    if current and current.startswith("scim_settings."):
        current = "scim_settings.index"
    return {"settings_sections": sections, "settings_current": current}


def _offered_kinds() -> list[notify.Kind]:
    if g.get("membership") is None:
        return []
    return [k for k in notify.KINDS.values() if k.permission in g.permissions]


def _branding_unavailable() -> str:
    """The refusal on a plan without branding: the section says so and offers nothing."""
    return render_template("settings/unavailable.html", title="Branding", feature="branding")


@bp.get("/")
@login_required
@require_any(*SECTION_PERMISSIONS)
def index():
    """The settings overview: every section this member may open, with what it holds."""
    return render_template("settings/index.html")


# --------------------------------------------------------------------------- general
def _general_page(form=None, status=200):
    settings = g.org.settings or {}
    form = form or GeneralSettingsForm(
        formdata=None,
        name=g.org.name,
        slug=g.org.slug,
        contact_email=settings.get("contact_email") or "",
        timezone=settings.get("timezone") or "",
        version=g.org.version,
    )
    return render_template("settings/general.html", form=form, timezones=services.timezones()), status


@bp.get("/general")
@login_required
@require("org:update")
def general():
    """General settings: name, address, contact e-mail, time zone."""
    return _general_page()


@bp.post("/general")
@login_required
@require("org:update")
def update():
    """Save the general settings. 422 with the error beside the field on bad
    input; 409 with the current values, nothing saved, when someone else
    saved since the form was drawn. A new address answers with a page that
    links there (a redirect across hosts after a form post is what the
    page's CSP ``form-action`` forbids)."""
    form = GeneralSettingsForm()
    if not form.validate():
        return _general_page(form, status=422)
    sent = request.form
    try:
        changes = services.update_general(
            g.org,
            name=form.name.data,
            slug=form.slug.data if "slug" in sent else None,
            contact_email=form.contact_email.data if "contact_email" in sent else None,
            timezone=form.timezone.data if "timezone" in sent else None,
            version=form.version.data,
        )
    except StaleEdit as e:
        db.session.rollback()
        return _general_page(with_error(_general_page_form(), e), status=e.status)
    except UserError as e:
        db.session.rollback()
        return _general_page(with_error(form, e), status=e.status)
    if not changes:
        return redirect(url_for("settings.general"))
    db.session.commit()
    if "slug" in changes:
        new_url = hosts.org_url(g.org, url_for("settings.general"))
        return render_template("settings/moved.html", new_url=new_url, old=changes["slug"][0])
    flash("Settings saved.", "success")
    return redirect(url_for("settings.general"))


def _general_page_form():
    settings = g.org.settings or {}
    return GeneralSettingsForm(
        formdata=None,
        name=g.org.name,
        slug=g.org.slug,
        contact_email=settings.get("contact_email") or "",
        timezone=settings.get("timezone") or "",
        version=g.org.version,
    )


# --------------------------------------------------------------------------- branding
def _branding_page(colour=None, logo=None, remove=None, status=200):
    settings = g.org.settings or {}
    current = settings.get("brand_color")
    return render_template(
        "settings/branding.html",
        colour_form=colour or ColourForm(formdata=None, colour=current or "", version=g.org.version),
        logo_form=logo or LogoForm(formdata=None, version=g.org.version),
        remove_form=remove or RemoveLogoForm(formdata=None, version=g.org.version),
        brand_color=current,
        ratio=services.contrast_with_white(current) if current else None,
        logo=settings.get("logo"),
        max_kb=LOGO_MAX_BYTES // 1024,
    ), status


@bp.get("/branding")
@login_required
@require("settings:branding")
@requires_feature("branding", page=_branding_unavailable)
def branding():
    """Branding: the primary colour and the logo (plan feature ``branding``)."""
    return _branding_page()


@bp.post("/branding/colour")
@login_required
@require("settings:branding")
@requires_feature("branding", page=_branding_unavailable)
def update_colour():
    """Set or clear the primary colour; 422 with the contrast ratio beside the
    field when white text on it fails WCAG AA; 409 on a stale version."""
    form = ColourForm()
    if not form.validate():
        return _branding_page(colour=form, status=422)
    try:
        changed = services.set_colour(g.org, form.colour.data, version=form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        return _branding_page(colour=with_error(ColourForm(formdata=None, version=g.org.version), e), status=e.status)
    except UserError as e:
        db.session.rollback()
        return _branding_page(colour=with_error(form, e), status=e.status)
    if changed:
        db.session.commit()
        flash("Colour saved.", "success")
    return redirect(url_for("settings.branding"))


@bp.post("/branding/logo")
@login_required
@require("settings:branding")
@accepts_files
@requires_feature("branding", page=_branding_unavailable)
def upload_logo():
    """Upload the logo: PNG or JPEG by its bytes, at most 512 KB, 16–2048
    pixels a side; anything else 422 beside the field, nothing stored."""
    form = LogoForm()
    if not form.validate():
        return _branding_page(logo=form, status=422)
    upload = form.logo.data
    data = upload.stream.read(LOGO_MAX_BYTES + 1) if upload and hasattr(upload, "stream") else b""
    try:
        services.set_logo(g.org, data, version=form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        return _branding_page(logo=with_error(LogoForm(formdata=None, version=g.org.version), e), status=e.status)
    except UserError as e:
        db.session.rollback()
        return _branding_page(logo=with_error(form, e), status=e.status)
    db.session.commit()
    flash("Logo saved.", "success")
    return redirect(url_for("settings.branding"))


@bp.post("/branding/logo/remove")
@login_required
@require("settings:branding")
@requires_feature("branding", page=_branding_unavailable)
def remove_logo():
    """Remove the logo (409 on a stale version)."""
    form = RemoveLogoForm()
    if not form.validate():
        return _branding_page(remove=form, status=422)
    try:
        changed = services.remove_logo(g.org, version=form.version.data)
    except UserError as e:
        db.session.rollback()
        return _branding_page(
            remove=with_error(RemoveLogoForm(formdata=None, version=g.org.version), e), status=e.status
        )
    if changed:
        db.session.commit()
        flash("Logo removed.", "success")
    return redirect(url_for("settings.branding"))


@bp.get("/branding/logo")
@login_required
@require("org:view")
def logo():
    """The logo's bytes with their checked type, ``nosniff``, cached by digest (404: none)."""
    row = services.logo_of(g.org) if entitlements.entitled(g.org, "branding") else None
    if row is None:
        abort(404)
    response = make_response(row.data)
    response.headers["Content-Type"] = row.content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/branding/theme.css")
@login_required
@require("org:view")
def theme():
    """The organization's colours as CSS custom properties: a stylesheet of
    our own origin, so the strict CSP (``style-src 'self'``, no inline
    styles) holds. Built from the organization row the request already read."""
    colour = (g.org.settings or {}).get("brand_color") if entitlements.entitled(g.org, "branding") else None
    css = ""
    if colour:
        # Written by set_colour only, which normalised it to #rrggbb.
        colour = services.normalise_colour(colour)
        hover = services.darker(colour)
        css = (
            f":root {{ --accent: {colour}; --accent-hover: {hover}; --focus: {colour}; --brand: {colour}; }}\n"
            f"@media (prefers-color-scheme: light) {{ :root {{ --accent-text: {colour}; }} }}\n"
        )
    response = make_response(css)
    response.headers["Content-Type"] = "text/css; charset=utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


# --------------------------------------------------------------------------- security
def _security_form(formdata=None):
    form = SecurityForm(formdata=formdata)
    form.sign_in_methods.choices = list(security_policy.SIGN_IN_METHODS.items())
    form.break_glass.choices = services.owner_choices()
    return form


def _security_page(form=None, status=200, lockout=False):
    policy = security_policy.for_org(g.org)
    if form is None:
        form = _security_form()
        form.idle_minutes.data = str(policy.idle_minutes or "")
        form.absolute_hours.data = str(policy.absolute_hours or "")
        form.ip_allowlist.data = "\n".join(policy.ip_allowlist)
        form.sign_in_methods.data = list(policy.sign_in_methods)
        form.break_glass.data = list(policy.break_glass_user_ids)
        form.require_2fa.data = policy.require_2fa
        form.require_2fa_grace_days.data = str(policy.require_2fa_grace_days or "")
        form.members_may_create_api_keys.data = policy.members_may_create_api_keys
        form.api_keys_may_never_expire.data = policy.api_keys_may_never_expire
        form.version.data = g.org.version
    cfg = current_app.config
    return render_template(
        "settings/security.html",
        form=form,
        address=request.remote_addr,
        allowlist_entitled=entitlements.entitled(g.org, "ip_allowlist"),
        platform_idle=int(cfg["SESSION_IDLE_TIMEOUT"].total_seconds() // 60),
        platform_absolute=int(cfg["SESSION_ABSOLUTE_TIMEOUT"].total_seconds() // 3600),
        lockout=lockout,
        two_factor_deadline=security_policy.for_org(g.org).two_factor_deadline(),
    ), status


@bp.get("/security")
@login_required
@require("settings:security")
def security():
    """The security policy: session lifetimes, IP allowlist, sign-in rules, API keys."""
    return _security_page()


@bp.post("/security")
@login_required
@require("settings:security")
@step_up(back="settings.security")
def update_security():
    """Save the security policy. Bad input → 422 beside the field; an
    allowlist that excludes the admin's own address → 422 asking for the
    explicit confirmation; stale version → 409. Nothing changes on any."""
    form = _security_form(request.form)
    if not form.validate():
        return _security_page(form, status=422)
    allowlist = form.ip_allowlist.data or ""
    if allowlist.strip() and not entitlements.entitled(g.org, "ip_allowlist"):
        form.ip_allowlist.errors.append("Your plan does not include an IP allowlist.")
        return _security_page(form, status=422)
    try:
        changed = services.update_security(
            g.org,
            idle_minutes=form.idle_minutes.data,
            absolute_hours=form.absolute_hours.data,
            ip_allowlist=allowlist,
            sign_in_methods=form.sign_in_methods.data or [],
            break_glass_user_ids=form.break_glass.data or [],
            require_2fa=form.require_2fa.data,
            require_2fa_grace_days=form.require_2fa_grace_days.data,
            members_may_create_api_keys=form.members_may_create_api_keys.data,
            api_keys_may_never_expire=form.api_keys_may_never_expire.data,
            admin_address=request.remote_addr,
            confirm_lockout=form.confirm_lockout.data,
            version=form.version.data,
        )
    except StaleEdit as e:
        db.session.rollback()
        return _security_page(with_error(_current_security_form(), e), status=e.status)
    except services.LockoutRisk as e:
        db.session.rollback()
        return _security_page(with_error(form, e), status=e.status, lockout=True)
    except UserError as e:
        db.session.rollback()
        return _security_page(with_error(form, e), status=e.status)
    if changed:
        db.session.commit()
        flash("Security policy saved.", "success")
    return redirect(url_for("settings.security"))


def _current_security_form():
    db.session.refresh(g.org)
    form = _security_form()
    policy = security_policy.for_org(g.org)
    form.idle_minutes.data = str(policy.idle_minutes or "")
    form.absolute_hours.data = str(policy.absolute_hours or "")
    form.ip_allowlist.data = "\n".join(policy.ip_allowlist)
    form.sign_in_methods.data = list(policy.sign_in_methods)
    form.break_glass.data = list(policy.break_glass_user_ids)
    form.require_2fa.data = policy.require_2fa
    form.require_2fa_grace_days.data = str(policy.require_2fa_grace_days or "")
    form.members_may_create_api_keys.data = policy.members_may_create_api_keys
    form.api_keys_may_never_expire.data = policy.api_keys_may_never_expire
    form.version.data = g.org.version
    return form


# --------------------------------------------------------------------------- notifications
def _notifications_page(form=None, status=200):
    kinds = _offered_kinds()
    row = notify.preference_of(g.membership.user_id)
    muted = set(row.muted or []) if row else set()
    if form is None:
        form = NotificationsForm(formdata=None, version=row.version if row else 0)
        form.kinds.data = [k.key for k in kinds if k.key not in muted]
    form.kinds.choices = [(k.key, k.label) for k in kinds]
    return render_template("settings/notifications.html", form=form, kinds=kinds), status


@bp.get("/notifications")
@login_required
@require_any("members:update_role", "webhooks:manage", "settings:domain", "settings:security")
def notifications():
    """Which notification e-mails I receive from this organization (for members
    whose role receives at least one kind)."""
    return _notifications_page()


@bp.post("/notifications")
@login_required
@require_any("members:update_role", "webhooks:manage", "settings:domain", "settings:security")
def update_notifications():
    """Save my notification choices; 409 on a stale version."""
    form = NotificationsForm()
    form.kinds.choices = [(k.key, k.label) for k in _offered_kinds()]
    if not form.validate():
        return _notifications_page(form, status=422)
    try:
        changed = services.set_notifications(g.membership, form.kinds.data or [], version=form.version.data)
    except UserError as e:
        db.session.rollback()
        return _notifications_page(with_error(NotificationsForm(formdata=None), e), status=e.status)
    if changed:
        db.session.commit()
        flash("Notification choices saved.", "success")
    return redirect(url_for("settings.notifications"))


# --------------------------------------------------------------------------- plan and usage
def meter(
    label: str, used: int | None, allowed: int | None, at_limit: str, unit: str = "", figure: str | None = None
) -> dict:
    """One usage meter: ``state`` ok, warn (over 80 %) or full (100 %).
    ``figure``: what to show instead of "N of M" when there is no limit to
    draw against (API requests today: the limit is per minute)."""
    pct = None
    state = "ok"
    if used is not None and allowed:
        pct = min(100, round(100 * used / allowed))
        state = "full" if used >= allowed else "warn" if used > 0.8 * allowed else "ok"
    return {
        "label": label,
        "used": used,
        "allowed": allowed,
        "pct": pct,
        "state": state,
        "at_limit": at_limit,
        "unit": unit,
        "figure": figure,
    }


FEATURE_LABELS = {
    "api": "API access",
    "audit_streaming": "Audit log streaming",
    "branding": "Branding (colour and logo)",
    "custom_domains": "Verified domains and a custom host",
    "custom_roles": "Custom roles",
    "ip_allowlist": "IP allowlist",
    "scim": "Directory sync (SCIM)",
    "sso": "Single sign-on (SAML, OIDC)",
}


@bp.get("/plan")
@login_required
@require("billing:view")
def plan():
    """The plan, its limits and features, and meters of what is used against them."""
    usage: dict[str, int] = {}
    for answer in hooks.usage_of.send(g.org):
        usage.update(answer or {})
    meters = [
        meter(
            "Seats (members and pending invitations)",
            usage.get("seats"),
            entitlements.limit(g.org, "seats"),
            "New invitations and sign-ups are refused until a seat is freed.",
        ),
        meter(
            "Webhook endpoints",
            usage.get("max_webhooks"),
            entitlements.limit(g.org, "max_webhooks"),
            "No new endpoint can be added; existing ones keep delivering.",
        ),
    ]
    api_entitled = entitlements.entitled(g.org, "api")
    if api_entitled:
        meters += _api_meters(g.org)
    features = [
        (FEATURE_LABELS.get(name, name.replace("_", " ").capitalize()), entitlements.entitled(g.org, name))
        for name in entitlements.feature_names()
    ]
    return render_template(
        "settings/plan.html",
        meters=meters,
        features=features,
        retention=entitlements.limit(g.org, "audit_retention_days"),
        api_per_minute=entitlements.limit(g.org, "api_requests_per_minute"),
        api_entitled=api_entitled,
    )


def _api_meters(org) -> list[dict]:
    """API requests this minute (against the per-minute limit, amber over
    80 %, red at it) and today (no daily limit), from the API area through
    ``hooks.api_usage_of``: settings sits below the API in the layers and
    never imports it. No answer (no API area): no meters."""
    usage = next((a for a in hooks.api_usage_of.send(org) if a is not None), None)
    if usage is None:
        return []
    if usage.per_minute is None:
        minute = meter("API requests this minute", None, None, "", figure="Unlimited")
    elif usage.this_minute is None:
        minute = meter(
            "API requests this minute", None, None, "", figure=f"Not counted (limit {usage.per_minute:,} a minute)"
        )
    else:
        minute = meter(
            "API requests this minute",
            usage.this_minute,
            usage.per_minute,
            "Further requests this minute get 429 Too Many Requests with a Retry-After header; "
            "they succeed again once the minute has passed. Nothing else stops.",
        )
    today = meter(
        "API requests today (UTC)",
        usage.today,
        None,
        "",
        figure=f"{usage.today:,} (no daily limit; counted to the minute)",
    )
    return [minute, today]


# --------------------------------------------------------------------------- danger zone
def _danger_page(delete=None, status=200):
    return render_template("settings/danger.html", delete_form=delete or DeleteOrganizationForm()), status


@bp.get("/danger")
@login_required
@require_any("org:delete", "org:transfer")
def danger():
    """Transfer ownership (a link to its page) and delete the organization."""
    return _danger_page()


@bp.post("/delete")
@login_required
@require("org:delete")
@step_up(back="settings.danger")
def delete():
    """Soft-delete the organization after the Owner types its address.

    Members lose access at once; a super-admin can restore it for 30 days.
    """
    form = DeleteOrganizationForm()
    if not form.validate():
        return _danger_page(delete=form, status=422)
    if form.confirm.data.strip().lower() != g.org.slug:
        form.confirm.errors.append(f"Type {g.org.slug} exactly to confirm.")
        return _danger_page(delete=form, status=422)
    lifecycle.delete(g.org)
    db.session.commit()
    flash(f"{g.org.name} was deleted. A platform administrator can restore it within 30 days.", "info")
    return redirect(hosts.apex_url("/?pick=1"))

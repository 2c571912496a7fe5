"""Passkey sign-in (alone, or as the second factor after a password) and the
step-up page, on the ``auth`` blueprint (imported by ``app.blueprints``).

The passkey endpoints are JSON, called by ``static/js/passkeys.js`` with
``fetch`` (CSRF token in the ``X-CSRFToken`` header, as htmx sends it): one
draws the challenge (``…/options``), the other checks the browser's answer.
A refusal is ``application/problem+json`` with a ``detail`` the page shows
beside the button (422, 403 or 429), and nothing is changed but the spent
challenge and the failure's audit event. A success answers ``{"redirect":
url}``, where the script goes.
"""

from __future__ import annotations

from flask import abort, flash, g, jsonify, redirect, render_template, request, session
from flask_login import current_user, login_required

from app import hooks
from app.auth import factors, passkeys, services, sessions, stepup
from app.auth.forms import StepUpForm
from app.auth.views import PENDING_KEY, _pending_user, after_login_target, bp, client_ip, destination
from app.errors import UserError
from app.extensions import db
from app.web.access import login_only, public
from app.web.forms import with_error
from app.web.input_guard import accepts_json


def problem(e: UserError):
    """A refusal as problem+json (RFC 9457); the transaction is committed
    first when it holds the failure's audit event and the spent challenge."""
    db.session.commit()
    body = {"type": "about:blank", "title": "Passkey refused", "status": e.status, "detail": e.message}
    if e.field:
        body["field"] = e.field
    resp = jsonify(body)
    resp.status_code = e.status
    resp.mimetype = "application/problem+json"
    if isinstance(e, services.Throttled):
        resp.headers["Retry-After"] = str(e.retry_after)
    return resp


def _credential():
    """The browser's credential from the JSON body, or ``UserError`` (malformed)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise UserError(passkeys.MALFORMED, "passkey")
    return body["credential"]


def _apex_or_404() -> None:
    if g.get("host_kind") != "apex":
        abort(404)


# --------------------------------------------------------------------------- sign in with a passkey alone
@bp.post("/login/passkey/options")
@public
@accepts_json
def passkey_sign_in_options():
    """A challenge for a discoverable passkey (the browser offers the
    person's passkeys for this site; no e-mail typed), bound to this browser."""
    _apex_or_404()
    options = passkeys.authentication_options(passkeys.SIGN_IN)
    db.session.commit()
    return jsonify(options)


@bp.post("/login/passkey")
@public
@accepts_json
def passkey_sign_in():
    """Sign in with a passkey alone: a new session (a full authentication,
    audited with the passkey), then where the log-in would go. Refused (403)
    for a member of an organization that requires SSO, as a password is."""
    _apex_or_404()
    try:
        user = services.sign_in_with_passkey(_credential(), client_ip())
        # An organization that requires SSO refuses a passkey as it refuses a
        # password; its break-glass Owners may (a passkey is a second factor).
        rule = services.password_rule(user)
    except UserError as e:
        return problem(e)
    body = request.get_json(silent=True) or {}
    next_url = body.get("next") if isinstance(body.get("next"), str) else None
    session.pop(PENDING_KEY, None)
    services.log_in(user, factor="passkey")
    if rule is not None and rule.break_glass:
        hooks.break_glass_signed_in.send(user)
    db.session.commit()
    return jsonify(redirect=destination(after_login_target(user, next_url)))


# --------------------------------------------------------------------------- passkey as the second factor
@bp.post("/login/second-factor/passkey/options")
@public
@accepts_json
def second_factor_passkey_options():
    """A challenge for the passkeys of the person whose password was just
    checked in this browser (their passkeys only)."""
    _apex_or_404()
    user = _pending_user()
    if user is None:
        return problem(UserError("Your sign-in took too long. Log in again.", status=403))
    options = passkeys.authentication_options(passkeys.SECOND_FACTOR, user)
    db.session.commit()
    return jsonify(options)


@bp.post("/login/second-factor/passkey")
@public
@accepts_json
def second_factor_passkey():
    """The sign-in's second step with a passkey: the session starts."""
    _apex_or_404()
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        return problem(UserError("Your sign-in took too long. Log in again.", status=403))
    next_url = session[PENDING_KEY].get("next") or None
    try:
        services.check_passkey_second_factor(user, _credential())
    except UserError as e:
        return problem(e)
    break_glass = bool(session[PENDING_KEY].get("bg"))
    session.pop(PENDING_KEY, None)
    services.log_in(user, factor="passkey")
    if break_glass:
        hooks.break_glass_signed_in.send(user)
    db.session.commit()
    return jsonify(redirect=destination(after_login_target(user, next_url)))


# --------------------------------------------------------------------------- step-up
def _step_up_page(form=None, status: int = 200, next_path: str = "/"):
    user = current_user._get_current_object()
    has_totp = factors.active_totp(user) is not None
    keys = passkeys.passkeys_of(user)
    return render_template(
        "auth/step_up.html",
        form=form or StepUpForm(formdata=None),
        next=next_path,
        has_totp=has_totp,
        needs_code=has_totp,
        passkey_only=bool(keys) and not has_totp,
        offer_passkey=bool(keys) and passkeys.available_here(),
        support=sessions.current() is not None and sessions.current().impersonator_id is not None,
    ), status


@bp.route("/auth/step-up", methods=["GET", "POST"])
@login_required
@login_only
def step_up():
    """Confirm it is you before a sensitive action: the password (and the
    authenticator-app or recovery code, for an account that has one), or a
    passkey. Then back to ``next``, a path on this host (anything else: the
    home page of this host). Wrong input: 422 beside the field, audited."""
    next_path = stepup.local_path(request.values.get("next"))
    rec = sessions.current()
    if rec is not None and rec.impersonator_id is not None:
        return render_template("auth/step_up_refused.html", message=stepup.SUPPORT_REFUSAL), 403
    form = StepUpForm()
    if request.method == "GET":
        return _step_up_page(next_path=next_path)
    if not form.validate():
        return _step_up_page(form, 422, next_path)
    try:
        services.step_up_with_password(current_user._get_current_object(), rec, form.password.data, form.code.data)
    except services.Throttled as e:
        db.session.rollback()
        return _step_up_page(with_error(form, e), 429, next_path)
    except UserError as e:
        db.session.commit()  # keeps the audit record of the failure; nothing else changed
        return _step_up_page(with_error(form, e), e.status, next_path)
    db.session.commit()
    flash("Thanks, that is confirmed for the next 10 minutes.", "success")
    return _redirect_local(next_path)


def _redirect_local(path: str):
    return redirect(stepup.local_path(path))


@bp.post("/auth/step-up/passkey/options")
@login_required
@login_only
@accepts_json
def step_up_passkey_options():
    """A step-up challenge for the signed-in person's passkeys, bound to this session."""
    rec = sessions.current()
    try:
        services.stepup_refuse_support(rec)
        if not passkeys.available_here():
            raise UserError("Passkeys cannot be used on this address. Use your password instead.", status=403)
    except UserError as e:
        return problem(e)
    options = passkeys.authentication_options(passkeys.STEP_UP, current_user._get_current_object(), rec.id)
    db.session.commit()
    return jsonify(options)


@bp.post("/auth/step-up/passkey")
@login_required
@login_only
@accepts_json
def step_up_passkey():
    """Step up with a passkey, then back to ``next`` (a path on this host)."""
    rec = sessions.current()
    body = request.get_json(silent=True) or {}
    next_path = stepup.local_path(body.get("next") if isinstance(body, dict) else None)
    try:
        services.step_up_with_passkey(current_user._get_current_object(), rec, _credential())
    except UserError as e:
        return problem(e)
    db.session.commit()
    flash("Thanks, that is confirmed for the next 10 minutes.", "success")
    return jsonify(redirect=next_path)

"""Account pages on the apex: name, password, e-mail address, and "Your sessions".

Every page needs a sign-in and lives on the apex only (a GET on an
organization host is sent to the apex; anything else there is 404). Each
change is a POST with CSRF, decided in ``app.auth.services``.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import factors, notifications, passkeys, services, sessions
from app.auth.forms import (
    EmailChangeForm,
    NameForm,
    PasskeyRemoveForm,
    PasskeyRenameForm,
    PasswordChangeForm,
    RecoveryCodesForm,
    TotpConfirmForm,
    TotpDisableForm,
)
from app.auth.views import apex_only, throttled
from app.errors import UserError
from app.extensions import db
from app.tenancy.services import my_memberships
from app.web import hosts
from app.web.access import login_only
from app.web.downloads import download
from app.web.forms import with_error
from app.web.htmx import is_htmx, redirect_page, render
from app.web.input_guard import accepts_json

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
def _apex_only():
    return apex_only()


@bp.app_template_filter("ua_summary")
def ua_summary(ua: str | None) -> str:
    """ "Firefox on Linux" for a session's user agent."""
    return services.describe_user_agent(ua)


def _index(status: int = 200, **forms):
    """The account page with its three forms; the one that failed carries its errors."""
    forms.setdefault("name_form", NameForm(formdata=None, name=current_user.name))
    forms.setdefault("password_form", PasswordChangeForm(formdata=None))
    forms.setdefault("email_form", EmailChangeForm(formdata=None))
    return render_template("account/index.html", memberships=my_memberships(current_user.id), **forms), status


@bp.get("")
@login_required
@login_only
def index():
    """Your account: name, password, e-mail address (and whether it is verified),
    and your organizations, each with a way to leave it (on its own host)."""
    return _index()


@bp.post("/name")
@login_required
@login_only
def update_name():
    """Change your display name (422 with the error beside the field when it is bad)."""
    form = NameForm()
    if not form.validate():
        return _index(422, name_form=form)
    try:
        services.change_name(current_user, form.name.data)
    except UserError as e:
        db.session.rollback()
        return _index(e.status, name_form=with_error(form, e))
    db.session.commit()
    flash("Your name was saved.", "success")
    return redirect(url_for("account.index"))


@bp.post("/password")
@login_required
@login_only
def change_password():
    """Change your password: the current one is required; every other session ends."""
    form = PasswordChangeForm()
    if not form.validate():
        return _index(422, password_form=form)
    try:
        revoked = services.change_password(
            current_user, form.current_password.data, form.new_password.data, keep_session=sessions.current()
        )
    except services.Throttled as e:
        return throttled(
            "account/index.html",
            e,
            name_form=NameForm(formdata=None, name=current_user.name),
            password_form=form,
            email_form=EmailChangeForm(formdata=None),
        )
    except UserError as e:
        if e.field == "current_password":
            db.session.commit()  # keep the audit record of the failed check; nothing else changed
        db.session.rollback()
        return _index(e.status, password_form=with_error(form, e))
    db.session.commit()
    others = f" {revoked} other session{'s were' if revoked != 1 else ' was'} signed out." if revoked else ""
    flash("Your password was changed." + others, "success")
    return redirect(url_for("account.index"))


@bp.post("/email")
@login_required
@login_only
def change_email():
    """Ask to change your e-mail address: a link goes to the new address, and the
    address changes only when it is followed."""
    form = EmailChangeForm()
    if not form.validate():
        return _index(422, email_form=form)
    try:
        new = services.request_email_change(current_user, form.email_password.data, form.new_email.data)
    except services.Throttled as e:
        return throttled(
            "account/index.html",
            e,
            name_form=NameForm(formdata=None, name=current_user.name),
            password_form=PasswordChangeForm(formdata=None),
            email_form=form,
        )
    except UserError as e:
        if e.field == "email_password":
            db.session.commit()  # keep the audit record of the failed check; nothing else changed
        db.session.rollback()
        return _index(e.status, email_form=with_error(form, e))
    db.session.commit()
    flash(f"We sent a confirmation link to {new}. Your address changes when you follow it.", "info")
    return redirect(url_for("account.index"))


def _sessions_page(status: int = 200):
    current = sessions.current()
    return render(
        "account/sessions.html",
        "account/_sessions.html",
        status=status,
        user_sessions=services.active_sessions(current_user),
        current_id=current.id if current else None,
    )


@bp.get("/sessions", endpoint="sessions")  # the function name would shadow ``sessions``
@login_required
@login_only
def sessions_index():
    """Your sessions: every live sign-in, where and when it was last used."""
    return _sessions_page()


def _signed_out():
    """After revoking your own session: straight to the log-in page (HTMX: via HX-Redirect)."""
    return redirect_page(hosts.apex_url(url_for("auth.login")))


@bp.post("/sessions/<session_id>/revoke")
@login_required
@login_only
def revoke_session(session_id: str):
    """Sign out one of your sessions on every host it reached. Another user's
    session id is 404, the same as one that does not exist."""
    rec = services.revoke_session(current_user, session_id)
    if rec is None:
        abort(404)
    current = sessions.current()
    is_current = current is not None and current.id == rec.id
    if is_current:
        sessions.end_current()
    db.session.commit()
    if is_current:
        return _signed_out()
    if is_htmx():
        return _sessions_page()
    flash("That session was signed out.", "success")
    return redirect(url_for("account.sessions"))


@bp.post("/sessions/revoke-others")
@login_required
@login_only
def revoke_others():
    """Sign out every session but this one."""
    count = services.revoke_other_sessions(current_user, sessions.current())
    db.session.commit()
    if is_htmx():
        return _sessions_page()
    flash(f"{count} other session{'s' if count != 1 else ''} signed out." if count else "No other sessions.", "success")
    return redirect(url_for("account.sessions"))


# --------------------------------------------------------------------------- two-factor authentication
def _security(status: int = 200, codes: list[str] | None = None, mail_error: str | None = None, failed=None, **forms):
    """The two-factor page: enrol (QR code and secret while pending), the
    recovery codes (shown once, right after they are made), turn off; the
    passkeys, each with its rename and remove forms (``failed``: the
    passkey whose form failed, with that form among ``forms``)."""
    forms.setdefault("confirm_form", TotpConfirmForm(formdata=None))
    forms.setdefault("disable_form", TotpDisableForm(formdata=None))
    forms.setdefault("codes_form", RecoveryCodesForm(formdata=None))
    row = factors.current_totp(current_user)
    pending = row if row is not None and row.confirmed_at is None else None
    setup = None
    if pending is not None:
        secret = factors.secret_of(pending)
        uri = factors.provisioning_uri(current_user, secret)
        setup = {"secret": secret, "grouped": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))}
        setup["qr"] = factors.qr_svg(uri)
    resp = make_response(
        render_template(
            "account/security.html",
            totp=row if row is not None and row.confirmed_at is not None else None,
            setup=setup,
            codes=codes,
            codes_left=factors.recovery_codes_left(current_user),
            mail_kinds=notifications.KINDS.values(),
            mail_error=mail_error,
            receives=lambda kind: notifications.receives(current_user, kind),
            passkeys=passkeys.passkeys_of(current_user),
            factor_count=factors.second_factor_count(current_user),
            failed_id=failed.id if failed is not None else None,
            rename_form=forms.pop("rename_form", None),
            remove_form=forms.pop("remove_form", None),
            blank_rename=lambda p: PasskeyRenameForm(formdata=None, name=p.name, prefix=f"p{p.id.hex[:8]}"),
            blank_remove=lambda p: PasskeyRemoveForm(formdata=None, prefix=f"r{p.id.hex[:8]}"),
            **forms,
        ),
        status,
    )
    # A page holding a secret (the pending TOTP key, recovery codes) is kept
    # by no cache and no back-forward history.
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/security")
@login_required
@login_only
def security():
    """Two-factor authentication: whether it is on, how many recovery codes
    are left, and the forms to turn it on or off."""
    return _security()


@bp.post("/security/totp")
@login_required
@login_only
def start_totp():
    """Begin enrolling an authenticator app: a new secret, pending until a code confirms it."""
    try:
        services.refuse_in_support_session()
        factors.start_totp(current_user)
    except UserError as e:
        db.session.rollback()
        flash(e.message, "error")
        return redirect(url_for("account.security"))
    db.session.commit()
    return redirect(url_for("account.security") + "#setup")


@bp.post("/security/totp/confirm")
@login_required
@login_only
def confirm_totp():
    """Confirm the pending authenticator with a code: two-factor is on, and
    the ten recovery codes are shown, this once."""
    form = TotpConfirmForm()
    if not form.validate():
        return _security(422, confirm_form=form)
    try:
        services.refuse_in_support_session()
        codes = factors.confirm_totp(current_user, form.code.data)
    except UserError as e:
        db.session.rollback()
        return _security(e.status, confirm_form=with_error(form, e))
    db.session.commit()
    flash("Two-factor authentication is on. Save your recovery codes now: they are shown only once.", "success")
    return _security(codes=codes)


@bp.post("/security/recovery-codes")
@login_required
@login_only
def regenerate_codes():
    """Ten new recovery codes (the current password is required); earlier codes stop working."""
    form = RecoveryCodesForm()
    if not form.validate():
        return _security(422, codes_form=form)
    try:
        services.refuse_in_support_session()
        services.verify_current_password(current_user, form.codes_password.data, "codes_password")
        codes = factors.regenerate_recovery_codes(current_user)
    except services.Throttled as e:
        db.session.rollback()
        return _security(e.status, codes_form=with_error(form, e))
    except UserError as e:
        if e.field == "codes_password":
            db.session.commit()  # keep the audit record of the failed check; nothing else changed
        db.session.rollback()
        return _security(e.status, codes_form=with_error(form, e))
    db.session.commit()
    flash("New recovery codes were made; the earlier ones no longer work. Save these now.", "success")
    return _security(codes=codes)


@bp.post("/security/totp/disable")
@login_required
@login_only
def disable_totp():
    """Turn two-factor authentication off: the current password and a current
    factor (an app code or a recovery code) are both required."""
    form = TotpDisableForm()
    if not form.validate():
        return _security(422, disable_form=form)
    try:
        services.refuse_in_support_session()
        services.verify_current_password(current_user, form.disable_password.data, "disable_password")
        factors.disable_totp(current_user, form.factor_code.data)
    except services.Throttled as e:
        db.session.rollback()
        return _security(e.status, disable_form=with_error(form, e))
    except UserError as e:
        if e.field == "disable_password":
            db.session.commit()  # keep the audit record of the failed check; nothing else changed
        db.session.rollback()
        return _security(e.status, disable_form=with_error(form, e))
    db.session.commit()
    flash("Two-factor authentication is off. Your recovery codes no longer work.", "success")
    return redirect(url_for("account.security"))


@bp.post("/security/mail")
@login_required
@login_only
def update_security_mail():
    """Choose which security e-mails you receive: a box left unticked turns
    that kind off (a recovery code's use always mails, whatever is sent)."""
    wanted = set(request.form.getlist("receive"))
    unknown = wanted - set(notifications.KINDS)
    if unknown:
        return _security(422, mail_error="Choose only from the e-mails listed.")
    changed = notifications.set_muted(current_user, {k.key for k in notifications.MUTABLE} - wanted)
    db.session.commit()
    flash("Your security e-mail choices were saved." if changed else "Nothing changed.", "success")
    return redirect(url_for("account.security") + "#security-mail")


@bp.post("/security/recovery-codes/download")
@login_required
@login_only
def download_codes():
    """The recovery codes just shown, as a text file to keep: the page posts
    them back (they are stored hashed, so the server cannot read them), and
    only the user's own unused codes are echoed; anything else is 422.
    ``Cache-Control: no-store``: no copy is left in any cache."""
    codes = factors.current_recovery_codes(current_user, request.form.getlist("codes"))
    if codes is None:
        flash("Those are not your current recovery codes. Make new ones to download them.", "error")
        return _security(422)
    body = render_template("account/recovery_codes.txt", codes=codes, email=current_user.email)
    return download([body], "tenantry-recovery-codes.txt", mimetype="text/plain")


# --------------------------------------------------------------------------- passkeys
def _problem(e: UserError):
    from app.auth.passkey_views import problem

    return problem(e)


@bp.post("/security/passkeys/options")
@login_required
@login_only
@accepts_json
def passkey_options():
    """Options for registering a new passkey (JSON for ``static/js/passkeys.js``):
    a challenge bound to you and this session, none of your passkeys again."""
    try:
        services.refuse_in_support_session()
    except UserError as e:
        return _problem(e)
    options = passkeys.registration_options(current_user._get_current_object(), sessions.current().id)
    db.session.commit()
    return jsonify(options)


@bp.post("/security/passkeys")
@login_required
@login_only
@accepts_json
def add_passkey():
    """Register a passkey from the browser's answer (JSON ``{credential,
    name}``), named by you; audited. Refused (problem+json, nothing
    saved): a bad name, a response to another challenge or origin, malformed
    JSON, a passkey already registered."""
    body = request.get_json(silent=True)
    try:
        services.refuse_in_support_session()
        if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
            raise UserError(passkeys.MALFORMED, "passkey")
        row = passkeys.register(
            current_user._get_current_object(), sessions.current().id, body["credential"], body.get("name")
        )
    except UserError as e:
        if e.field == "name":
            db.session.rollback()  # nothing was spent: the challenge is claimed after the name is checked
        return _problem(e)
    db.session.commit()
    flash(f"Passkey “{row.name}” added. You can sign in with it, without your password.", "success")
    return jsonify(redirect=url_for("account.security") + "#passkeys")


def _passkey_or_404(passkey_id: str):
    return passkeys.find(current_user, passkey_id) or abort(404)


@bp.post("/security/passkeys/<passkey_id>/rename")
@login_required
@login_only
def rename_passkey(passkey_id: str):
    """Rename one of your passkeys (422 beside the field for a bad name).
    Another person's passkey id is 404, as one that does not exist."""
    row = _passkey_or_404(passkey_id)
    form = PasskeyRenameForm(prefix=f"p{row.id.hex[:8]}")
    if not form.validate():
        return _security(422, failed=row, rename_form=form)
    try:
        services.refuse_in_support_session()
        changed = passkeys.rename(current_user._get_current_object(), row, form.name.data)
    except UserError as e:
        db.session.rollback()
        return _security(e.status, failed=row, rename_form=with_error(form, e))
    db.session.commit()
    if changed:
        flash(f"Passkey renamed to “{row.name}”.", "success")
    return redirect(url_for("account.security") + "#passkeys")


@bp.post("/security/passkeys/confirm-options")
@login_required
@login_only
@accepts_json
def passkey_confirm_options():
    """A challenge to confirm with one of your passkeys before your last
    second factor is removed (bound to you and this session)."""
    try:
        services.refuse_in_support_session()
    except UserError as e:
        return _problem(e)
    options = passkeys.authentication_options(
        passkeys.CONFIRM, current_user._get_current_object(), sessions.current().id
    )
    db.session.commit()
    return jsonify(options)


@bp.post("/security/passkeys/<passkey_id>/remove")
@login_required
@login_only
def remove_passkey(passkey_id: str):
    """Remove one of your passkeys: your current password, and, when it is
    your last second factor, a confirmation with it (the page's script asks
    the browser). Wrong input: 422 beside the field, nothing removed."""
    row = _passkey_or_404(passkey_id)
    form = PasskeyRemoveForm(prefix=f"r{row.id.hex[:8]}")
    if not form.validate():
        return _security(422, failed=row, remove_form=form)
    try:
        services.refuse_in_support_session()
        services.verify_current_password(current_user, form.remove_password.data, "remove_password")
        factors.remove_passkey(current_user, row, form.passkey_response.data or None)
    except services.Throttled as e:
        db.session.rollback()
        return _security(e.status, failed=row, remove_form=with_error(form, e))
    except UserError as e:
        if e.field in ("remove_password", "passkey_response"):
            db.session.commit()  # keep the audit record of the failed check (and the spent challenge)
        else:
            db.session.rollback()
        return _security(e.status, failed=row, remove_form=with_error(form, e))
    db.session.commit()
    flash(f"Passkey “{row.name}” removed. It no longer signs you in.", "success")
    return redirect(url_for("account.security") + "#passkeys")

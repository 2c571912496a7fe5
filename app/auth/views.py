"""Sign-in, sign-out, sign-up, verification, forgotten passwords, e-mail
confirmation, and the hand-off between hosts. Views parse and render;
``app.auth.services`` decides."""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from app import hooks
from app.auth import factors, handoff, passkeys, services, sessions
from app.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SecondFactorForm, SignupForm
from app.auth.models import User
from app.errors import UserError
from app.extensions import db
from app.util import parse_uuid
from app.web import hosts
from app.web.access import login_only, public
from app.web.forms import with_error

bp = Blueprint("auth", __name__)


def after_login_target(user, next_url: str | None) -> str:
    """Where a fresh sign-in goes: a safe ``next``, else the user's organization(s)."""
    target = hosts.safe_next(next_url, default="")
    if target:
        return target
    return url_for("orgs.home")


def destination(url: str) -> str:
    """Where to send the browser for ``url``: itself on this host; on another
    of our hosts, the hand-off that carries the sign-in there
    (``app.auth.handoff``)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.netloc.lower() == request.host.lower() or sessions.current() is None:
        return url
    path = _local_path(parts.path + ("?" + parts.query if parts.query else ""))
    begin = f"{parts.scheme}://{parts.netloc}{url_for('auth.handoff_begin')}"
    return begin + "?" + urlencode({"next": path})


def go_to(url: str):
    """Redirect to ``url``; when it is on another of our hosts, through the
    hand-off that carries the sign-in there (``destination``)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.netloc.lower() == request.host.lower():
        return redirect(url)
    return _to_other_host(destination(url))


def _to_other_host(url: str):
    """Send the browser to ``url`` on another of our hosts.

    Browsers hold the redirects that answer a form submission to the form
    page's CSP ``form-action``, which names the apex and its subdomains
    (``app.ops.csp_for``) but cannot list every custom domain. So after a
    POST, a custom domain is reached from a page that moves on by itself,
    not by a redirect.
    """
    if request.method == "POST" and hosts.classify(urlsplit(url).netloc).custom_domain:
        return render_template("auth/continue.html", target=url, host=urlsplit(url).netloc)
    return redirect(url)


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this host, else ``/`` (hand-offs never leave the host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def client_ip() -> str | None:
    return sessions.client_ip()


def apex_only():
    """Account pages live on the apex only: a GET elsewhere is sent to the same
    page on the apex, anything else is 404. Returns a response or ``None``."""
    if g.get("host_kind") == "apex":
        return None
    if request.method == "GET":
        qs = request.query_string.decode()
        return redirect(hosts.apex_url(request.path + ("?" + qs if qs else "")))
    abort(404)


def link_invalid(e: services.LinkInvalid):
    """The 410 page of an e-mailed link that no longer works (nothing saved)."""
    db.session.rollback()
    return render_template("auth/link_invalid.html", title=e.title, message=e.message), 410


def throttled(template: str, e: services.Throttled, **ctx):
    """A 429 that re-renders the page with the wait, and ``Retry-After``."""
    db.session.rollback()
    resp = make_response(render_template(template, throttled=e.message, **ctx), 429)
    resp.headers["Retry-After"] = str(e.retry_after)
    return resp


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Sign in on the apex. On an organization host, send the visitor to the
    apex (one already signed in there goes on to ``next`` on that host).

    Throttled per address (``LOGIN_ATTEMPTS_PER_IP``, every POST counts) and,
    for failures, per account and address and per account with a growing
    wait (``services.check_failure_throttles``: keyed by the address typed,
    so unknown addresses are throttled alike). One message for
    an unknown address and a wrong password. A new session id at every log-in.
    """
    if g.get("host_kind") != "apex":
        if current_user.is_authenticated:
            # Signed in on this host already (the hand-off brought the
            # session): back to the apex's log-in would send them here again,
            # for ever. Where they were going on this host, else its home.
            target = hosts.safe_next(request.args.get("next"), default="/")
            return redirect(target if not urlsplit(target).netloc else "/")
        return redirect(hosts.apex_url(url_for("auth.login", next=request.url)))
    next_url = request.values.get("next")
    if current_user.is_authenticated:
        return go_to(after_login_target(current_user, next_url))
    form = LoginForm()
    use_password = bool(request.values.get("use_password"))
    options = [o for o in hooks.sign_in_options.send(next_url or "") if o]
    page = {"next": next_url, "sso_options": options, "use_password": use_password}
    if request.method == "GET":
        return render_template("auth/login.html", form=form, **page)
    try:
        services.count_login_attempt(client_ip())
        valid = form.validate()
        # Home-realm discovery: an address whose organization signs in
        # through SSO goes to its identity provider, no password asked
        # (unless the person chose "use a password", for break-glass).
        if not use_password and not form.csrf_token.errors and form.email.data:
            realm = next((u for u in hooks.sign_in_realm.send(form.email.data) if u), None)
            if realm:
                # A page that moves on by itself, not a redirect: the browser
                # holds a form's redirects to our own hosts (CSP form-action),
                # and this one goes on to the identity provider.
                return render_template("auth/continue.html", target=realm, host="your identity provider")
        if not valid:
            return render_template("auth/login.html", form=form, **page), 422
        user = services.authenticate(form.email.data, form.password.data)
        rule = services.password_rule(user)
    except services.Throttled as e:
        return throttled("auth/login.html", e, form=form, **page)
    except UserError as e:
        db.session.commit()  # keeps the audit record of the failure; nothing else changed
        return render_template("auth/login.html", form=with_error(form, e), **page), e.status
    if rule is not None and rule.break_glass:
        db.session.commit()
        session[PENDING_KEY] = {"u": str(user.id), "at": int(time.time()), "next": next_url or "", "bg": 1}
        return redirect(url_for("auth.second_factor"))
    if services.needs_second_factor(user):
        db.session.commit()  # a rehashed password
        session[PENDING_KEY] = {"u": str(user.id), "at": int(time.time()), "next": next_url or ""}
        return redirect(url_for("auth.second_factor"))
    services.log_in(user)
    db.session.commit()
    return go_to(after_login_target(user, next_url))


# The sign-in between its two steps: the password was right, the second factor
# is still to come. Kept in the signed cookie; no session exists yet.
PENDING_KEY = "pending_2fa"
PENDING_MAX_SECONDS = 300


def _pending_user():
    """The user whose password was checked in this browser in the last five
    minutes and who still owes the second factor, else ``None``."""
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict) or int(time.time()) - int(data.get("at") or 0) > PENDING_MAX_SECONDS:
        return None
    uid = parse_uuid(data.get("u"))
    user = db.session.get(User, uid) if uid else None
    if user is None or user.disabled_at is not None:
        return None
    return user


def _second_factor_context(user) -> dict:
    """Which second factors the page offers: the passkey button, the code form."""
    return {"has_passkey": bool(passkeys.passkeys_of(user)), "has_totp": factors.active_totp(user) is not None}


@bp.route("/login/second-factor", methods=["GET", "POST"])
@public
def second_factor():
    """The sign-in's second step: a code from the authenticator app or a
    recovery code (a passkey: ``passkey_views.second_factor_passkey``), then
    the session starts (a recovery code's use is mailed).
    Without a password checked here in the last five minutes: back to log-in."""
    if g.get("host_kind") != "apex":
        abort(404)
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        if request.method == "POST":
            flash("Your sign-in took too long. Log in again.", "warning")
        return redirect(url_for("auth.login"))
    next_url = session[PENDING_KEY].get("next") or None
    form = SecondFactorForm()
    ctx = _second_factor_context(user)
    if request.method == "GET":
        return render_template("auth/second_factor.html", form=form, **ctx)
    if not form.validate():
        return render_template("auth/second_factor.html", form=form, **ctx), 422
    try:
        factor = services.check_second_factor(user, form.code.data)
    except services.Throttled as e:
        return throttled("auth/second_factor.html", e, form=form, **ctx)
    except UserError as e:
        db.session.commit()  # keeps the audit record of the failure; nothing else changed
        return render_template("auth/second_factor.html", form=with_error(form, e), **ctx), e.status
    break_glass = bool(session[PENDING_KEY].get("bg"))
    session.pop(PENDING_KEY, None)
    services.log_in(user, factor=factor)
    if break_glass:
        hooks.break_glass_signed_in.send(user)
    db.session.commit()
    if factor == "recovery_code":
        flash("You used a recovery code. We e-mailed you about it; generate new codes if you are running low.", "info")
    return go_to(after_login_target(user, next_url))


@bp.post("/logout")
@login_required
@login_only(suspended_ok=True, outsiders_on_org_host=True)
def logout():
    """Sign out everywhere this sign-in reached (the session row is revoked).

    Works on any of our hosts, including an organization host the user is
    not a member of (the "not a member" page offers "sign in as someone
    else"), and lands on the apex log-in page."""
    services.log_out(current_user)
    db.session.commit()
    return redirect(hosts.apex_url(url_for("auth.login")))


@bp.route("/signup", methods=["GET", "POST"])
@public
def signup():
    """Create an account on the apex: unverified, signed in, verification mail sent."""
    if (r := apex_only()) is not None:
        return r
    if current_user.is_authenticated:
        return redirect(url_for("orgs.home"))
    form = SignupForm()
    if request.method == "GET":
        return render_template("auth/signup.html", form=form)
    if not form.validate():
        return render_template("auth/signup.html", form=form), 422
    try:
        user = services.sign_up(form.name.data, form.email.data, form.password.data, client_ip())
    except services.Throttled as e:
        return throttled("auth/signup.html", e, form=form)
    except UserError as e:
        db.session.rollback()
        return render_template("auth/signup.html", form=with_error(form, e)), e.status
    services.log_in(user)
    db.session.commit()
    return redirect(url_for("auth.verify_pending"))


@bp.get("/verify-email")
@login_required
@login_only
def verify_pending():
    """ "Check your inbox": where sign-up lands, with a button to resend the link."""
    if (r := apex_only()) is not None:
        return r
    if current_user.is_verified:
        return redirect(url_for("orgs.home"))
    return render_template("auth/verify_pending.html")


@bp.post("/verify-email/resend")
@login_required
@login_only
def resend_verification():
    """Send the verification link again (at most ``VERIFICATION_MAILS_PER_ACCOUNT``)."""
    if (r := apex_only()) is not None:
        return r
    try:
        sent = services.resend_verification(current_user)
    except services.Throttled as e:
        return throttled("auth/verify_pending.html", e)
    db.session.commit()
    if not sent:
        flash("Your e-mail address is already verified.", "info")
        return redirect(url_for("orgs.home"))
    flash(f"We sent a new link to {current_user.email}.", "success")
    return redirect(url_for("auth.verify_pending"))


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
@public
def verify(token: str):
    """Verify the address named in a signed link (48 hours; dies if the address changed).

    Opening the link only asks; the button (a POST) verifies. Mail scanners
    and link previews fetch links with GET, and must not use them up.
    """
    if (r := apex_only()) is not None:
        return r
    try:
        if request.method == "GET":
            return render_template("auth/verify_confirm.html", user=services.verification_target(token))
        user = services.verify_email(token)
    except services.LinkInvalid as e:
        return link_invalid(e)
    db.session.commit()
    return render_template("auth/verified.html", user=user)


@bp.route("/forgot-password", methods=["GET", "POST"])
@public
def forgot():
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    if (r := apex_only()) is not None:
        return r
    form = ForgotPasswordForm()
    if request.method == "GET":
        if current_user.is_authenticated and not form.email.data:
            form.email.data = current_user.email
        return render_template("auth/forgot.html", form=form)
    if not form.validate():
        return render_template("auth/forgot.html", form=form), 422
    try:
        services.request_password_reset(form.email.data, client_ip())
    except services.Throttled as e:
        return throttled("auth/forgot.html", e, form=form)
    except UserError as e:
        db.session.rollback()
        return render_template("auth/forgot.html", form=with_error(form, e)), e.status
    db.session.commit()
    return render_template("auth/forgot_sent.html", email=form.email.data.strip())


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@public
def reset(token: str):
    """Set a new password from a reset link: once, within the hour; other sessions end."""
    if (r := apex_only()) is not None:
        return r
    try:
        user = services.reset_target(token)
    except services.LinkInvalid as e:
        return link_invalid(e)
    form = ResetPasswordForm()
    if request.method == "GET":
        return render_template("auth/reset.html", form=form, user=user)
    if not form.validate():
        return render_template("auth/reset.html", form=form, user=user), 422
    keep = sessions.current() if current_user.is_authenticated else None
    try:
        services.reset_password(token, form.password.data, keep_session=keep)
    except services.LinkInvalid as e:
        return link_invalid(e)
    except UserError as e:
        db.session.rollback()
        return render_template("auth/reset.html", form=with_error(form, e), user=user), e.status
    db.session.commit()
    if current_user.is_authenticated:
        flash("Your password was changed and every other session signed out.", "success")
        return redirect(url_for("account.index"))
    flash("Your password was changed. Log in with your new password.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/confirm-email/<token>", methods=["GET", "POST"])
@public
def confirm_email(token: str):
    """Switch to the new address a confirmation link carries; the old address is told.

    As with verification, GET only asks and the button (a POST) acts.
    """
    if (r := apex_only()) is not None:
        return r
    try:
        if request.method == "GET":
            user, new = services.email_change_target(token)
            return render_template("auth/email_change_confirm.html", user=user, new_email=new)
        user = services.confirm_email_change(token)
    except services.LinkInvalid as e:
        return link_invalid(e)
    db.session.commit()
    return render_template("auth/email_confirmed.html", user=user)


def _nonce_cookie() -> dict:
    """The hand-off nonce cookie's attributes: host-only, sent to the redemption URL only."""
    return {
        "path": url_for("auth.handoff_redeem"),
        "secure": current_app.config["SESSION_COOKIE_SECURE"],
        "httponly": True,
        "samesite": "Lax",
    }


@bp.get("/auth/handoff/begin")
@public(outsiders_on_org_host=True, suspended_ok=True, unknown_org_ok=True)
def handoff_begin():
    """On the target host: give this browser a nonce cookie, then ask the apex
    for a ticket bound to it."""
    if g.get("host_kind") != "org":
        abort(404)
    nonce = handoff.new_nonce()
    query = {"host": request.host, "n": handoff.nonce_hash(nonce), "next": _local_path(request.args.get("next"))}
    resp = redirect(hosts.apex_url(url_for("auth.handoff_issue") + "?" + urlencode(query)))
    # Long enough for a log-in on the apex in between; the ticket itself lives 60 s.
    resp.set_cookie(handoff.NONCE_COOKIE, nonce, max_age=600, **_nonce_cookie())
    return resp


@bp.get("/auth/handoff/issue")
@login_required
@login_only
def handoff_issue():
    """On the apex: a ticket for the signed-in session, bound to the asking
    host and to its nonce, and back to that host to redeem it."""
    if g.get("host_kind") != "apex":
        abort(404)
    # Normalised once: the host checked is the host the ticket is bound to and
    # the redirect goes to (a raw " acme…" or "acme…:5000." made a malformed
    # Location, or a 500 after the ticket was committed).
    host = hosts.normalise(request.args.get("host"))
    hashed = request.args.get("n") or ""
    rec = sessions.current()
    if (
        rec is None
        or hosts.classify(host).kind != "org"
        or not hosts.is_own_host(host)
        or not handoff.NONCE_HASH_RE.match(hashed)
    ):
        abort(404)
    token = handoff.issue(rec, host, hashed)
    query = {"t": token, "next": _local_path(request.args.get("next"))}
    return redirect(f"{hosts.scheme()}://{host}{url_for('auth.handoff_redeem')}?{urlencode(query)}")


@bp.get("/auth/handoff")
@public(outsiders_on_org_host=True, suspended_ok=True, unknown_org_ok=True)
def handoff_redeem():
    """Redeem a hand-off ticket on this host, next to this browser's nonce
    cookie, and continue to ``next`` (a local path)."""
    if g.get("host_kind") != "org":
        abort(404)
    rec = handoff.redeem(
        request.args.get("t", ""), hosts.normalise(request.host), request.cookies.get(handoff.NONCE_COOKIE)
    )
    if rec is None or not sessions.is_valid(rec):
        return render_template("auth/link_invalid.html"), 410
    sessions.bind_cookie(rec.id)
    user = rec.user
    if g.org is not None:
        user.last_org_id = g.org.id
        db.session.commit()
    resp = redirect(_local_path(request.args.get("next")))
    resp.delete_cookie(handoff.NONCE_COOKIE, **_nonce_cookie())
    return resp


@bp.get("/go")
@login_required
@login_only
def go():
    """From the apex to one of our hosts, carrying the sign-in (the org switcher uses this)."""
    if g.get("host_kind") != "apex":
        abort(404)
    target = hosts.safe_next(request.args.get("to"), default="")
    if not target:
        abort(404)
    return go_to(target)

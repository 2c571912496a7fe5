"""Sign-in, sign-out and the hand-off between hosts."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app import audit
from app.auth import handoff, sessions
from app.auth.forms import LoginForm
from app.auth.models import User
from app.auth.passwords import verify_password
from app.extensions import db
from app.rbac.decorators import login_only, public
from app.tenancy import hosts

bp = Blueprint("auth", __name__)


def after_login_target(user, next_url: str | None) -> str:
    """Where a fresh sign-in goes: a safe ``next``, else the user's organization(s)."""
    target = hosts.safe_next(next_url, default="")
    if target:
        return target
    return url_for("orgs.home")


def go_to(url: str):
    """Redirect to ``url``; when it is on another of our hosts, through a hand-off ticket."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.netloc or parts.netloc.lower() == request.host.lower():
        return redirect(url)
    rec = sessions.current()
    if rec is None:
        return redirect(url)
    token = handoff.issue(rec, parts.netloc)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    dest = f"{parts.scheme}://{parts.netloc}{url_for('auth.handoff_redeem')}"
    from urllib.parse import urlencode

    return redirect(dest + "?" + urlencode({"t": token, "next": path}))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Sign in on the apex. On an organization host, send the visitor to the apex."""
    if g.get("host_kind") != "apex":
        return redirect(hosts.apex_url(url_for("auth.login", next=request.url)))
    next_url = request.values.get("next")
    if current_user.is_authenticated:
        return go_to(after_login_target(current_user, next_url))
    form = LoginForm()
    if request.method == "GET":
        return render_template("auth/login.html", form=form, next=next_url)
    if not form.validate():
        return render_template("auth/login.html", form=form, next=next_url), 422
    email = form.email.data.strip().lower()
    user = db.session.execute(select(User).where(func.lower(User.email) == email)).scalar_one_or_none()
    if user is None or not verify_password(user.password_hash, form.password.data):
        form.password.errors.append("That e-mail and password do not match an account.")
        return render_template("auth/login.html", form=form, next=next_url), 422
    sessions.start(user)
    db.session.commit()
    return go_to(after_login_target(user, next_url))


@bp.post("/logout")
@login_required
@login_only(suspended_ok=True)
def logout():
    """Sign out everywhere this sign-in reached (the session row is revoked)."""
    sessions.end_current()
    db.session.commit()
    return redirect(hosts.apex_url(url_for("auth.login")))


@bp.get("/auth/handoff")
@public(outsiders_on_org_host=True, suspended_ok=True)
def handoff_redeem():
    """Redeem a hand-off ticket on this host and continue to ``next`` (a local path)."""
    if g.get("host_kind") != "org":
        abort(404)
    rec = handoff.redeem(request.args.get("t", ""), request.host)
    if rec is None or not sessions.is_valid(rec):
        return render_template("auth/link_invalid.html"), 410
    sessions.bind_cookie(rec.id)
    user = rec.user
    if g.org is not None:
        user.last_org_id = g.org.id
        db.session.commit()
    nxt = request.args.get("next") or "/"
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    return redirect(nxt)


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

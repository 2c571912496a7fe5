"""Invitations: the invite form, resending and revoking, and accepting a link.

Views are thin: parse the request, call ``app.members.invitations``, commit,
then mail (after the commit, so nobody is invited to something that rolled
back) and render or redirect. Another organization's invitation id is a 404;
an unusable link is a 410 saying why.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app import concurrency
from app.auth.services import find_user, log_in
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.members import invitations, listing, memberships
from app.members.blueprint import back, bp, render_row
from app.members.forms import AcceptSignUpForm, InvitationRoleForm, InviteCsvForm, InviteForm
from app.rbac import services as rbac
from app.rbac.decorators import require
from app.web import hosts
from app.web.access import public
from app.web.forms import with_error
from app.web.htmx import is_htmx
from app.web.input_guard import accepts_files


def _invitation_or_404(invitation_id):
    inv = invitations.get_invitation(invitation_id)
    if inv is None:
        abort(404)
    return inv


# --------------------------------------------------------------------------- invitations
def _invite_form() -> InviteForm:
    form = InviteForm()
    form.role.choices = rbac.role_choices(g.membership)
    return form


@bp.get("/members/invite")
@login_required
@require("members:invite")
def new():
    """The invitation form: addresses (one or many) and one role the inviter may give."""
    form = _invite_form()
    keys = [k for k, _ in form.role.choices]
    form.role.data = "member" if "member" in keys else (keys[-1] if keys else "")
    return render_template("members/new.html", form=form, seats=memberships.seats(g.org))


@bp.post("/members/invite")
@login_required
@require("members:invite")
def create():
    """Invite everyone listed. Malformed addresses, a role the inviter may not
    give, or more people than the plan has seats for: 422, nothing sent.
    Members and people already invited are skipped and named. Each mail is
    a job queued with the invitations: it leaves once they are committed, and
    is retried until the SMTP server takes it; the answer never waits for it.
    The same form sent twice (its one-time key) invites once; the second
    lands on the members list."""
    form = _invite_form()
    if not form.validate():
        return render_template("members/new.html", form=form, seats=memberships.seats(g.org)), 422
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("members.index", status="invited"))
    try:
        outcome = invitations.invite(form.emails.data, form.role.data, g.membership, g.org, message=form.message.data)
    except UserError as e:
        db.session.rollback()
        form = with_error(form, e, fallback="emails")
        return render_template("members/new.html", form=form, seats=memberships.seats(g.org)), e.status
    if not outcome.invited:
        db.session.rollback()
        form.emails.errors.append("Nobody was invited: " + "; ".join(f"{e} {why}" for e, why in outcome.skipped) + ".")
        return render_template("members/new.html", form=form, seats=memberships.seats(g.org)), 422
    invitations.queue_mails(outcome.invited, g.org, current_user.name)
    concurrency.settle_submit_key(form.submit_key.data, url_for("members.index", status="invited"))
    db.session.commit()
    flash(f"Invited {', '.join(inv.email for inv, _ in outcome.invited)}.", "success")
    for email, why in outcome.skipped:
        flash(f"{email} {why}.", "info")
    return redirect(url_for("members.index", status="invited"))


def _csv_form() -> InviteCsvForm:
    form = InviteCsvForm()
    form.role.choices = rbac.role_choices(g.membership)
    return form


def _csv_page(form, status: int = 200, outcome=None):
    return (
        render_template(
            "members/invite_csv.html",
            form=form,
            outcome=outcome,
            seats=memberships.seats(g.org),
            max_rows=invitations.CSV_MAX_ROWS,
            max_kb=invitations.CSV_MAX_BYTES // 1024,
        ),
        status,
    )


@bp.get("/members/invite/csv")
@login_required
@require("members:invite")
def new_csv():
    """Invite many people from a CSV file: the upload form and its limits."""
    form = _csv_form()
    keys = [k for k, _ in form.role.choices]
    form.role.data = "member" if "member" in keys else (keys[-1] if keys else "")
    return _csv_page(form)


@bp.post("/members/invite/csv")
@accepts_files
@login_required
@require("members:invite")
def create_csv():
    """Invite every row of the uploaded CSV (``email[,role]``) and answer with
    each row's outcome: invited, already a member, already invited, invalid
    e-mail, unknown role, over the seat limit... Partial success is allowed.
    A file that cannot be read or breaks the limits, a role the inviter may
    not give, or a message too long: 422 beside the field, nothing saved.
    The same form sent twice (its one-time key) invites once."""
    form = _csv_form()
    # A file sent in a text field (the form posts multipart) is refused
    # beside that field, not handed to its validators.
    stray = [f for f in (form.role, form.message) if f.data is not None and not isinstance(f.data, str)]
    for f in stray:
        f.data = ""
    if not form.validate() or stray:
        for f in stray:
            f.errors = [*f.errors, "Send text here, not a file."]
        return _csv_page(form, 422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("members.index", status="invited"))
    upload = form.file.data
    data = upload.stream.read(invitations.CSV_MAX_BYTES + 1) if upload else b""
    try:
        outcome = invitations.invite_csv(data, form.role.data, g.membership, g.org, message=form.message.data)
    except UserError as e:
        db.session.rollback()
        return _csv_page(with_error(form, e, fallback="file"), e.status)
    invitations.queue_mails(outcome.invited, g.org, current_user.name)
    # A second submit of this form lands on the invitations, not on a second upload.
    concurrency.settle_submit_key(form.submit_key.data, url_for("members.index", status="invited"))
    db.session.commit()
    fresh = _csv_form()
    fresh.role.data = form.role.data
    return _csv_page(fresh, 200, outcome=outcome)


def _invitation_page(inv, form=None, status: int = 200, error: str | None = None):
    if form is None:
        form = InvitationRoleForm(formdata=None, obj=inv)
        form.role.data = inv.role_key
    form.role.choices = rbac.role_choices(g.membership)
    return render_template("members/invitation.html", inv=inv, form=form, error=error), status


@bp.get("/members/invitations/<invitation_id>")
@login_required
@require("members:invite")
def show_invitation(invitation_id):
    """A pending invitation: who invited whom, when, with which role and
    message; the role can be changed while it is pending."""
    return _invitation_page(_invitation_or_404(invitation_id))


@bp.post("/members/invitations/<invitation_id>/role")
@login_required
@require("members:invite")
def update_invitation_role(invitation_id):
    """Change a pending invitation's role. The form carries the version it was
    drawn from: a stale one (changed, accepted or revoked meanwhile) is 409
    with the current state; a role the inviter may not give is 422 beside
    the field. Audited as ``member.invitation_role_changed``."""
    inv = _invitation_or_404(invitation_id)
    form = InvitationRoleForm()
    form.role.choices = rbac.role_choices(g.membership)
    if not form.validate():
        return _invitation_page(inv, form, status=422)
    try:
        changed = invitations.change_invitation_role(inv, form.role.data or "", g.membership, form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        db.session.expire_all()
        inv = _invitation_or_404(invitation_id)
        return _invitation_page(inv, status=409, error=e.message)
    except UserError as e:
        db.session.rollback()
        db.session.expire_all()
        inv = _invitation_or_404(invitation_id)
        if e.field:
            form.version.data = str(inv.version)
            return _invitation_page(inv, with_error(form, e), status=e.status)
        return _invitation_page(inv, status=e.status, error=e.message)
    db.session.commit()
    flash(f"The invitation to {inv.email} now offers {inv.role_name}." if changed else "No change.", "success")
    return redirect(url_for("members.index", status="invited"))


def _invitation_row(inv):
    return listing.row_from_invitation(inv)


@bp.post("/members/invitations/<invitation_id>/resend")
@login_required
@require("members:invite")
def resend(invitation_id):
    """Send an open invitation again with a new link (the old one stops working) valid 7 more days."""
    inv = _invitation_or_404(invitation_id)
    try:
        token = invitations.resend(inv, g.membership, g.org)
    except UserError as e:
        db.session.rollback()
        if is_htmx():
            return render_row(_invitation_row(inv), status=422, error=e.message)
        flash(e.message, "error")
        return redirect(back()), 303
    invitations.queue_mails([(inv, token)], g.org, current_user.name)
    db.session.commit()
    note = f"Sent again to {inv.email}."
    if is_htmx():
        return render_row(_invitation_row(inv), status=200, note=note, error=None)
    flash(note, "success")
    return redirect(back())


@bp.post("/members/invitations/<invitation_id>/revoke")
@login_required
@require("members:invite")
def revoke(invitation_id):
    """Revoke an open invitation: its link stops working and its seat is freed."""
    inv = _invitation_or_404(invitation_id)
    row_before = _invitation_row(inv)
    try:
        invitations.revoke(inv, g.membership)
    except UserError as e:
        db.session.rollback()
        if is_htmx():
            return render_row(_invitation_row(inv), status=422, error=e.message)
        flash(e.message, "error")
        return redirect(back()), 303
    db.session.commit()
    if is_htmx():
        return render_row(row_before, removed=f"The invitation to {inv.email} was revoked.")
    flash(f"The invitation to {inv.email} was revoked.", "success")
    return redirect(back())


# --------------------------------------------------------------------------- accepting
_GONE = {
    "unknown": (
        "This invitation link is not valid",
        "Check that you copied the whole link from the e-mail, or ask for a new invitation.",
    ),
    "expired": (
        "This invitation has expired",
        "Invitations are valid for 7 days. Ask whoever invited you to send it again.",
    ),
    "revoked": (
        "This invitation was withdrawn",
        "It was revoked by an administrator of the organization. Ask them if you think this is a mistake.",
    ),
    "used": (
        "This invitation was already used",
        "Each invitation link works once. If you accepted it, log in to reach the organization.",
    ),
}


def _gone(reason: str):
    title, message = _GONE[reason]
    return render_template("members/accept_gone.html", title=title, message=message, reason=reason), 410


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@public(outsiders_on_org_host=True)
def accept(token):
    """Accept an invitation (the link in the mail, on the organization's host).

    * signed in here with the invited e-mail: joins at once;
    * signed in here as someone else: told so clearly (nothing happens);
    * not signed in here, and an account has the e-mail: "Log in to accept"
      (the apex log-in, which hands the sign-in back to this link);
    * nobody has the e-mail yet: a small sign-up (name and password; the
      e-mail is verified by the token), then joins and is signed in.
    Unknown, expired, revoked or used links: 410 with a page saying which.
    """
    if g.get("org") is None:
        abort(404)
    try:
        inv = invitations.usable_invitation(token)
    except invitations.InvitationUnusable as e:
        if e.reason == "used" and current_user.is_authenticated and g.membership is not None:
            return redirect(url_for("orgs.dashboard"))
        return _gone(e.reason)
    login_link = hosts.apex_url(url_for("auth.login", next=request.url))
    ctx = {"inv": inv, "org": g.org, "login_link": login_link}
    if current_user.is_authenticated:
        if not invitations.email_matches(inv, current_user):
            return render_template("members/accept.html", mode="other_user", **ctx), 403
        try:
            invitations.accept(inv, current_user)
        except invitations.InvitationUnusable as e:
            db.session.rollback()
            return _gone(e.reason)
        except UserError as e:
            db.session.rollback()
            return render_template("members/accept.html", mode="refused", error=e.message, **ctx), e.status
        db.session.commit()
        flash(f"Welcome to {g.org.name}. You joined as {inv.role_name}.", "success")
        return redirect(url_for("orgs.dashboard"))
    if find_user(inv.email) is not None:
        return render_template("members/accept.html", mode="log_in", **ctx)
    form = AcceptSignUpForm()
    if request.method == "GET":
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx)
    if not form.validate():
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx), 422
    try:
        user = invitations.create_invited_account(inv, form.name.data, form.password.data)
        log_in(user)  # this host's cookie, a new server-side session, audited
        invitations.accept(inv, user)
    except invitations.InvitationUnusable as e:
        db.session.rollback()
        return _gone(e.reason)
    except UserError as e:
        db.session.rollback()
        form = with_error(form, e, fallback="password")
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx), e.status
    db.session.commit()
    flash(f"Welcome to {g.org.name}. Your account is ready and you joined as {inv.role_name}.", "success")
    return redirect(url_for("orgs.dashboard"))

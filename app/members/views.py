"""Members: the list (search, filters, sort, keyset pages, bulk actions),
a member's page, inline role changes, invitations and accepting them.

Views are thin: parse the request, call ``app.members.services`` (or the
listing queries), commit, then render or redirect. With ``HX-Request`` the
list answers with its table fragment and a row action with its row; without
JavaScript every control is a plain form or link and the same routes answer
with full pages or redirects. Another organization's member or invitation id
is a 404, as is a malformed one.
"""

from __future__ import annotations

import itertools
import logging

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from app import audit
from app.auth import services as auth_services
from app.errors import UserError
from app.extensions import db
from app.members import listing, services
from app.members.forms import AcceptSignUpForm, InviteForm
from app.rbac import services as rbac
from app.rbac.decorators import public, require, require_all, require_any
from app.tenancy import hosts
from app.tenancy.scoping import current_org_id, tenant_context
from app.web import nav
from app.web.downloads import csv_chunks, download
from app.web.forms import with_error
from app.web.htmx import is_htmx, render

log = logging.getLogger("tenantry.members")

bp = Blueprint("members", __name__)
nav.link(bp, "index", "Members", section="admin", order=10)
nav.entity_page(bp, ("member", "user"), "show", lambda user_id: {"user_id": user_id})
nav.entity_page(bp, "invitation", "index", lambda _id: {"status": "invited"})
nav.dashboard_figure(bp, "Members", services.dashboard_figure, order=10)


# --------------------------------------------------------------------------- helpers
def _back(default_endpoint: str = "members.index") -> str:
    """Where a no-JavaScript form goes back to: a local ``next`` or the list."""
    return hosts.safe_next(request.values.get("next"), default=url_for(default_endpoint))


def _roles():
    roles = rbac.all_roles()
    return roles, {r.key: r for r in roles}


def _choices_and_touchable() -> tuple[list[tuple[str, str]], set[str]]:
    """The roles the actor may give (for role selects; none without
    ``members:update_role``) and the role keys of members the actor may act
    on at all: roles within the actor's own permissions, Owner only for
    Owners. Controls for anyone else are hidden; the services refuse anyway."""
    allowed = rbac.role_choices(g.membership)
    return (allowed if "members:update_role" in g.permissions else []), {k for k, _ in allowed}


def _row_urls() -> dict:
    """Each row action's URL with ``__id__`` for the id: built once per page,
    not 12 ``url_for`` calls for each of 50 rows (a third of the render time)."""
    urls = {
        name: url_for(f"members.{name}", user_id="__id__")
        for name in ("update", "show", "row", "deactivate", "reactivate", "delete")
    }
    urls.update({name: url_for(f"members.{name}", invitation_id="__id__") for name in ("resend", "revoke")})
    return urls


def _row_context(**extra) -> dict:
    roles, by_key = _roles()
    choices, touchable = _choices_and_touchable()
    return {
        "roles": roles,
        "role_by_key": by_key,
        "choices": choices,
        "choice_keys": {k for k, _ in choices},
        "touchable": touchable,
        "me": g.membership.user_id,
        "back": _back(),
        "urls": _row_urls(),
        **extra,
    }


def _render_row(row: listing.Row, status: int = 200, **extra):
    return render("members/_row.html", None, status=status, **_row_context(row=row, **extra))


def _member_or_404(user_id):
    m = services.get_membership(user_id)
    if m is None:
        abort(404)
    return m


def _invitation_or_404(invitation_id):
    inv = services.get_invitation(invitation_id)
    if inv is None:
        abort(404)
    return inv


def _list_context(f: listing.Filters, page: listing.Page | None, **extra) -> dict:
    roles, by_key = _roles()
    choices, touchable = _choices_and_touchable()
    actions = [(k, label) for k, (perm, label, _p, _a) in services.BULK_ACTIONS.items() if perm in g.permissions]
    return {
        "f": f,
        "page": page,
        "roles": roles,
        "role_by_key": by_key,
        "choices": choices,
        "choice_keys": {k for k, _ in choices},
        "touchable": touchable,
        "bulk_actions": actions,
        "me": g.membership.user_id,
        "seats": services.seats(g.org),
        "hx": is_htmx(),
        "statuses": listing.STATUSES,
        "urls": _row_urls(),
        "sort_labels": listing.SORT_LABELS,
        "back": request.full_path.rstrip("?") if request.method == "GET" else url_for("members.index", **f.params()),
        **extra,
    }


def _list_page(f: listing.Filters, status: int = 200, **extra):
    """Render the list for ``f`` (full page, or the table fragment for HTMX)."""
    page, error = None, extra.pop("list_error", None)
    if not f.errors and error is None:
        try:
            f = listing.prepare(f)
            page = listing.page(
                f,
                after=request.args.get("after"),
                before=request.args.get("before"),
                last=request.args.get("last") == "1",
            )
            if page.is_first and page.is_last:
                page.total, page.total_capped = len(page.rows), False  # everything is on this page
            else:
                page.total, page.total_capped = listing.count(f, cap=listing.COUNT_CAP)
        except listing.BadListRequest as e:
            error, status = str(e), 422
    if f.errors:
        status = 422
    ctx = _list_context(f, page, list_error=error, **extra)
    return render("members/index.html", "members/_table.html", status=status, **ctx)


# --------------------------------------------------------------------------- the list
@bp.get("/members")
@login_required
@require("members:view")
def index():
    """Members and pending invitations: live search by name or e-mail, filters
    by role and status, sort by name, e-mail, joined or last seen, keyset
    pages. Every filter is in the URL; HTMX gets ``_table.html`` only.
    Unknown filter values answer 422 with the reason beside the control."""
    roles, by_key = _roles()
    f = listing.parse_filters(request.args, set(by_key))
    return _list_page(f)


@bp.get("/members/export.csv")
@login_required
@require_all("members:view", "data:export")
def export():
    """The member list (with the current filters) as CSV, streamed row by row
    in keyset batches, so 50,000 members never sit in memory. Audited as
    ``data.exported`` before the first byte leaves."""
    roles, by_key = _roles()
    f = listing.parse_filters(request.args, set(by_key))
    if f.errors:
        return _list_page(f)
    audit.record("data.exported", target=g.org, metadata={"dataset": "members", "filters": f.params(), "format": "csv"})
    db.session.commit()
    org_id = current_org_id()
    names = {k: r.name for k, r in by_key.items()}

    def rows():
        # One row a chunk: each leaves as soon as it is read.
        with tenant_context(org_id):
            for row in listing.iterate(listing.prepare(f)):
                yield [
                    [
                        row.name,
                        row.email,
                        names.get(row.role_key, "Custom role"),
                        row.status,
                        row.created_at.isoformat(),
                        row.last_seen_at.isoformat() if row.last_seen_at else "",
                    ]
                ]

    header = ["name", "email", "role", "status", "joined_at", "last_seen_at"]
    return download(stream_with_context(csv_chunks(header, rows())), f"{g.org.slug}-members.csv")


@bp.post("/members/bulk")
@login_required
@require_any("members:update_role", "members:remove", "members:invite")
def bulk():
    """Apply one action to the selected rows, or to every row matching the
    filter ("select all matching": the filter is sent and run again here).
    Each row is re-checked against the organization and the guardrails, and
    changed with its own audit event; the answer is a summary re-rendering
    the table, never all-or-nothing. The action's own permission is needed
    (403 otherwise); a bad selection or role is 422."""
    roles, by_key = _roles()
    f = listing.parse_filters(request.form, set(by_key))
    action = request.form.get("action", "")
    if action in services.BULK_ACTIONS and services.BULK_ACTIONS[action][0] not in g.permissions:
        g.denied_permissions = (services.BULK_ACTIONS[action][0],)
        abort(403)
    if f.errors:
        return _list_page(f)
    try:
        if request.form.get("all_matching") == "1":
            keys = [
                (r.kind, r.id) for r in itertools.islice(listing.iterate(listing.prepare(f)), services.BULK_LIMIT + 1)
            ]
        else:
            keys = services.parse_row_keys(request.form.getlist("ids"))
        result = services.bulk(action, keys, g.membership, g.org, new_role=request.form.get("new_role"))
    except UserError as e:
        db.session.rollback()
        return _list_page(f, status=422, bulk_error=e.message)
    db.session.commit()
    if result.mails:
        result.mail_failures = services.deliver(result.mails, g.org, current_user.name)
        db.session.commit()
    summary = result.summary()
    if is_htmx():
        return _list_page(f, bulk_summary=summary, bulk_ok=result.ok)
    flash(summary, "success" if result.ok else "warning")
    return redirect(url_for("members.index", **f.params()))


# --------------------------------------------------------------------------- one member
def _show_page(m, status: int = 200, error: str | None = None):
    sessions = (
        auth_services.active_sessions(m.user)
        if "members:remove" in g.permissions or m.user_id == g.membership.user_id
        else []
    )
    reached = services.sessions_reaching(m.user, hosts.org_host(g.org)) if sessions else set()
    events = services.recent_events(m) if "audit:view" in g.permissions else []
    ctx = _row_context(
        membership=m,
        row=listing.row_from_membership(m),
        sessions=sessions,
        reached=reached,
        events=events,
        error=error,
        current_session_id=getattr(g.get("user_session"), "id", None),
    )
    return render_template("members/show.html", **ctx), status


@bp.get("/members/<user_id>")
@login_required
@require("members:view")
def show(user_id):
    """A member's page: profile, role (changeable inline), "why can they",
    their active sessions (revocable with ``members:remove``) and their
    recent audit events (with ``audit:view``)."""
    return _show_page(_member_or_404(user_id))


@bp.get("/members/<user_id>/row")
@login_required
@require("members:view")
def row(user_id):
    """One member's table row (HTMX "cancel" of an inline change); the member's page without HTMX."""
    m = _member_or_404(user_id)
    if not is_htmx():
        return redirect(url_for("members.show", user_id=m.user_id))
    return _render_row(listing.row_from_membership(m))


def _refused(m, message: str):
    """A refused change: the row with the reason (HTMX) or the member's page (422)."""
    db.session.rollback()
    if is_htmx():
        return _render_row(listing.row_from_membership(m), status=422, error=message)
    return _show_page(m, status=422, error=message)


@bp.post("/members/<user_id>/role")
@login_required
@require("members:update_role")
def update(user_id):
    """Change a member's role (the row's select saves on change). A demotion
    (the new role lacks a permission the member holds) asks first: the row
    (or a page, without JavaScript) shows what they lose, and the change
    happens only with ``confirm=1``. Guardrails come from rbac; a refusal
    shows in the row with 422."""
    m = _member_or_404(user_id)
    new_role = request.form.get("role", "")
    target_role = rbac.get_role(new_role)
    if target_role is None:
        return _refused(m, "Choose one of this organization's roles.")
    if request.form.get("confirm") != "1" and services.is_demotion(m, new_role):
        lost = sorted(rbac.role_of(m).permissions - target_role.permissions)
        ctx = {"confirm_role": target_role, "lost": lost}
        if is_htmx():
            return _render_row(listing.row_from_membership(m), **ctx)
        return render_template("members/confirm_role.html", **_row_context(membership=m, **ctx))
    try:
        changed = rbac.change_role(m, new_role, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    note = f"Role changed to {target_role.name}." if changed else "No change."
    if is_htmx():
        return _render_row(listing.row_from_membership(m), note=note)
    flash(f"{m.user.name}: {note}", "success")
    return redirect(_back())


@bp.post("/members/<user_id>/deactivate")
@login_required
@require("members:remove")
def deactivate(user_id):
    """Deactivate a member (they lose access; nothing is deleted). Not yourself,
    not the last Owner, not someone more powerful than you."""
    m = _member_or_404(user_id)
    try:
        services.deactivate(m, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return _render_row(listing.row_from_membership(m), note="Deactivated.")
    flash(f"{m.user.name} was deactivated.", "success")
    return redirect(_back())


@bp.post("/members/<user_id>/reactivate")
@login_required
@require("members:remove")
def reactivate(user_id):
    """Reactivate a deactivated member, if the plan has a seat for them."""
    m = _member_or_404(user_id)
    try:
        services.reactivate(m, g.membership, g.org)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return _render_row(listing.row_from_membership(m), note="Reactivated.")
    flash(f"{m.user.name} was reactivated.", "success")
    return redirect(_back())


@bp.post("/members/<user_id>/delete")
@login_required
@require("members:remove")
def delete(user_id):
    """Remove a member from the organization (their account remains). Same
    guardrails as deactivating; the row is replaced by a notice."""
    m = _member_or_404(user_id)
    name = m.user.name
    row_before = listing.row_from_membership(m)
    try:
        services.remove(m, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return _render_row(row_before, removed=f"{name} was removed from {g.org.name}.")
    flash(f"{name} was removed from {g.org.name}.", "success")
    back = _back()
    return redirect(
        url_for("members.index") if back.startswith(url_for("members.show", user_id=row_before.id)) else back
    )


@bp.post("/members/<user_id>/sessions/<session_id>/revoke")
@login_required
@require("members:remove")
def revoke_session(user_id, session_id):
    """Sign a member out of one session (everywhere that sign-in reached). Audited."""
    m = _member_or_404(user_id)
    try:
        services.revoke_session(m, session_id, g.membership)
    except LookupError:
        abort(404)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    flash("The session was signed out.", "success")
    return redirect(url_for("members.show", user_id=m.user_id))


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
    return render_template("members/new.html", form=form, seats=services.seats(g.org))


@bp.post("/members/invite")
@login_required
@require("members:invite")
def create():
    """Invite everyone listed. Malformed addresses, a role the inviter may not
    give, or more people than the plan has seats for: 422, nothing sent.
    Members and people already invited are skipped and named. Mail leaves
    after the commit; an address that could not be mailed is reported (Resend
    retries)."""
    form = _invite_form()
    if not form.validate():
        return render_template("members/new.html", form=form, seats=services.seats(g.org)), 422
    try:
        outcome = services.invite(form.emails.data, form.role.data, g.membership, g.org)
    except UserError as e:
        db.session.rollback()
        form = with_error(form, e, fallback="emails")
        return render_template("members/new.html", form=form, seats=services.seats(g.org)), e.status
    if not outcome.invited:
        db.session.rollback()
        form.emails.errors.append("Nobody was invited: " + "; ".join(f"{e} {why}" for e, why in outcome.skipped) + ".")
        return render_template("members/new.html", form=form, seats=services.seats(g.org)), 422
    db.session.commit()
    failed = services.deliver(outcome.invited, g.org, current_user.name)
    db.session.commit()
    sent = [inv.email for inv, _ in outcome.invited if inv.email not in failed]
    if sent:
        flash(f"Invited {', '.join(sent)}.", "success")
    for email, why in outcome.skipped:
        flash(f"{email} {why}.", "info")
    if failed:
        flash(f"The invitation could not be mailed to {', '.join(failed)}. Use Resend to try again.", "error")
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
        token = services.resend(inv, g.membership, g.org)
    except UserError as e:
        db.session.rollback()
        if is_htmx():
            return _render_row(_invitation_row(inv), status=422, error=e.message)
        flash(e.message, "error")
        return redirect(_back()), 303
    db.session.commit()
    failed = services.deliver([(inv, token)], g.org, current_user.name)
    db.session.commit()
    note = f"Could not mail {inv.email}; try again." if failed else f"Sent again to {inv.email}."
    if is_htmx():
        return _render_row(_invitation_row(inv), status=200, note=note, error=None)
    flash(note, "error" if failed else "success")
    return redirect(_back())


@bp.post("/members/invitations/<invitation_id>/revoke")
@login_required
@require("members:invite")
def revoke(invitation_id):
    """Revoke an open invitation: its link stops working and its seat is freed."""
    inv = _invitation_or_404(invitation_id)
    row_before = _invitation_row(inv)
    try:
        services.revoke(inv, g.membership)
    except UserError as e:
        db.session.rollback()
        if is_htmx():
            return _render_row(_invitation_row(inv), status=422, error=e.message)
        flash(e.message, "error")
        return redirect(_back()), 303
    db.session.commit()
    if is_htmx():
        return _render_row(row_before, removed=f"The invitation to {inv.email} was revoked.")
    flash(f"The invitation to {inv.email} was revoked.", "success")
    return redirect(_back())


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
        inv = services.usable_invitation(token)
    except services.InvitationUnusable as e:
        if e.reason == "used" and current_user.is_authenticated and g.membership is not None:
            return redirect(url_for("orgs.dashboard"))
        return _gone(e.reason)
    login_link = hosts.apex_url(url_for("auth.login", next=request.url))
    ctx = {"inv": inv, "org": g.org, "login_link": login_link}
    if current_user.is_authenticated:
        if not services.email_matches(inv, current_user):
            return render_template("members/accept.html", mode="other_user", **ctx), 403
        try:
            services.accept(inv, current_user)
        except services.InvitationUnusable as e:
            db.session.rollback()
            return _gone(e.reason)
        except UserError as e:
            db.session.rollback()
            return render_template("members/accept.html", mode="refused", error=e.message, **ctx), e.status
        db.session.commit()
        flash(f"Welcome to {g.org.name}. You joined as {inv.role_name}.", "success")
        return redirect(url_for("orgs.dashboard"))
    from app.auth.services import find_user

    if find_user(inv.email) is not None:
        return render_template("members/accept.html", mode="log_in", **ctx)
    form = AcceptSignUpForm()
    if request.method == "GET":
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx)
    if not form.validate():
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx), 422
    from app.auth.services import log_in

    try:
        user = services.create_invited_account(inv, form.name.data, form.password.data)
        log_in(user)  # this host's cookie, a new server-side session, audited
        services.accept(inv, user)
    except services.InvitationUnusable as e:
        db.session.rollback()
        return _gone(e.reason)
    except UserError as e:
        db.session.rollback()
        form = with_error(form, e, fallback="password")
        return render_template("members/accept.html", mode="sign_up", form=form, **ctx), e.status
    db.session.commit()
    flash(f"Welcome to {g.org.name}. Your account is ready and you joined as {inv.role_name}.", "success")
    return redirect(url_for("orgs.dashboard"))

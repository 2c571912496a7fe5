"""Members: the list (search, filters, sort, keyset pages, CSV, bulk actions),
a member's page, inline role changes, deactivating, removing, signing out.

Views are thin: parse the request, call the members services
(``memberships``, ``sessions``, ``bulk``) or the listing queries, commit,
then render or redirect. With ``HX-Request`` the list answers with its table
fragment and a row action with its row; without JavaScript every control is a
plain form or link and the same routes answer with full pages or redirects.
Another organization's member id is a 404, as is a malformed one.
Invitations have their own module, ``invitation_views``, on the same blueprint.
"""

from __future__ import annotations

import itertools

from flask import abort, flash, g, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from app import audit
from app.auth import factors
from app.errors import UserError
from app.extensions import db
from app.members import bulk as bulk_actions
from app.members import (
    invitation_views,  # noqa: F401  (its routes hang on bp)
    invitations,
    listing,
    memberships,
    sessions,
    two_factor,
)
from app.members.blueprint import (
    back,
    bp,
    choices_and_touchable,
    render_row,
    role_badges,
    role_options,
    roles_and_keys,
    row_context,
    row_permissions,
    row_urls,
    rows_html,
)
from app.rbac import services as rbac
from app.rbac.decorators import require, require_all, require_any
from app.rbac.forms import ConfirmForm
from app.scoping import current_org_id, tenant_context
from app.web import hosts
from app.web.access import login_only
from app.web.downloads import csv_chunks, download
from app.web.htmx import is_htmx, render


def _member_or_404(user_id):
    m = memberships.get_membership(user_id)
    if m is None:
        abort(404)
    return m


def _list_context(f: listing.Filters, page: listing.Page | None, seats=None, **extra) -> dict:
    roles, by_key = roles_and_keys()
    choices, touchable = choices_and_touchable()
    actions = [(k, label) for k, (perm, label, _p, _a) in bulk_actions.BULK_ACTIONS.items() if perm in g.permissions]
    return {
        "f": f,
        "page": page,
        "roles": roles,
        "role_by_key": by_key,
        "choices": choices,
        "choice_keys": {k for k, _ in choices},
        "role_options": role_options(choices),
        "role_badges": role_badges(by_key),
        "touchable": touchable,
        "bulk_actions": actions,
        "me": g.membership.user_id,
        "seats": seats if seats is not None else memberships.seats(g.org),
        "hx": is_htmx(),
        "statuses": listing.STATUSES,
        "urls": row_urls(),
        **row_permissions(),
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
        except listing.BadListRequest as e:
            error, status = str(e), 422
    if f.errors:
        status = 422
    # The seats and the matching rows' count in one statement (one round trip).
    columns = [memberships.seats_used_column()] if memberships.seats_counted(g.org) else []
    counting = page is not None and not (page.is_first and page.is_last)
    if counting:
        columns += listing.count_columns(f, cap=listing.COUNT_CAP)
    values = list(db.session.execute(select(*columns)).one()) if columns else []
    seats = memberships.seats_from(g.org, values.pop(0) if memberships.seats_counted(g.org) else None)
    if counting:
        page.total, page.total_capped = listing.totals(values, cap=listing.COUNT_CAP)
    elif page is not None:
        page.total, page.total_capped = len(page.rows), False  # everything is on this page
    ctx = _list_context(f, page, list_error=error, seats=seats, **extra)
    ctx["rows_html"] = rows_html(page.rows, ctx) if page is not None else Markup("")
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
    roles, by_key = roles_and_keys()
    f = listing.parse_filters(request.args, set(by_key))
    return _list_page(f)


@bp.get("/members/export.csv")
@login_required
@require_all("members:view", "data:export")
def export():
    """The member list (with the current filters) as CSV, streamed row by row
    in keyset batches, so 50,000 members never sit in memory. Audited as
    ``data.exported`` before the first byte leaves."""
    roles, by_key = roles_and_keys()
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


def _selected_keys(f: listing.Filters) -> list:
    """The selection of a bulk form: the checked rows, or with ``all_matching``
    every row matching the filter (run again here, up to ``BULK_LIMIT + 1``)."""
    if request.form.get("all_matching") == "1":
        return [
            (r.kind, r.id) for r in itertools.islice(listing.iterate(listing.prepare(f)), bulk_actions.BULK_LIMIT + 1)
        ]
    return bulk_actions.parse_row_keys(request.form.getlist("ids"))


def _bulk_confirm_page(f: listing.Filters, status: int = 200, **ctx):
    """The confirmation step: the panel under the bulk bar (HTMX) or a page."""
    ctx = {
        "f": f,
        "action": request.form.get("action", ""),
        "new_role": request.form.get("new_role", ""),
        "all_matching": request.form.get("all_matching") == "1",
        "ids": request.form.getlist("ids"),
        "hx": is_htmx(),
        **ctx,
    }
    return render("members/bulk_confirm.html", "members/_bulk_confirm.html", status=status, **ctx)


@bp.post("/members/bulk")
@login_required
@require_any("members:update_role", "members:remove", "members:invite", "settings:security")
def bulk():
    """Apply one action to the selected rows, or to every row matching the
    filter ("select all matching": the filter is sent and run again here).

    Two steps. Without ``confirm=1`` nothing changes: the answer says what
    will happen (how many rows, for a role change the permissions each group
    gains and loses) with a form to confirm. With it, each row is re-checked
    against the organization and the guardrails and changed with its own
    audit event; the answer re-renders the table with who changed and who did
    not, and why — never all-or-nothing. The action's own permission is
    needed (403 otherwise); a bad selection or role is 422, nothing changed."""
    roles, by_key = roles_and_keys()
    f = listing.parse_filters(request.form, set(by_key))
    action = request.form.get("action", "")
    if action in bulk_actions.BULK_ACTIONS and bulk_actions.BULK_ACTIONS[action][0] not in g.permissions:
        g.denied_permissions = (bulk_actions.BULK_ACTIONS[action][0],)
        abort(403)
    confirmed = request.form.get("confirm") == "1"
    if f.errors:
        resp = _list_page(f)
        if is_htmx():
            resp.headers["HX-Retarget"] = "#members-results"
        return resp
    try:
        keys = _selected_keys(f)
        if not confirmed:
            p = bulk_actions.preview(action, keys, g.membership, new_role=request.form.get("new_role"))
            db.session.rollback()
            return _bulk_confirm_page(f, preview=p)
        result = bulk_actions.bulk(action, keys, g.membership, g.org, new_role=request.form.get("new_role"))
    except UserError as e:
        db.session.rollback()
        if not confirmed and is_htmx():
            return _bulk_confirm_page(f, status=422, error=e.message)
        return _list_page(f, status=422, bulk_error=e.message)
    invitations.queue_mails(result.mails, g.org, current_user.name)
    db.session.commit()
    # The table again with the outcome of every row (without JavaScript too:
    # a result page, since a flash message cannot hold who changed and why).
    return _list_page(f, bulk_summary=result.summary(), bulk_ok=result.ok, bulk_result=result)


# --------------------------------------------------------------------------- one member
def _show_page(m, status: int = 200, error: str | None = None):
    live = (
        sessions.sessions_here(m.user) if "members:remove" in g.permissions or m.user_id == g.membership.user_id else []
    )
    events = memberships.recent_events(m) if "audit:view" in g.permissions else []
    ctx = row_context(
        membership=m,
        row=listing.row_from_membership(m),
        sessions=live,
        events=events,
        error=error,
        current_session_id=getattr(g.get("user_session"), "id", None),
        # Only for those who may remind (one statement, on this page only).
        has_two_factor=factors.has_second_factor(m.user) if "settings:security" in g.permissions else None,
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
    return render_row(listing.row_from_membership(m))


def _refused(m, message: str):
    """A refused change: the row with the reason (HTMX) or the member's page (422)."""
    db.session.rollback()
    if is_htmx():
        return render_row(listing.row_from_membership(m), status=422, error=message)
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
    if request.form.get("confirm") != "1" and memberships.is_demotion(m, new_role):
        lost = sorted(rbac.role_of(m).permissions - target_role.permissions)
        ctx = {"confirm_role": target_role, "lost": lost}
        if is_htmx():
            return render_row(listing.row_from_membership(m), **ctx)
        return render_template("members/confirm_role.html", **row_context(membership=m, **ctx))
    try:
        changed = rbac.change_role(m, new_role, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    note = f"Role changed to {target_role.name}." if changed else "No change."
    if is_htmx():
        return render_row(listing.row_from_membership(m), note=note)
    flash(f"{m.user.name}: {note}", "success")
    return redirect(back())


@bp.post("/members/<user_id>/deactivate")
@login_required
@require("members:remove")
def deactivate(user_id):
    """Deactivate a member (they lose access; nothing is deleted). Not yourself,
    not the last Owner, not someone more powerful than you."""
    m = _member_or_404(user_id)
    try:
        memberships.deactivate(m, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return render_row(listing.row_from_membership(m), note="Deactivated.")
    flash(f"{m.user.name} was deactivated.", "success")
    return redirect(back())


@bp.post("/members/<user_id>/reactivate")
@login_required
@require("members:remove")
def reactivate(user_id):
    """Reactivate a deactivated member, if the plan has a seat for them."""
    m = _member_or_404(user_id)
    try:
        memberships.reactivate(m, g.membership, g.org)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return render_row(listing.row_from_membership(m), note="Reactivated.")
    flash(f"{m.user.name} was reactivated.", "success")
    return redirect(back())


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
        memberships.remove(m, g.membership)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    if is_htmx():
        return render_row(row_before, removed=f"{name} was removed from {g.org.name}.")
    flash(f"{name} was removed from {g.org.name}.", "success")
    to = back()
    return redirect(url_for("members.index") if to.startswith(url_for("members.show", user_id=row_before.id)) else to)


@bp.post("/members/<user_id>/sessions/<session_id>/revoke")
@login_required
@require("members:remove")
def revoke_session(user_id, session_id):
    """Sign a member out of one session that reached this organization
    (everywhere that sign-in reached); a session that did not is 404.
    Audited here and in the platform's log."""
    m = _member_or_404(user_id)
    try:
        sessions.revoke_session(m, session_id, g.membership)
    except LookupError:
        abort(404)
    except UserError as e:
        return _refused(m, e.message)
    db.session.commit()
    flash("The session was signed out.", "success")
    return redirect(url_for("members.show", user_id=m.user_id))


@bp.post("/members/<user_id>/remind-2fa")
@login_required
@require("settings:security")
def remind_two_factor(user_id):
    """E-mail a member a reminder to set up two-factor authentication (as a
    job; audited). A member who has a second factor gets nothing; a
    deactivated one, or one reminded in the last day, is refused (422)."""
    m = _member_or_404(user_id)
    try:
        sent = two_factor.remind(m, g.membership, g.org)
    except UserError as e:
        return _refused(m, f"{m.user.name} {e.message}." if e.message[0].islower() else e.message)
    db.session.commit()
    if sent:
        flash(f"We e-mailed {m.user.name} a reminder to set up two-factor authentication.", "success")
    else:
        flash(f"{m.user.name} already uses two-factor authentication.", "info")
    return redirect(url_for("members.show", user_id=m.user_id))


# --------------------------------------------------------------------------- leaving
def _leave_page(form, status: int = 200, error: str | None = None):
    return render_template("members/leave.html", form=form, error=error), status


@bp.route("/members/leave", methods=["GET", "POST"])
@login_required
@login_only
def leave():
    """Leave the organization (any member, no permission needed): a page that
    says what leaving means, then a confirmed POST. The last Owner is refused
    with 422 and told to transfer ownership or delete the organization;
    nothing changes. Afterwards the member lands on their organizations on
    the apex (they can no longer open this host). On the apex, where there
    is no organization to leave, it is a 404."""
    if g.get("membership") is None:
        abort(404)
    form = ConfirmForm()
    if request.method == "GET":
        # Say so up front when leaving would be refused (the last Owner).
        try:
            rbac.check_can_remove(g.membership, g.membership)
            refusal = None
        except UserError as e:
            refusal = e.message
        db.session.rollback()  # the check locks the Owners' rows; a page view must not hold them
        return _leave_page(form, error=refusal)
    if not form.validate():
        return _leave_page(form, 422, "The form expired. Try again.")
    try:
        memberships.leave(g.membership)
    except UserError as e:
        db.session.rollback()
        return _leave_page(form, e.status, e.message)
    db.session.commit()
    return redirect(hosts.apex_url("/?pick=1&left=1"))

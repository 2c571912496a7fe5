"""Roles and permissions: the roles page, the permission editor, assignment,
"why can they?" and the ownership transfer.

Views are thin: parse the form, call ``app.rbac.services``, commit, render or
redirect. Reading needs ``roles:view``; changing roles ``roles:manage``;
assigning a role ``members:update_role``; the transfer ``org:transfer``. A role
of another organization is a 404, like any missing row.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import login_required

from app import concurrency
from app.auth.stepup import step_up
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.permissions import BY_NAME, ROLE_ORDER, groups
from app.rbac import services
from app.rbac.decorators import require, require_all, requires_feature
from app.rbac.forms import AssignForm, ConfirmForm, EditRoleForm, NewRoleForm, RoleForm, TransferForm, choice
from app.web import nav
from app.web.forms import with_error
from app.web.htmx import is_htmx, render

bp = Blueprint("rbac", __name__, url_prefix="/roles")
nav.link(bp, "index", "Roles & permissions", section="admin", order=20)
nav.entity_page(bp, "role", "show", lambda role_key: {"role_key": role_key})
nav.getting_started(
    bp,
    "roles",
    "Review roles",
    view="index",
    requires="roles:manage",
    done=services.roles_reviewed,
    hint="See what each role may do; give people the roles they need, or make a custom one.",
    order=20,
)


@bp.app_context_processor
def _rbac_template_helpers():
    # "Why can they?" (templates/rbac/_why.html) is included by other areas'
    # pages with only a membership in hand.
    return {"explain_permissions": services.explain, "permission_catalogue": BY_NAME}


def _role_or_404(role_key: str) -> services.RoleInfo:
    return services.get_role(role_key) or abort(404)


def _custom_or_404(role_key: str):
    role = services.custom_role_by_id(role_key)
    return role if role is not None else abort(404)


def _system_columns():
    return [services.get_role(k) for k in ROLE_ORDER]


def _offered_groups():
    """The catalogue as the grids show it: only permissions offered in this
    organization (features that exist and that its plan includes)."""
    return groups(only=services.offered_permissions(g.org))


def _editor_context(form: RoleForm, role=None, changes=None, checked=None):
    checked = set(form.permissions.data or ()) if checked is None else checked
    return {
        "form": form,
        "role": role,
        "groups": _offered_groups(),
        "system_roles": _system_columns(),
        "checked": checked,
        "changes": changes,
        "changed": set(changes.added + changes.removed) if changes else set(),
    }


# --------------------------------------------------------------------------- reading
@bp.get("/")
@login_required
@require("roles:view")
def index():
    """System and custom roles with how many active members hold each."""
    return render("rbac/index.html", roles=services.all_roles(), counts=services.member_counts(), form=ConfirmForm())


@bp.get("/<role_key>")
@login_required
@require("roles:view")
def show(role_key):
    """A role's permissions (beside the system roles) and the members holding it.

    Offers "add a member to this role" when the viewer may assign it.
    """
    info = _role_or_404(role_key)
    assign_form = None
    if "members:update_role" in g.permissions and info.key in dict(services.role_choices(g.membership)):
        assign_form = AssignForm(formdata=None)
    return render(
        "rbac/show.html",
        info=info,
        members=services.members_with_role(info),
        groups=_offered_groups(),
        system_roles=_system_columns(),
        assign_form=assign_form,
        form=ConfirmForm(),
    )


@bp.get("/members/<user_id>")
@login_required
@require_all("members:view", "roles:view")
def member_permissions(user_id):
    """ "Why can they?": each permission a member holds and the role that grants it."""
    membership = services.membership_of(user_id) or abort(404)
    return render("rbac/member_permissions.html", membership=membership)


# --------------------------------------------------------------------------- custom roles
@bp.get("/new")
@login_required
@require("roles:manage")
@requires_feature("custom_roles")
def new():
    """The permission editor for a new custom role (system roles beside it for comparison)."""
    return render("rbac/new.html", **_editor_context(NewRoleForm()))


@bp.post("/")
@login_required
@require("roles:manage")
@requires_feature("custom_roles")
def create():
    """Create a custom role; bad input or a refused permission → 422, nothing saved.

    A second submit of the same form (its one-time key) lands on the role
    the first one created, creating nothing.
    """
    form = NewRoleForm()
    if not form.validate():
        return render("rbac/new.html", status=422, **_editor_context(form))
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("rbac.index"))
    try:
        role = services.create_role(form.name.data, form.description.data, form.permissions.data, g.membership)
    except UserError as e:
        db.session.rollback()
        return render("rbac/new.html", status=e.status, **_editor_context(with_error(form, e)))
    concurrency.settle_submit_key(form.submit_key.data, url_for("rbac.show", role_key=role.id))
    db.session.commit()
    flash(f"Created {role.name}.", "success")
    return redirect(url_for("rbac.show", role_key=role.id))


@bp.get("/<role_key>/edit")
@login_required
@require("roles:manage")
def edit(role_key):
    """The permission editor of a custom role (system roles are not editable: 404)."""
    role = _custom_or_404(role_key)
    form = EditRoleForm(obj=role)
    return render("rbac/edit.html", "rbac/_editor.html", **_editor_context(form, role, checked=set(role.permissions)))


@bp.post("/<role_key>")
@login_required
@require("roles:manage")
def update(role_key):
    """Save a custom role and say what changed.

    With HTMX: the editor fragment, changed rows highlighted and the summary
    ("Added audit:view; removed projects:delete"). Without: a redirect to the
    editor with the summary as a message. Bad input → 422, nothing saved.
    Saved over by someone else since the editor was drawn → 409, nothing
    saved, the editor showing what the role holds now.
    """
    role = _custom_or_404(role_key)
    form = EditRoleForm()
    if not form.validate():
        return render("rbac/edit.html", "rbac/_editor.html", status=422, **_editor_context(form, role))
    try:
        changes = services.update_role(
            role,
            form.name.data,
            form.description.data or "",
            form.permissions.data,
            g.membership,
            version=form.version.data,
        )
    except StaleEdit as e:
        db.session.rollback()
        role = _custom_or_404(role_key)
        form = with_error(EditRoleForm(obj=role, formdata=None), e)
        return render(
            "rbac/edit.html",
            "rbac/_editor.html",
            status=e.status,
            **_editor_context(form, role, checked=set(role.permissions)),
        )
    except UserError as e:
        db.session.rollback()
        role = _custom_or_404(role_key)
        return render(
            "rbac/edit.html", "rbac/_editor.html", status=e.status, **_editor_context(with_error(form, e), role)
        )
    db.session.commit()
    message = f"Saved {role.name}. {changes.summary}." if changes else f"No changes to {role.name}."
    if is_htmx():
        form = EditRoleForm(obj=role, formdata=None)
        return render(
            "rbac/edit.html",
            "rbac/_editor.html",
            message=message,
            **_editor_context(form, role, changes=changes, checked=set(role.permissions)),
        )
    flash(message, "success")
    return redirect(url_for("rbac.edit", role_key=role.id))


@bp.post("/<role_key>/duplicate")
@login_required
@require("roles:manage")
@requires_feature("custom_roles")
def duplicate(role_key):
    """Start a new custom role from a system or custom role, then edit it."""
    info = _role_or_404(role_key)
    try:
        role, dropped = services.duplicate_role(info.key, g.membership)
    except UserError as e:
        db.session.rollback()
        flash(e.message, "error")
        return redirect(url_for("rbac.show", role_key=info.param))
    db.session.commit()
    note = f" Left out what your role cannot grant: {', '.join(sorted(dropped))}." if dropped else ""
    flash(f"Created {role.name} from {info.name}.{note}", "success")
    return redirect(url_for("rbac.edit", role_key=role.id))


@bp.route("/<role_key>/delete", methods=["GET", "POST"])
@login_required
@require("roles:manage")
def delete(role_key):
    """Confirm, then delete a custom role. Refused (422, nothing deleted) while
    any member holds it; the page lists them with where to reassign them."""
    role = _custom_or_404(role_key)
    info = services.get_role(str(role.id))
    form = ConfirmForm()
    holders = services.members_with_role(info, include_inactive=True)
    if request.method == "GET":
        return render("rbac/delete.html", info=info, form=form, holders=holders)
    if not form.validate():
        return render("rbac/delete.html", status=422, info=info, form=form, holders=holders)
    name = role.name
    try:
        services.delete_role(role, g.membership)
    except UserError as e:
        db.session.rollback()
        return render("rbac/delete.html", status=e.status, info=info, form=form, holders=holders, error=e.message)
    db.session.commit()
    flash(f"Deleted {name}.", "success")
    return redirect(url_for("rbac.index"))


# --------------------------------------------------------------------------- assignment
def _member_label(m) -> str:
    return f"{m.user.name} ({m.user.email}) — {m.role_name}"


@bp.get("/<role_key>/member-options")
@login_required
@require("members:update_role")
def member_options(role_key):
    """The member picker's options as you type (an HTMX fragment: a listbox's
    ``<li role="option">``): active members whose name or e-mail contains
    ``q``, not already holding the role, at most ``PICK_LIMIT``."""
    info = _role_or_404(role_key)
    q = (request.args.get("q") or "")[:100]
    matches = services.search_members(q, limit=services.PICK_LIMIT + 1, not_role=info.key)
    return render(
        "rbac/_member_options.html",
        matches=matches[: services.PICK_LIMIT],
        more=len(matches) > services.PICK_LIMIT,
        q=q,
    )


@bp.post("/<role_key>/members")
@login_required
@require("members:update_role")
def assign(role_key):
    """Give the picked member this role (every guardrail of ``change_role``
    applies: refusals answer 422 with the reason, nothing changed).

    The picker sends ``user_id``. Without JavaScript only the typed ``q``
    arrives: the page answers with the matching members to choose from (422
    beside the field when nobody matches or nothing was typed); nothing is
    assigned on a guess."""
    info = _role_or_404(role_key)
    form = AssignForm()

    def again(status=422, matches=None):
        return render(
            "rbac/show.html",
            status=status,
            info=info,
            members=services.members_with_role(info),
            groups=_offered_groups(),
            system_roles=_system_columns(),
            assign_form=form,
            matches=matches,
            form=ConfirmForm(),
        )

    if not form.validate():
        return again()
    if not form.user_id.data:
        q = (form.q.data or "").strip()
        if not q:
            form.q.errors.append("Type a name or e-mail address, then choose a member.")
            return again()
        matches = services.search_members(q, limit=services.PICK_LIMIT, not_role=info.key)
        if not matches:
            form.q.errors.append(f"No active member without this role matches “{q}”.")
            return again()
        return again(200, matches)
    target = services.membership_of(form.user_id.data)
    if target is None or target.status != "active":  # gone since the form was drawn, or not ours
        form.q.errors.append("Choose an active member of this organization.")
        return again()
    try:
        changed = services.change_role(target, info.key, g.membership)
    except UserError as e:
        db.session.rollback()
        with_error(form, e, fallback="q")
        return again(e.status)
    db.session.commit()
    if changed:
        flash(f"{target.user.name} is now {info.name}.", "success")
    else:
        flash(f"{target.user.name} already has the role {info.name}.", "info")
    return redirect(url_for("rbac.show", role_key=info.param))


# --------------------------------------------------------------------------- ownership
@bp.route("/transfer", methods=["GET", "POST"])
@login_required
@require("org:transfer")
@step_up(back="rbac.transfer")
def transfer():
    """Transfer ownership: choose a member, confirm, then they become Owner
    and you become Admin. Bad or refused input → 422, nothing changed."""
    form = TransferForm()
    form.user_id.choices = [choice("", "Choose a member…")] + [
        choice(str(m.user_id), _member_label(m)) for m in services.active_members() if m.user_id != g.membership.user_id
    ]
    if request.method == "GET":
        return render("rbac/transfer.html", form=form, step="choose")
    if not form.validate():
        return render("rbac/transfer.html", status=422, form=form, step="choose")
    target = services.membership_of(form.user_id.data)
    if target is None:
        form.user_id.errors.append("Choose a member of this organization.")
        return render("rbac/transfer.html", status=422, form=form, step="choose")
    if form.confirm.data != "yes":
        return render("rbac/transfer.html", form=form, step="confirm", target=target)
    try:
        services.transfer_ownership(target, g.membership)
    except UserError as e:
        db.session.rollback()
        return render(
            "rbac/transfer.html", status=e.status, form=with_error(form, e, fallback="user_id"), step="choose"
        )
    db.session.commit()
    flash(f"{target.user.name} is now the Owner. You are now an Admin.", "success")
    return redirect(url_for("rbac.index"))

"""The one editor of identity-provider group → role mappings, mounted by each
directory that uses them: the SSO portal (mappings for SSO sign-ins, so an
organization with SSO and no SCIM can map groups) and the SCIM settings
(mappings for SCIM). Each page lists the mappings that apply to it (its own
source and ``any``) and offers the sources it may create; the rules (never
Owner, no escalation, one mapping per group and source) are
``app.rbac.group_roles``'.

A mounting area gives an ``Editor``: which sources it lists and offers, how
to draw its page (with the editor's context) and its endpoints' URLs. Its
views call ``create`` / ``update`` / ``delete``, which answer like every
form here: a redirect back with a flash on success; 422 beside the field
(or 409 for a stale role change) with the page drawn again and nothing
written; 404 for a mapping of another organization, or one this page does
not list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import abort, flash, g, redirect
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from app import concurrency
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac import group_roles
from app.rbac import services as rbac
from app.rbac.forms import choice
from app.web.forms import CreateForm, EditForm, with_error

# The per-row role forms share one prefix (their fields are named
# ``edit-role`` and ``edit-version``); each row's select gets its own id.
EDIT_PREFIX = "edit"
SOURCE_LABELS = {"sso": "SSO sign-ins", "scim": "SCIM", "any": "SSO and SCIM"}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class GroupMappingForm(CreateForm):
    """Map a group to a role (a new mapping)."""

    group = StringField(
        "Group",
        filters=[_strip],
        description="The group's name (or id) as your identity provider sends it; case does not matter.",
    )
    role = SelectField("Role", choices=[], validate_choice=False)
    source = SelectField("For", choices=[], validate_choice=False)


class GroupMappingRoleForm(EditForm):
    """Change the role a mapped group gives (carries the mapping's version)."""

    role = SelectField("Role", choices=[], validate_choice=False)


class ConfirmForm(FlaskForm):
    """Remove: only the CSRF token."""


@dataclass
class Editor:
    """One mounting of the editor.

    ``listed``: the sources whose mappings the page shows (and may change or
    remove); ``offered``: the sources a new mapping may have, first the
    default; ``page(**editor_context)`` draws the mounting page with a
    status; ``back``: the URL to return to; ``create_url`` and
    ``update_url(m)`` / ``delete_url(m)``: the endpoints."""

    listed: tuple[str, ...]
    offered: tuple[str, ...]
    page: Callable[..., object]
    back: Callable[[], str]
    create_url: Callable[[], str]
    update_url: Callable[[object], str]
    delete_url: Callable[[object], str]

    # ------------------------------------------------------------------ drawing
    def role_choices(self):
        return [choice(k, n) for k, n in rbac.role_choices(g.membership) if k != "owner"]

    def new_form(self, from_request: bool = False) -> GroupMappingForm:
        form = GroupMappingForm() if from_request else GroupMappingForm(formdata=None)
        form.role.choices = self.role_choices()
        form.source.choices = [choice(k, SOURCE_LABELS[k]) for k in self.offered]
        if form.role.data is None:
            form.role.data = "member"
        if form.source.data is None:
            form.source.data = self.offered[0]
        return form

    def row_form(self, mapping, from_request: bool = False) -> GroupMappingRoleForm:
        if not from_request:
            form = GroupMappingRoleForm(formdata=None, prefix=EDIT_PREFIX, version=mapping.version)
            form.role.data = mapping.role_key
        else:
            form = GroupMappingRoleForm(prefix=EDIT_PREFIX)
        form.role.choices = self.role_choices()
        return form

    def context(self, form: GroupMappingForm | None = None, failed=None) -> dict:
        """What ``templates/rbac/_group_mappings.html`` draws: the listed
        mappings, each with its role form (``failed``: ``(mapping id, form)``
        of a refused change, drawn with its error), and the new-mapping form."""
        mappings = group_roles.list_mappings(self.listed)
        rows = []
        for m in mappings:
            row_form = failed[1] if failed is not None and failed[0] == m.id else self.row_form(m)
            rows.append((m, row_form))
        return {
            "group_mappings": {
                "rows": rows,
                "form": form or self.new_form(),
                "source_labels": SOURCE_LABELS,
                "create_url": self.create_url(),
                "update_url": self.update_url,
                "delete_url": self.delete_url,
                "confirm": ConfirmForm(formdata=None),
                "several_sources": len(self.offered) > 1 or len(self.listed) > 2,
            }
        }

    # ------------------------------------------------------------------ actions
    def _mapping_or_404(self, mapping_id):
        mapping = group_roles.find_mapping(mapping_id)
        if mapping is None or mapping.source not in self.listed:
            abort(404)
        return mapping

    def create(self):
        """Map a group to a role; 422 beside the field (empty or overlong
        group, already mapped, Owner, a role the admin could not give, a
        source this page does not offer), nothing saved. A second submit of
        the same form lands back without a second mapping."""
        form = self.new_form(from_request=True)
        if not form.validate():
            return self.page(**self.context(form=form), status=422)
        if form.source.data not in self.offered:
            # Beside the select when the page shows one; above the form when
            # the page offers one source only (a hidden field).
            where = "source" if len(self.offered) > 1 else None
            with_error(form, UserError("Choose what the mapping is for.", where))
            return self.page(**self.context(form=form), status=422)
        first = concurrency.claim_submit_key(form.submit_key.data)
        if first is not None:
            db.session.commit()
            return redirect(first or self.back())
        try:
            mapping = group_roles.add_mapping(form.source.data, form.group.data, form.role.data, g.membership)
        except UserError as e:
            db.session.rollback()
            return self.page(**self.context(form=with_error(form, e, "group")), status=422)
        concurrency.settle_submit_key(form.submit_key.data, self.back())
        db.session.commit()
        flash(
            f"Members of {mapping.group_name} get {mapping.role_name} from their next sign-in or group change.",
            "success",
        )
        return redirect(self.back())

    def update(self, mapping_id):
        """Change the role a mapping gives: 422 beside the row's role (Owner,
        a role the admin could not give), 409 when it changed since the page
        was drawn; nothing written either way."""
        mapping = self._mapping_or_404(mapping_id)
        form = self.row_form(mapping, from_request=True)
        if not form.validate():
            return self.page(**self.context(failed=(mapping.id, form)), status=422)
        try:
            changed = group_roles.change_mapping_role(mapping, form.role.data, g.membership, form.version.data)
        except StaleEdit as e:
            db.session.rollback()
            fresh = self._mapping_or_404(mapping_id)
            return self.page(**self.context(failed=(fresh.id, with_error(self.row_form(fresh), e))), status=e.status)
        except UserError as e:
            db.session.rollback()
            return self.page(**self.context(failed=(mapping.id, with_error(form, e, "role"))), status=e.status)
        if changed:
            db.session.commit()
            flash(
                f"Members of {mapping.group_name} get {mapping.role_name} from their next sign-in or group change.",
                "success",
            )
        return redirect(self.back())

    def delete(self, mapping_id):
        """Remove a mapping (members keep their role until their groups next change)."""
        mapping = self._mapping_or_404(mapping_id)
        if not ConfirmForm().validate():
            abort(400)
        name = mapping.group_name
        group_roles.delete_mapping(mapping)
        db.session.commit()
        flash(f"Removed the mapping of {name}.", "success")
        return redirect(self.back())

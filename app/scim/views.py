"""Settings → SCIM provisioning: the endpoint to give the identity provider,
its tokens (made here, shown once, revocable) and which SCIM groups give
which roles.

Every view needs ``settings:sso`` and the plan's ``scim`` feature (a plan
without it gets the settings section's "not on your plan" page, 403). A
token or mapping id that is malformed or another organization's is 404.
Each change is audited (``scim.token_created``, ``scim.token_revoked``,
``role.group_mapped``, ``role.group_unmapped``).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from app import concurrency
from app.errors import UserError
from app.extensions import db
from app.rbac import group_roles
from app.rbac import services as rbac
from app.rbac.decorators import require, requires_feature
from app.scim import tokens
from app.scim.models import NAME_MAX
from app.web.forms import CreateForm, with_error

bp = Blueprint("scim_settings", __name__, url_prefix="/settings/scim")
FEATURE = "scim"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class NewTokenForm(CreateForm):
    name = StringField(
        "Name",
        filters=[_strip],
        description=f"Which identity provider uses it, e.g. “Okta production” (at most {NAME_MAX} characters).",
    )


class MappingForm(CreateForm):
    group = StringField(
        "Group",
        filters=[_strip],
        description="The group's display name (or id) as your identity provider sends it; case does not matter.",
    )
    role = SelectField("Role", choices=[], validate_choice=False)
    source = SelectField(
        "For",
        choices=[("scim", "SCIM"), ("any", "SCIM and SSO sign-ins")],
        default="scim",
        validate_choice=False,
    )


class ConfirmForm(FlaskForm):
    """A bare POST with its CSRF token (revoke, remove)."""


def _unavailable() -> str:
    return render_template("settings/unavailable.html", title="SCIM provisioning", feature=FEATURE)


def _impersonated() -> bool:
    rec = g.get("user_session")
    return rec is not None and rec.impersonator_id is not None


def _role_choices():
    return [(k, n) for k, n in rbac.role_choices(g.membership) if k != "owner"]


def _page(token_form=None, mapping_form=None, status: int = 200, created=None):
    mapping_form = mapping_form or MappingForm(formdata=None)
    mapping_form.role.choices = _role_choices()
    if mapping_form.role.data is None:
        mapping_form.role.data = "member"
    return render_template(
        "scim/settings.html",
        settings_current="scim_settings.index",
        endpoint=url_for("scim.endpoint", subpath="", _external=True),
        tokens=tokens.list_tokens(),
        token_form=token_form or NewTokenForm(formdata=None),
        mappings=group_roles.list_mappings(("scim", "any")),
        mapping_form=mapping_form,
        confirm=ConfirmForm(),
        created=created,
    ), status


@bp.get("/")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def index():
    """The SCIM endpoint URL, the tokens (prefix, creator, created, last
    used, revoked) and the group → role mappings, with their forms."""
    return _page()


@bp.post("/tokens")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def create_token():
    """Create a token and show it once (201). Bad input: 422 beside the
    field, nothing saved; a second submit of the same form makes no second token."""
    form = NewTokenForm()
    if not form.validate():
        return _page(token_form=form, status=422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("scim_settings.index"))
    try:
        token, full = tokens.create_token(form.name.data, g.membership, impersonated=_impersonated())
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return _page(token_form=form, status=403 if e.status == 403 else 422)
    concurrency.settle_submit_key(form.submit_key.data, url_for("scim_settings.index"))
    db.session.commit()
    return _page(created=(token, full), status=201)


@bp.post("/tokens/<token_id>/revoke")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def revoke_token(token_id: str):
    """Revoke a token: the identity provider's next request with it is 401."""
    token = tokens.find_token(token_id) or abort(404)
    if not ConfirmForm().validate():
        abort(400)
    if tokens.revoke_token(token):
        flash(f"Revoked {token.name}: requests with it are refused from now on.", "success")
    db.session.commit()
    return redirect(url_for("scim_settings.index"))


@bp.post("/mappings")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def create_mapping():
    """Map a group to a role (never Owner; only a role the admin could give).
    Bad input: 422 beside the field, nothing saved."""
    form = MappingForm()
    form.role.choices = _role_choices()
    if not form.validate():
        return _page(mapping_form=form, status=422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("scim_settings.index"))
    try:
        mapping = group_roles.add_mapping(form.source.data, form.group.data, form.role.data, g.membership)
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return _page(mapping_form=form, status=422)
    concurrency.settle_submit_key(form.submit_key.data, url_for("scim_settings.index"))
    db.session.commit()
    flash(f"Members of {mapping.group_name} get {mapping.role_name} from their next group change.", "success")
    return redirect(url_for("scim_settings.index"))


@bp.post("/mappings/<mapping_id>/delete")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def delete_mapping(mapping_id: str):
    """Remove a mapping (members keep their role until their groups next change)."""
    mapping = group_roles.find_mapping(mapping_id) or abort(404)
    if mapping.source not in ("scim", "any"):
        abort(404)
    if not ConfirmForm().validate():
        abort(400)
    name = mapping.group_name
    group_roles.delete_mapping(mapping)
    db.session.commit()
    flash(f"Removed the mapping of {name}.", "success")
    return redirect(url_for("scim_settings.index"))

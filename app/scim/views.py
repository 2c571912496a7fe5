"""Settings → SCIM provisioning: the endpoint to give the identity provider,
its tokens (made here, shown once, revocable) and which SCIM groups give
which roles.

Every view needs ``settings:sso`` and the plan's ``scim`` feature (a plan
without it gets the settings section's "not on your plan" page, 403). A
token or mapping id that is malformed or another organization's is 404.
Each change is audited (``scim.token_created``, ``scim.token_revoked``,
``role.group_mapped``, ``role.group_mapping_changed``, ``role.group_unmapped``).
The mappings' editor is ``app.rbac.group_role_editor``, shared with the SSO portal.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import StringField

from app import concurrency
from app.errors import UserError
from app.extensions import db
from app.rbac import group_role_editor
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


class ConfirmForm(FlaskForm):
    """A bare POST with its CSRF token (revoke, remove)."""


def _unavailable() -> str:
    return render_template("settings/unavailable.html", title="SCIM provisioning", feature=FEATURE)


def _impersonated() -> bool:
    rec = g.get("user_session")
    return rec is not None and rec.impersonator_id is not None


def _editor() -> group_role_editor.Editor:
    """The group → role editor, for mappings that apply to SCIM (``scim`` and ``any``)."""
    return group_role_editor.Editor(
        listed=("scim", "any"),
        offered=("scim", "any"),
        page=lambda status=200, **ctx: _page(status=status, **ctx),
        back=lambda: url_for("scim_settings.index"),
        create_url=lambda: url_for("scim_settings.create_mapping"),
        update_url=lambda m: url_for("scim_settings.update_mapping", mapping_id=m.id),
        delete_url=lambda m: url_for("scim_settings.delete_mapping", mapping_id=m.id),
    )


def _page(token_form=None, status: int = 200, created=None, group_mappings=None):
    if group_mappings is None:
        group_mappings = _editor().context()["group_mappings"]
    return render_template(
        "scim/settings.html",
        settings_current="scim_settings.index",
        endpoint=url_for("scim.endpoint", subpath="", _external=True),
        tokens=tokens.list_tokens(),
        token_form=token_form or NewTokenForm(formdata=None),
        group_mappings=group_mappings,
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
    """Map a group to a role for SCIM (or SCIM and SSO): never Owner, only a
    role the admin could give. Bad input: 422 beside the field, nothing saved."""
    return _editor().create()


@bp.post("/mappings/<mapping_id>")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def update_mapping(mapping_id: str):
    """Change the role a mapped group gives: 422 beside it for a role the
    admin could not give, 409 on a stale page, nothing saved."""
    return _editor().update(mapping_id)


@bp.post("/mappings/<mapping_id>/delete")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, _unavailable)
def delete_mapping(mapping_id: str):
    """Remove a mapping (members keep their role until their groups next change)."""
    return _editor().delete(mapping_id)

"""Organization settings: general details and the danger zone."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_login import login_required

from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac.decorators import require, require_any
from app.settings import services
from app.settings.forms import DeleteOrganizationForm, GeneralSettingsForm
from app.tenancy import lifecycle
from app.web import hosts, nav
from app.web.forms import with_error

bp = Blueprint("settings", __name__, url_prefix="/settings")
nav.link(bp, "index", "Settings", section="admin", order=90)
nav.entity_page(bp, "organization", "index", lambda _id: {})


def _page(general=None, delete=None, status=200):
    return render_template(
        "settings/general.html",
        form=general or GeneralSettingsForm(name=g.org.name, version=g.org.version),
        delete_form=delete or DeleteOrganizationForm(),
    ), status


@bp.get("/general")
@login_required
@require_any("org:update", "org:delete")
def index():
    """General settings (name) and, for those who may, the danger zone."""
    return _page()


@bp.post("/general")
@login_required
@require("org:update")
def update():
    """Rename the organization. 422 with the error beside the field on bad input;
    409 with the current name, nothing saved, when someone else saved since
    the form was drawn."""
    form = GeneralSettingsForm()
    if not form.validate():
        return _page(general=form, status=422)
    try:
        changed = services.rename(g.org, form.name.data, version=form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        current = GeneralSettingsForm(formdata=None, name=g.org.name, version=g.org.version)
        return _page(general=with_error(current, e), status=e.status)
    except UserError as e:
        db.session.rollback()
        return _page(general=with_error(form, e), status=e.status)
    if changed:
        db.session.commit()
        flash("Settings saved.", "success")
    return redirect(url_for("settings.index"))


@bp.post("/delete")
@login_required
@require("org:delete")
def delete():
    """Soft-delete the organization after the Owner types its address.

    Members lose access at once; a super-admin can restore it for 30 days.
    """
    form = DeleteOrganizationForm()
    if not form.validate():
        return _page(delete=form, status=422)
    if form.confirm.data.strip().lower() != g.org.slug:
        form.confirm.errors.append(f"Type {g.org.slug} exactly to confirm.")
        return _page(delete=form, status=422)
    lifecycle.delete(g.org)
    db.session.commit()
    flash(f"{g.org.name} was deleted. A platform administrator can restore it within 30 days.", "info")
    return redirect(hosts.apex_url("/?pick=1"))

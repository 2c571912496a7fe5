"""Pages of the personal data area on the apex: ``/account/privacy`` (your
data: export status, export request, account deletion) and the download of
an export through its e-mailed link.

Every route needs a sign-in and lives on the apex only (the account pages'
rule). Each change is a POST with CSRF, decided in ``app.privacy.services``.
"""

from __future__ import annotations

import io

from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_login import current_user, login_required, logout_user

from app.auth import factors, sessions
from app.auth import services as auth_services
from app.auth.views import apex_only, throttled
from app.errors import UserError
from app.extensions import db
from app.privacy import services
from app.privacy.forms import DeleteAccountForm, ExportForm
from app.web.access import login_only
from app.web.forms import with_error

bp = Blueprint("privacy", __name__, url_prefix="/account/privacy")


@bp.before_request
def _apex_only():
    return apex_only()


def _page(status: int = 200, **forms):
    """The "Your data" page; a form that failed carries its errors."""
    return render_template("privacy/index.html", **_context(**forms)), status


@bp.get("")
@login_required
@login_only
def index():
    """Your data: the latest export's status, a way to ask for a new one,
    and account deletion (with the organizations that stop it, if any)."""
    return _page()


@bp.post("/export")
@login_required
@login_only
def request_export():
    """Ask for an export of your data: built by a job, its link e-mailed (409 while one is being built)."""
    form = ExportForm()
    if not form.validate():
        return _page(422, export_form=form)
    try:
        services.request_export(current_user)
    except UserError as e:
        db.session.rollback()
        return _page(e.status, export_form=with_error(form, e))
    db.session.commit()
    flash("We are preparing your export. We e-mail you a download link when it is ready.", "success")
    return redirect(url_for("privacy.index"))


@bp.get("/exports/<token>")
@login_required
@login_only
def download(token: str):
    """Download your export through its e-mailed link: only while signed in
    as its owner, within 24 hours (403/410/404 pages with the reason)."""
    try:
        export = services.open_download(token, current_user)
    except services.LinkRefused as e:
        db.session.commit()  # keep the audit record of the refusal; nothing else changed
        return render_template("privacy/refused.html", message=e.message), e.status
    archive = services.mark_downloaded(export, current_user)
    db.session.commit()
    response = send_file(
        io.BytesIO(archive),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"tenantry-personal-data-{export.ready_at:%Y-%m-%d}.zip",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/delete")
@login_required
@login_only
def delete():
    """Delete your account: the e-mail typed out, the password and a current
    second factor. Refused while you are an organization's only owner (409);
    a wrong confirmation, password or code is 422 beside its field."""
    form = DeleteAccountForm()
    if not form.validate():
        return _page(422, delete_form=form)
    try:
        services.delete_account(current_user, form.confirm.data, form.password.data, form.code.data)
    except auth_services.Throttled as e:
        db.session.rollback()
        return throttled("privacy/index.html", e, **_context(delete_form=form))
    except UserError as e:
        if e.field in ("password", "code"):
            db.session.commit()  # keep the audit record of the failed check; nothing else changed
        db.session.rollback()
        return _page(e.status, delete_form=with_error(form, e))
    sessions.end_current()
    db.session.commit()
    logout_user()
    flash("Your account was deleted. Your personal data is being erased.", "success")
    return redirect(url_for("auth.login"))


def _context(**forms) -> dict:
    """What the page draws: the latest export, the organizations that stop a deletion, the forms."""
    forms.setdefault("export_form", ExportForm(formdata=None))
    forms.setdefault("delete_form", DeleteAccountForm(formdata=None))
    return {
        "export": services.latest_export(current_user),
        "blockers": services.sole_ownerships(current_user),
        "needs_code": factors.has_second_factor(current_user),
        **forms,
    }

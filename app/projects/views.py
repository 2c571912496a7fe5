"""Projects: list, create, view, inline edit, archive, delete.

The pattern for any tenant resource. Views are thin: read the request, call
a service, commit, render or redirect. Every view declares its permission;
the organization comes from the host (never from the URL), and a project id
that is malformed or belongs to another organization is a 404 either way.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from app import concurrency
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.projects import services
from app.projects.forms import EditProjectForm, NewProjectForm, ProjectForm
from app.projects.services import ProjectQuery
from app.rbac.decorators import require
from app.web import nav
from app.web.forms import with_error
from app.web.htmx import is_htmx, render

bp = Blueprint("projects", __name__, url_prefix="/projects")
nav.link(bp, "index", "Projects", section="main", order=20)
nav.entity_page(bp, "project", "show", lambda project_id: {"project_id": project_id})
nav.dashboard_figure(bp, "Active projects", lambda org: (services.active_count_column(), None), order=20)
nav.getting_started(
    bp,
    "project",
    "Create a project",
    view="new",
    done=services.any_project,
    hint="Projects are where your team's work lives.",
    order=30,
)


def _project_or_404(project_id: str):
    """The current organization's project, or 404 (malformed, unknown and foreign ids alike)."""
    return services.find_project(project_id) or abort(404)


def _form(project=None, current: bool = False) -> ProjectForm:
    """The project form, offering this organization's members as owners.

    On GET (or with ``current``) it starts from the project as stored (edit)
    or suggests the current user as owner (new); on POST it holds what was
    submitted.
    """
    cls = NewProjectForm if project is None else EditProjectForm
    form = cls(obj=project, formdata=None) if current else cls(obj=project)
    if request.method == "GET" or current:
        owner = project.owner_id if project is not None else current_user.id
        form.owner_id.data = str(owner) if owner else ""
    return form.with_owner_choices(services.owner_choices())


def _submit(form: ProjectForm, action) -> tuple[bool, object]:
    """Validate ``form`` and call ``action(name, description, owner_id)``.

    Returns ``(ok, result)``. A ``UserError`` is rolled back and its
    message put beside its field, so the view can answer 422 with the form.
    """
    if not form.validate():
        return False, None
    try:
        return True, action(form.name.data, form.description.data, form.owner_id.data)
    except StaleEdit:
        raise  # the view answers it with the current state
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return False, None


@bp.get("/")
@login_required
@require("projects:view")
def index():
    """The organization's projects: search, status filter, sort, 30 per page.

    The filters live in the URL, so a page can be bookmarked and reloaded.
    With ``HX-Request`` (the active search) only ``#projects-table`` is sent.
    """
    query = ProjectQuery.from_args(request.args)
    page = services.list_projects(query)
    return render("projects/index.html", "projects/_table.html", page=page, query=query)


@bp.get("/new")
@login_required
@require("projects:create")
def new():
    """The empty project form; the current user is the suggested owner."""
    return render("projects/new.html", form=_form())


@bp.post("/")
@login_required
@require("projects:create")
def create():
    """Create a project; 422 with the errors beside the fields when the input is bad.

    The form's one-time key makes a second submit (a double click) land on
    the project the first one created, creating nothing.
    """
    form = _form()

    def create_once(*fields):
        first = concurrency.claim_submit_key(form.submit_key.data)
        return first if first is not None else services.create_project(*fields)

    ok, project = _submit(form, create_once)
    if not ok:
        return render("projects/new.html", form=form, status=422)
    if isinstance(project, str):  # the first submit's result
        db.session.commit()
        return redirect(project or url_for("projects.index"))
    concurrency.settle_submit_key(form.submit_key.data, url_for("projects.show", project_id=project.id))
    db.session.commit()
    flash(f"Project “{project.name}” created.", "success")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.get("/<project_id>")
@login_required
@require("projects:view")
def show(project_id: str):
    """One project. With ``HX-Request``, its details card (what inline edit swaps back)."""
    project = _project_or_404(project_id)
    return render("projects/show.html", "projects/_details.html", project=project)


@bp.get("/<project_id>/edit")
@login_required
@require("projects:update")
def edit(project_id: str):
    """The edit form: a page, or with ``HX-Request`` the form swapped in place of the details."""
    project = _project_or_404(project_id)
    return render("projects/edit.html", "projects/_form.html", form=_form(project), project=project)


@bp.post("/<project_id>")
@login_required
@require("projects:update")
def update(project_id: str):
    """Save an edit. Bad input: 422 with the form. Saved: the details card
    (HTMX, swapped ``outerHTML``) or a redirect to the project.

    Made from a version someone else has saved over since: 409, nothing
    written, the form showing what the project holds now.
    """
    project = _project_or_404(project_id)
    form = _form(project)
    try:
        ok, _changes = _submit(
            form, lambda *fields: services.update_project(project, *fields, version=form.version.data)
        )
    except StaleEdit as e:
        db.session.rollback()
        project = _project_or_404(project_id)
        form = with_error(_form(project, current=True), e)
        return render("projects/edit.html", "projects/_form.html", form=form, project=project, status=e.status)
    if not ok:
        return render("projects/edit.html", "projects/_form.html", form=form, project=project, status=422)
    db.session.commit()
    if is_htmx():
        return render("projects/show.html", "projects/_details.html", project=project, refreshed=True)
    flash("Project saved.", "success")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.post("/<project_id>/archive")
@login_required
@require("projects:update")
def archive(project_id: str):
    """Archive the project: it leaves the default list and stays intact."""
    project = _project_or_404(project_id)
    if services.archive_project(project):
        db.session.commit()
        flash(f"Project “{project.name}” archived.", "success")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.post("/<project_id>/unarchive")
@login_required
@require("projects:update")
def unarchive(project_id: str):
    """Bring an archived project back to the active list."""
    project = _project_or_404(project_id)
    if services.restore_project(project):
        db.session.commit()
        flash(f"Project “{project.name}” restored.", "success")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.route("/<project_id>/delete", methods=["GET", "POST"])
@login_required
@require("projects:delete")
def delete(project_id: str):
    """GET asks for confirmation (works without JavaScript); POST deletes for good."""
    project = _project_or_404(project_id)
    if request.method == "GET":
        return render("projects/delete.html", project=project)
    name = project.name
    services.delete_project(project)
    db.session.commit()
    flash(f"Project “{name}” deleted.", "success")
    return redirect(url_for("projects.index"))

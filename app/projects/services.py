"""Projects: the example tenant-owned resource. Copy this file for product data.

What every function here can rely on, and guarantees in turn:

* It runs inside the current organization (the host hook set it). Queries
  carry no organization filter of their own: the ORM hook adds
  ``organization_id = <current>`` to every statement and PostgreSQL RLS
  refuses anything else, so a forgotten filter is still not a leak. New rows
  get the current organization.
* A bad request raises ``UserError`` with a message for a person, naming
  the form field it belongs to; nothing has been changed when it is raised.
* Every change records one audit event, in the same transaction.
* Nothing here commits: the view commits, so a change and its audit event are
  stored together or not at all.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass, field, replace

from sqlalchemy import Integer, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import raiseload

from app import audit, hooks
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.projects.models import DESCRIPTION_MAX, NAME_MAX, Project
from app.tenancy.models import Membership
from app.util import escape_like, parse_uuid

PAGE_SIZE = 30
# Counting stops here: "1–30 of 1,000+" costs a bounded scan however large an
# organization grows (bench/page_bench.py measures it).
COUNT_CAP = 1000
MAX_SEARCH = 100

STATUS_FILTERS = ("active", "archived", "all")
SORTS = {
    # URL value -> ORDER BY; ``id`` breaks ties so that pages never overlap.
    "name": (func.lower(Project.name).asc(), Project.id.asc()),
    "-name": (func.lower(Project.name).desc(), Project.id.desc()),
    "updated": (Project.updated_at.asc(), Project.id.asc()),
    "-updated": (Project.updated_at.desc(), Project.id.desc()),
}
DEFAULT_SORT = "name"
DEFAULT_STATUS = "active"

# Fields a person edits, in the order audit diffs list them.
EDITABLE = ("name", "description", "owner_id")


def too_long(limit: int) -> str:
    """The message for a field longer than ``limit`` characters (form and service alike)."""
    return f"Use at most {limit:,} characters."


def _printable(text: str) -> str:
    """``text`` without control characters (PostgreSQL refuses NUL in text; none belongs in a name)."""
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ProjectQuery:
    """The list's filters, as they appear in the URL.

    ``from_args`` never raises: a value it does not understand falls back to
    the default, so a hand-edited URL shows a page instead of an error.
    """

    q: str = ""
    status: str = DEFAULT_STATUS
    sort: str = DEFAULT_SORT
    page: int = 1

    @classmethod
    def from_args(cls, args) -> ProjectQuery:
        q = " ".join(_printable(args.get("q") or "").split())[:MAX_SEARCH]
        status = args.get("status") if args.get("status") in STATUS_FILTERS else DEFAULT_STATUS
        sort = args.get("sort") if args.get("sort") in SORTS else DEFAULT_SORT
        try:
            page = max(1, min(int(args.get("page") or 1), 1_000_000))
        except (TypeError, ValueError):
            page = 1
        return cls(q, status, sort, page)

    def args(self, **changes) -> dict:
        """URL parameters for this query with ``changes`` applied; defaults left out."""
        new = replace(self, **changes)
        out = {}
        if new.q:
            out["q"] = new.q
        if new.status != DEFAULT_STATUS:
            out["status"] = new.status
        if new.sort != DEFAULT_SORT:
            out["sort"] = new.sort
        if new.page != 1:
            out["page"] = new.page
        return out

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or self.status != DEFAULT_STATUS


@dataclass(frozen=True)
class ListedProject:
    """A row of the list: the project and its owner's name (``None``: no owner)."""

    project: Project
    owner_name: str | None


@dataclass
class ProjectPage:
    """One page of the list, with what the pager needs."""

    query: ProjectQuery
    items: list[ListedProject] = field(default_factory=list)
    total: int = 0
    total_capped: bool = False
    has_next: bool = False

    @property
    def first(self) -> int:
        return (self.query.page - 1) * PAGE_SIZE + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def has_prev(self) -> bool:
        return self.query.page > 1

    @property
    def pages(self) -> int | None:
        """Number of pages, or ``None`` when the count was capped."""
        return None if self.total_capped else max(1, math.ceil(self.total / PAGE_SIZE))


def _filtered(stmt, status: bool, search: bool):
    if status:
        stmt = stmt.where(Project.status == bindparam("status"))
    if search:
        pattern = bindparam("pattern")
        stmt = stmt.where(
            or_(Project.name.ilike(pattern, escape="\\"), Project.description.ilike(pattern, escape="\\"))
        )
    return stmt


@functools.lru_cache(maxsize=len(SORTS) * 4)
def _list_statement(status: bool, search: bool, sort: str):
    """The list's statement for one shape of query (which filters, which
    order), built once per process; the values are bound parameters.

    One statement: the page (one row more than shown, to know whether a next
    page exists) with, as a scalar subquery, a count that stops at
    ``COUNT_CAP``, so the total costs neither a round trip nor a scan of a
    huge organization. The owner's name only is joined from users (the
    composite foreign key already guarantees the owner is a member): the
    list skips the membership/role eager loads, and raiseload makes an
    accidental per-row query an error instead of 30 silent round trips.
    """
    capped = _filtered(select(Project.id), status, search).limit(COUNT_CAP + 1).subquery()
    total = select(func.count()).select_from(capped).scalar_subquery().label("total")
    return (
        _filtered(select(Project, User.name.label("owner_name"), total), status, search)
        .outerjoin(User, User.id == Project.owner_id)
        .options(raiseload(Project.owner))
        .order_by(*SORTS[sort])
        .limit(PAGE_SIZE + 1)
        .offset(bindparam("offset", type_=Integer))
    )


def list_projects(query: ProjectQuery) -> ProjectPage:
    """One page of the current organization's projects matching ``query``,
    in one statement (see ``_list_statement``).

    Offset, not keyset, pagination: page numbers stay meaningful in a
    bookmarked URL, and measured in an organization of 20,000 projects
    (bench/page_bench.py) page 1 takes 0.4 ms, page 100 3 ms and page 600
    20 ms against 5 ms for keyset; nobody pages that deep when search exists.
    """
    status, search = query.status != "all", bool(query.q)
    params = {"offset": (query.page - 1) * PAGE_SIZE}
    if status:
        params["status"] = query.status
    if search:
        params["pattern"] = f"%{escape_like(query.q)}%"
    rows = db.session.execute(_list_statement(status, search, query.sort), params).all()
    found = rows[0].total if rows else 0
    return ProjectPage(
        query=query,
        items=[ListedProject(r.Project, r.owner_name) for r in rows[:PAGE_SIZE]],
        total=min(found, COUNT_CAP),
        total_capped=found > COUNT_CAP,
        has_next=len(rows) > PAGE_SIZE,
    )


def active_count() -> int:
    """How many active projects the organization has."""
    return db.session.execute(select(active_count_column())).scalar_one()


@functools.cache
def active_count_column():
    """``active_count()`` as a SQL expression (the dashboard selects it with its other figures).

    Built once per process: it names no organization (the ORM adds the
    current one's filter when a statement runs, ``app.scoping``), and
    building expressions is where a page's SQL time goes, not PostgreSQL."""
    return select(func.count()).select_from(Project).where(Project.status == "active").scalar_subquery()


def find_project(project_id) -> Project | None:
    """The current organization's project with this id, or ``None``.

    ``project_id`` may be anything a URL carries: a malformed id and another
    organization's id both give ``None`` (the view answers 404 to both, so
    nobody learns that an id exists elsewhere).
    """
    pid = parse_uuid(project_id)
    if pid is None:
        return None
    return db.session.execute(select(Project).where(Project.id == pid)).unique().scalar_one_or_none()


def owner_choices() -> list[tuple[str, str]]:
    """``(user id, label)`` for every active member of the current organization, by name."""
    rows = db.session.execute(
        select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.status == "active")
        .order_by(func.lower(User.name), User.email)
    ).all()
    return [(str(r.id), f"{r.name} ({r.email})") for r in rows]


def _member_id(owner_id) -> uuid.UUID:
    """``owner_id`` as a user id that is an active member of the current organization.

    The membership is looked up through the scoped ORM, so a member of another
    organization is "not a member" here, whatever the form said.
    """
    uid = parse_uuid(owner_id)
    if uid is not None:
        found = db.session.execute(
            select(Membership.user_id).where(Membership.user_id == uid, Membership.status == "active")
        ).scalar_one_or_none()
        if found is not None:
            return found
    raise UserError("Choose a member of this organization.", "owner_id")


def _clean(name: str | None, description: str | None) -> tuple[str, str]:
    name = " ".join(_printable(name or "").split())
    if not name:
        raise UserError("Give the project a name.", "name")
    if len(name) > NAME_MAX:
        raise UserError(too_long(NAME_MAX), "name")
    description = _printable(description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise UserError(too_long(DESCRIPTION_MAX), "description")
    return name, description


def _snapshot(project: Project) -> dict:
    return {
        "name": project.name,
        "description": project.description,
        "owner_id": str(project.owner_id) if project.owner_id else None,
        "status": project.status,
    }


# --------------------------------------------------------------------------- writing
def create_project(name: str, description: str, owner_id) -> Project:
    """A new active project in the current organization. Raises ``UserError``.

    The owner must be an active member of this organization (checked here,
    and again by the composite foreign key to ``memberships``).
    """
    name, description = _clean(name, description)
    project = Project(name=name, description=description, owner_id=_member_id(owner_id), status="active")
    db.session.add(project)
    db.session.flush()  # the id and organization exist from here on
    audit.record("project.created", target=project, after=_snapshot(project))
    return project


def update_project(project: Project, name: str, description: str, owner_id, version=None) -> dict:
    """Apply the edited fields; returns ``{field: (before, after)}`` for what changed.

    ``version`` is the one the edit form was drawn from: the row is locked
    and re-read first, and an edit from another version raises ``StaleEdit``
    (409), nothing written (``app.concurrency``). The audit "before" is the
    row as locked. Nothing changed: no write and no audit event. Otherwise
    one ``project.updated`` event with the before/after of the changed fields only.
    """
    name, description = _clean(name, description)
    lock_for_edit(project, version)
    wanted = {"name": name, "description": description, "owner_id": _member_id(owner_id)}
    changes = {}
    for key in EDITABLE:
        if getattr(project, key) != wanted[key]:
            changes[key] = (getattr(project, key), wanted[key])
            setattr(project, key, wanted[key])
    if changes:
        db.session.flush()
        as_text = lambda v: str(v) if isinstance(v, uuid.UUID) else v  # noqa: E731
        audit.record(
            "project.updated",
            target=project,
            before={k: as_text(b) for k, (b, _) in changes.items()},
            after={k: as_text(a) for k, (_, a) in changes.items()},
        )
    return changes


def archive_project(project: Project) -> bool:
    """Archive an active project (hidden from the default list, kept intact).

    Returns ``False`` and records nothing when it was already archived.
    """
    if project.status == "archived":
        return False
    project.status = "archived"
    db.session.flush()
    audit.record("project.archived", target=project, before={"status": "active"}, after={"status": "archived"})
    return True


def restore_project(project: Project) -> bool:
    """Bring an archived project back to active. ``False`` when it was not archived."""
    if project.status == "active":
        return False
    project.status = "active"
    db.session.flush()
    audit.record("project.restored", target=project, before={"status": "archived"}, after={"status": "active"})
    return True


def delete_project(project: Project) -> None:
    """Delete the project for good; the audit event keeps what it was."""
    audit.record("project.deleted", target=project, before=_snapshot(project))
    db.session.delete(project)
    db.session.flush()


# --------------------------------------------------------------------------- other areas' changes
@hooks.member_removed.connect
def release_ownership(membership: Membership) -> dict:
    """A member leaving the organization leaves their projects behind, without
    an owner (the owner's foreign key points at the membership)."""
    released = db.session.execute(
        update(Project)
        .where(Project.owner_id == membership.user_id)
        # A change like any other: edit forms drawn before it are now stale.
        .values(owner_id=None, version=Project.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return {"projects_unowned": released}


def any_project(_org=None):
    """For the getting-started checklist: a SQL boolean, true once the
    organization has a project (archived ones count). The same expression
    object every time (see ``active_count_column``)."""
    return _any_project()


@functools.cache
def _any_project():
    return select(Project.id).exists()


# --------------------------------------------------------------------------- keyset pages (the API)
def page_after(status: str, q: str, after: tuple | None, limit: int) -> tuple[list[Project], bool]:
    """Up to ``limit`` projects after the keyset position ``after``
    (``(created_at, id)``), oldest first, with the list's status filter
    (``active``, ``archived`` or ``all``) and search; and whether more follow.

    Keyset, not offset: a program walking every page of a large
    organization pays the same for the last page as for the first, and a
    project created meanwhile neither repeats nor skips a row.
    """
    stmt = select(Project).options(raiseload(Project.owner))
    if status != "all":
        stmt = stmt.where(Project.status == status)
    q = " ".join(_printable(q or "").split())[:MAX_SEARCH]
    if q:
        pattern = f"%{escape_like(q)}%"
        stmt = stmt.where(
            or_(Project.name.ilike(pattern, escape="\\"), Project.description.ilike(pattern, escape="\\"))
        )
    if after is not None:
        stmt = stmt.where(tuple_(Project.created_at, Project.id) > tuple_(*after))
    rows = db.session.execute(stmt.order_by(Project.created_at, Project.id).limit(limit + 1)).scalars().all()
    return list(rows[:limit]), len(rows) > limit

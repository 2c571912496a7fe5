"""``/api/v1/``: the organization, members, roles and projects as JSON.

Thin views over the product areas' services, exactly as the pages call
them: the key acts as its creator (their membership is the ``actor`` every
service checks), limited to the key's effective scopes (the same permission
strings as the pages' guards). Ids that are malformed, unknown or another
organization's are 404 alike.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from flask import Blueprint, g, request, url_for
from pydantic import Field
from werkzeug.exceptions import HTTPException

from app.api import keys, openapi, problems, ratelimit, usage
from app.api.http import Model, Out, Reply, Timestamp, check_if_match, etag_of, operation
from app.api.problems import Problem
from app.extensions import csrf, db
from app.members import listing, memberships
from app.projects import services as projects
from app.projects.models import DESCRIPTION_MAX, NAME_MAX
from app.rbac import services as rbac
from app.settings import services as settings_services
from app.tenancy.entitlements import entitled
from app.web.access import access_of, public

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Key-authenticated requests carry no cookie to ride on: CSRF does not apply.
csrf.exempt(bp)

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# The vendored viewer of the reference page (static/vendor/swagger-ui/,
# VERSIONS.md): its files are requested with ?v= this, cached for a year.
SWAGGER_UI_VERSION = "5.35.0"


# --------------------------------------------------------------------------- authentication
@bp.before_request
def authenticate():
    """Every API operation: the key (``Authorization: Bearer tnt_…``) must be a
    live key of the host's organization whose creator is still an active
    member; then the rate limits; then usage counting. Sets ``g.api_key``,
    ``g.membership`` (the creator's) and ``g.permissions`` (the key's
    effective scopes)."""
    view = request.endpoint and bp_view(request.endpoint)
    if view is None or (access_of(view) or {}).get("kind") != "api":
        return None
    g.permissions = frozenset()
    g.membership = None
    if g.get("org") is None:
        raise Problem("unauthenticated", "API keys work only on their organization's host.", headers=_challenge())
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer":
        raw = ""
    try:
        verified = keys.verify(raw.strip())
    except keys.KeyRefused as e:
        raise Problem("unauthenticated", e.reason, headers=_challenge()) from None
    g.api_key = verified.key
    g.membership = verified.membership
    g.permissions = verified.scopes
    if g.org.is_suspended:
        raise Problem("suspended", "This organization is suspended.")
    if not entitled(g.org, "api"):
        raise Problem("not-entitled", "The organization's plan does not include the API.")
    state = ratelimit.hit(g.org, verified.key)
    g.api_rate = state
    usage.count(verified.key, throttled=state is not None and not state.allowed)
    if state is not None and not state.allowed:
        raise Problem(
            "rate-limited", f"Rate limit of {state.limit} requests a minute reached; retry in {max(1, state.reset)} s."
        )
    return None


def bp_view(endpoint: str):
    from flask import current_app

    return current_app.view_functions.get(endpoint)


def _challenge() -> dict:
    return {"WWW-Authenticate": 'Bearer realm="tenantry-api"'}


@bp.after_request
def rate_headers(resp):
    """RateLimit-* on every API answer (the refusal too); never cached, never a cookie."""
    state = g.get("api_rate")
    if state is not None:
        for k, v in state.headers().items():
            if k != "Retry-After" or resp.status_code == 429:
                resp.headers[k] = v
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.errorhandler(Problem)
def _problem(e: Problem):
    db.session.rollback()
    return problems.response(e)


@bp.errorhandler(HTTPException)
def _http(e: HTTPException):
    db.session.rollback()
    kind = {
        401: "unauthenticated",
        403: "forbidden",
        404: "not-found",
        413: "too-large",
        415: "unsupported-media-type",
    }.get(e.code)
    if kind is None:
        p = Problem("validation", e.description, status=e.code)
        p.title = e.name
        p.kind = "http"
        return problems.response(p)
    return problems.response(Problem(kind, e.description if e.code != 404 else None))


# --------------------------------------------------------------------------- helpers
class Page(Out):
    next: str | None = Field(None, description="URL of the next page, absent on the last one.")


def _next_url(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    args = {k: v for k, v in request.args.items() if k != "cursor"}
    args["cursor"] = cursor
    return request.base_url + "?" + urlencode(args)


def listing_page(args: dict, role_keys, cursor: str, *, invitations: bool) -> listing.Page:
    """One page of the members listing (``app.members.listing``, the members
    page's own query) for the filters in ``args``: members, or pending
    invitations with ``invitations``. Bad filters and a bad cursor are
    problems (422), as the page answers them."""
    f = listing.parse_filters(args, set(role_keys))
    if f.errors:
        raise Problem(
            "validation",
            "Some filters are not valid.",
            [{"pointer": f"#/query/{k}", "detail": v} for k, v in f.errors.items()],
        )
    f = listing.prepare(replace(f, invitations=invitations))
    try:
        return listing.page(f, after=cursor or None)
    except listing.BadListRequest as e:
        raise Problem("invalid-cursor", str(e)) from None


def _reply_page(items, cursor: str | None) -> Reply:
    link = _next_url(cursor)
    return Reply({"data": items, "next": link}, headers={"Link": f'<{link}>; rel="next"' if link else None})


def _encode(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(p) for p in parts]).encode()).decode().rstrip("=")


def _decode(token: str, n: int) -> list[str]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(parts, list) or len(parts) != n or not all(isinstance(p, str) for p in parts):
            raise ValueError
        return parts
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise Problem("invalid-cursor", "This cursor is not one of ours: start again without it.") from None


# --------------------------------------------------------------------------- organization
class Organization(Out):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    created_at: Timestamp


@operation(
    bp,
    "GET",
    "/organization",
    scope="org:view",
    summary="The organization",
    tag="Organization",
    response=Organization,
    etag=True,
)
def organization():
    """The organization this key belongs to."""
    return Reply(_org_out(g.org), etag=_org_etag(g.org))


def _org_out(org) -> Organization:
    return Organization(id=org.id, slug=org.slug, name=org.name, plan=org.plan_key, created_at=org.created_at)


class OrganizationUpdate(Model):
    name: str = Field(min_length=1, max_length=120)


def _org_etag(org) -> str:
    return etag_of("organization", org.id, org.version)


@operation(
    bp,
    "PATCH",
    "/organization",
    scope="org:update",
    summary="Rename the organization",
    tag="Organization",
    body=OrganizationUpdate,
    response=Organization,
    etag=True,
    if_match=True,
    errors=(412, 422, 428),
)
def update_organization(body: OrganizationUpdate):
    """Change the organization's display name (the general settings page's
    rule). Needs ``If-Match`` with the ETag of ``GET /organization``."""
    org = g.org
    check_if_match(_org_etag(org))
    settings_services.rename(org, body.name, version=org.version)
    return Reply(_org_out(org), etag=_org_etag(org))


# --------------------------------------------------------------------------- members
class Member(Out):
    id: uuid.UUID = Field(description="The member's user id.")
    name: str
    email: str
    role: str = Field(description="A system role key or custom:<uuid>.")
    role_name: str
    status: Literal["active", "deactivated"]
    joined_at: Timestamp
    last_seen_at: Timestamp | None


class MemberPage(Page):
    data: list[Member]


class MemberQuery(Model):
    q: str = Field("", max_length=listing.MAX_QUERY, description="Search names and e-mail addresses.")
    role: str = Field("", max_length=80, description="A role key (owner … viewer, or custom:<uuid>).")
    status: Literal["", "active", "deactivated"] = ""
    sort: Literal["name", "email", "joined", "last_seen"] = "name"
    dir: Literal["asc", "desc", ""] = ""
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str = Field("", max_length=1000)


class RoleChange(Model):
    role: str = Field(min_length=1, max_length=80, description="A system role key or custom:<uuid>.")


def _member_out(m) -> Member:
    info = rbac.role_of(m)
    return Member(
        id=m.user_id,
        name=m.user.name,
        email=m.user.email,
        role=info.key,
        role_name=info.name,
        status=m.status,
        joined_at=m.created_at,
        last_seen_at=m.last_seen_at,
    )


def _row_out(r: listing.Row, names: dict) -> Member:
    return Member(
        id=r.id,
        name=r.name,
        email=r.email,
        role=r.role_key,
        role_name=names.get(r.role_key, r.role_key),
        status=r.status,
        joined_at=r.created_at,
        last_seen_at=r.last_seen_at,
    )


def _member_etag(m) -> str:
    return etag_of("member", m.user_id, m.role_key, m.status)


def _member_or_404(user_id: str):
    m = memberships.get_membership(user_id)
    if m is None:
        raise Problem("not-found", "No such member in this organization.")
    return m


@operation(
    bp,
    "GET",
    "/members",
    scope="members:view",
    summary="List members",
    tag="Members",
    query=MemberQuery,
    response=MemberPage,
    list_page=True,
    errors=(400, 422),
)
def list_members(query: MemberQuery):
    """Members with the members page's filters (search, role, status, sort),
    a page at a time; follow ``next`` for the following page."""
    roles = rbac.all_roles()
    names = {r.key: r.name for r in roles}
    page = listing_page({**query.model_dump(), "per_page": query.limit}, names, query.cursor, invitations=False)
    return _reply_page([_row_out(r, names) for r in page.rows], page.next_cursor)


@operation(
    bp,
    "GET",
    "/members/<user_id>",
    scope="members:view",
    summary="Read a member",
    tag="Members",
    response=Member,
    etag=True,
    errors=(404,),
)
def get_member(user_id: str):
    """One member; its ``ETag`` is what a role change sends in ``If-Match``."""
    m = _member_or_404(user_id)
    return Reply(_member_out(m), etag=_member_etag(m))


@operation(
    bp,
    "PATCH",
    "/members/<user_id>",
    scope="members:update_role",
    summary="Change a member's role",
    tag="Members",
    body=RoleChange,
    response=Member,
    etag=True,
    if_match=True,
    errors=(404, 412, 422, 428),
)
def change_role(user_id: str, body: RoleChange):
    """Give the member another role, with the members page's guardrails
    (not beyond the creator's own permissions, Owners only by Owners, never
    the last Owner). Needs ``If-Match``."""
    m = _member_or_404(user_id)
    check_if_match(_member_etag(m))
    rbac.change_role(m, body.role, g.membership)
    return Reply(_member_out(m), etag=_member_etag(m))


@operation(
    bp,
    "POST",
    "/members/<user_id>/deactivate",
    scope="members:remove",
    summary="Deactivate a member",
    tag="Members",
    response=Member,
    etag=True,
    errors=(404, 422),
)
def deactivate_member(user_id: str):
    """The member loses access and keeps their row (same guardrails as the page)."""
    m = _member_or_404(user_id)
    memberships.deactivate(m, g.membership)
    return Reply(_member_out(m), etag=_member_etag(m))


@operation(
    bp,
    "POST",
    "/members/<user_id>/reactivate",
    scope="members:remove",
    summary="Reactivate a member",
    tag="Members",
    response=Member,
    etag=True,
    errors=(404, 422),
)
def reactivate_member(user_id: str):
    """Give a deactivated member access again, if the plan has a seat."""
    m = _member_or_404(user_id)
    memberships.reactivate(m, g.membership, g.org)
    return Reply(_member_out(m), etag=_member_etag(m))


@operation(
    bp,
    "DELETE",
    "/members/<user_id>",
    scope="members:remove",
    summary="Remove a member",
    tag="Members",
    status=204,
    errors=(404, 422),
)
def remove_member(user_id: str):
    """Remove the member from the organization (their account stays)."""
    m = _member_or_404(user_id)
    memberships.remove(m, g.membership)
    return Reply(None, status=204)


# --------------------------------------------------------------------------- roles
class RoleOut(Out):
    key: str
    name: str
    description: str
    system: bool
    permissions: list[str]


class RoleList(Out):
    data: list[RoleOut]


@operation(bp, "GET", "/roles", scope="roles:view", summary="List roles", tag="Roles", response=RoleList)
def list_roles():
    """System roles, then the organization's custom roles, with their permissions."""
    return Reply(
        {
            "data": [
                RoleOut(
                    key=r.key,
                    name=r.name,
                    description=r.description,
                    system=r.system,
                    permissions=sorted(r.permissions),
                )
                for r in rbac.all_roles()
            ]
        }
    )


# --------------------------------------------------------------------------- projects
class ProjectOut(Out):
    id: uuid.UUID
    name: str
    description: str
    status: Literal["active", "archived"]
    owner_id: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class ProjectPage(Page):
    data: list[ProjectOut]


class ProjectQuery(Model):
    q: str = Field("", max_length=projects.MAX_SEARCH)
    status: Literal["active", "archived", "all"] = "active"
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str = Field("", max_length=1000)


class ProjectCreate(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=DESCRIPTION_MAX)
    owner_id: str = Field(max_length=64, description="The user id of an active member.")


class ProjectUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    owner_id: str | None = Field(None, max_length=64)
    status: Literal["active", "archived"] | None = None


def _project_out(p) -> ProjectOut:
    return ProjectOut(
        id=p.id,
        name=p.name,
        description=p.description,
        status=p.status,
        owner_id=p.owner_id,
        created_at=p.created_at,
        updated_at=p.updated_at,
        version=p.version,
    )


def _project_etag(p) -> str:
    return etag_of("project", p.id, p.version)


def _project_or_404(project_id: str):
    p = projects.find_project(project_id)
    if p is None:
        raise Problem("not-found", "No such project in this organization.")
    return p


@operation(
    bp,
    "GET",
    "/projects",
    scope="projects:view",
    summary="List projects",
    tag="Projects",
    query=ProjectQuery,
    response=ProjectPage,
    list_page=True,
    errors=(400, 422),
)
def list_projects(query: ProjectQuery):
    """Projects, oldest first, filtered by status and search; follow ``next``."""
    after = None
    if query.cursor:
        created, pid = _decode(query.cursor, 2)
        try:
            after = (datetime.fromisoformat(created), uuid.UUID(pid))
        except ValueError:
            raise Problem("invalid-cursor", "This cursor is not one of ours: start again without it.") from None
    rows, more = projects.page_after(query.status, query.q, after, query.limit)
    cursor = _encode(rows[-1].created_at.isoformat(), rows[-1].id) if more and rows else None
    return _reply_page([_project_out(p) for p in rows], cursor)


@operation(
    bp,
    "POST",
    "/projects",
    scope="projects:create",
    summary="Create a project",
    tag="Projects",
    body=ProjectCreate,
    response=ProjectOut,
    status=201,
    etag=True,
    errors=(409, 422),
)
def create_project(body: ProjectCreate):
    """A new active project; the owner must be an active member. Send an
    ``Idempotency-Key`` to make a retry safe."""
    p = projects.create_project(body.name, body.description, body.owner_id)
    return Reply(
        _project_out(p),
        status=201,
        etag=_project_etag(p),
        location=url_for("api.get_project", project_id=p.id, _external=True),
    )


@operation(
    bp,
    "GET",
    "/projects/<project_id>",
    scope="projects:view",
    summary="Read a project",
    tag="Projects",
    response=ProjectOut,
    etag=True,
    errors=(404,),
)
def get_project(project_id: str):
    """One project, with its ``ETag``."""
    p = _project_or_404(project_id)
    return Reply(_project_out(p), etag=_project_etag(p))


@operation(
    bp,
    "PATCH",
    "/projects/<project_id>",
    scope="projects:update",
    summary="Update a project",
    tag="Projects",
    body=ProjectUpdate,
    response=ProjectOut,
    etag=True,
    if_match=True,
    errors=(404, 412, 422, 428),
)
def update_project(project_id: str, body: ProjectUpdate):
    """Change the fields sent (others stay); ``status`` archives or restores.
    Needs ``If-Match`` with the project's ETag: a stale one is 412."""
    p = _project_or_404(project_id)
    check_if_match(_project_etag(p))
    sent = body.model_fields_set
    name = body.name if "name" in sent and body.name is not None else p.name
    description = body.description if "description" in sent and body.description is not None else p.description
    owner = (
        body.owner_id if "owner_id" in sent and body.owner_id is not None else (str(p.owner_id) if p.owner_id else "")
    )
    if sent & {"name", "description", "owner_id"}:
        projects.update_project(p, name, description, owner, version=p.version)
    if "status" in sent and body.status == "archived":
        projects.archive_project(p)
    elif "status" in sent and body.status == "active":
        projects.restore_project(p)
    db.session.flush()
    return Reply(_project_out(p), etag=_project_etag(p))


@operation(
    bp,
    "DELETE",
    "/projects/<project_id>",
    scope="projects:delete",
    summary="Delete a project",
    tag="Projects",
    status=204,
    errors=(404, 412),
)
def delete_project(project_id: str):
    """Delete the project for good. With ``If-Match``, only if unchanged since read."""
    p = _project_or_404(project_id)
    if request.headers.get("If-Match"):
        check_if_match(_project_etag(p))
    projects.delete_project(p)
    return Reply(None, status=204)


# --------------------------------------------------------------------------- the document
@bp.get("/openapi.json")
@public(outsiders_on_org_host=True, unknown_org_ok=True)
def openapi_json():
    """The OpenAPI 3.1 document, generated from the operations (no key needed)."""
    from flask import jsonify

    return jsonify(openapi.document())


@bp.get("/docs")
@public(outsiders_on_org_host=True, unknown_org_ok=True)
def docs():
    """The API reference: the vendored Swagger UI (a static file, started by
    ``static/js/api-docs.js``) draws ``/api/v1/openapi.json``; the same
    document rendered on the server is the page without JavaScript. The
    problem types (what every problem's ``type`` links to) are always shown.
    The strict Content-Security-Policy holds: no inline script or style."""
    from flask import render_template

    return render_template(
        "api/docs.html",
        doc=openapi.document(),
        problem_kinds=problems.KINDS,
        swagger_ui_version=SWAGGER_UI_VERSION,
    )


# The other resources register on ``bp`` when imported (after it exists).
from app.api import audit_views, invitation_views, role_views, webhook_views  # noqa: E402,F401

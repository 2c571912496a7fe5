"""``/api/v1/roles/{key}`` and custom roles: read one role, create and update
custom roles, through the roles area's services (the role editor's rules:
unique names, only permissions the creator holds)."""

from __future__ import annotations

from flask import g, url_for
from pydantic import Field

from app.api.http import Model, Reply, check_if_match, etag_of, operation
from app.api.problems import Problem
from app.api.views import RoleOut, bp
from app.permissions import ALL
from app.rbac import services as rbac
from app.tenancy.entitlements import entitled


class RoleCreate(Model):
    name: str = Field(min_length=1, max_length=rbac.NAME_MAX)
    description: str = Field("", max_length=rbac.DESCRIPTION_MAX)
    permissions: list[str] = Field(max_length=len(ALL))


class RoleUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=rbac.NAME_MAX)
    description: str | None = Field(None, max_length=rbac.DESCRIPTION_MAX)
    permissions: list[str] | None = Field(None, max_length=len(ALL))


def _out(info) -> RoleOut:
    return RoleOut(
        key=info.key,
        name=info.name,
        description=info.description,
        system=info.system,
        permissions=sorted(info.permissions),
    )


def _etag(info) -> str:
    return etag_of("role", info.key, info.role.version if info.role is not None else 0)


def _role_or_404(role_key: str):
    info = rbac.get_role(role_key)
    if info is None:
        raise Problem("not-found", "No such role in this organization.")
    return info


def _custom_roles_entitled() -> None:
    if not entitled(g.org, "custom_roles"):
        raise Problem("not-entitled", "The organization's plan does not include custom roles.")


@operation(
    bp,
    "GET",
    "/roles/<role_key>",
    scope="roles:view",
    summary="Read a role",
    tag="Roles",
    response=RoleOut,
    etag=True,
    errors=(404,),
)
def get_role(role_key: str):
    """A system role (``owner`` … ``viewer``) or a custom role (``custom:<uuid>`` or its id)."""
    info = _role_or_404(role_key)
    return Reply(_out(info), etag=_etag(info))


@operation(
    bp,
    "POST",
    "/roles",
    scope="roles:manage",
    summary="Create a custom role",
    tag="Roles",
    body=RoleCreate,
    response=RoleOut,
    status=201,
    etag=True,
    errors=(409, 422),
)
def create_role(body: RoleCreate):
    """A custom role with permissions the key's creator holds; the name must be new."""
    _custom_roles_entitled()
    role = rbac.create_role(body.name, body.description, body.permissions, g.membership)
    info = rbac.get_role(str(role.id))
    return Reply(
        _out(info),
        status=201,
        etag=_etag(info),
        location=url_for("api.get_role", role_key=info.key, _external=True),
    )


@operation(
    bp,
    "PATCH",
    "/roles/<role_key>",
    scope="roles:manage",
    summary="Update a custom role",
    tag="Roles",
    body=RoleUpdate,
    response=RoleOut,
    etag=True,
    if_match=True,
    errors=(404, 412, 422, 428),
)
def update_role(role_key: str, body: RoleUpdate):
    """Change the fields sent; system roles cannot be edited (422). Needs ``If-Match``."""
    _custom_roles_entitled()
    info = _role_or_404(role_key)
    if info.system:
        raise Problem("refused", "System roles cannot be edited.")
    check_if_match(_etag(info))
    rbac.update_role(
        info.role,
        name=body.name,
        description=body.description,
        permissions=body.permissions,
        actor=g.membership,
        version=info.role.version,
    )
    info = rbac.get_role(info.key)
    return Reply(_out(info), etag=_etag(info))

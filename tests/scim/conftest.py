"""SCIM fixtures: acme on the enterprise plan (which includes ``scim``), a
token of acme's, and a client that speaks SCIM to acme's host."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.scim import tokens
from app.scoping import tenant_context
from app.tenancy.models import Membership
from tests.conftest import url

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def set_plan(owner_engine, org, plan: str) -> None:
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = :p WHERE id = :o"), {"p": plan, "o": org.id})


def make_token(org, user, name: str = "Okta") -> str:
    with tenant_context(org.id):
        actor = db.session.execute(select(Membership).where(Membership.user_id == user.id)).unique().scalar_one()
        _, full = tokens.create_token(name, actor)
        db.session.commit()
    return full


class ScimClient:
    """Sends SCIM requests to an organization's host with a bearer token."""

    def __init__(self, app, slug: str, token: str | None):
        self.client = app.test_client()
        self.slug = slug
        self.token = token

    def __call__(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None, token=...):
        h = {"Content-Type": SCIM}
        tok = self.token if token is ... else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.client.open(url(self.slug, f"/scim/v2{path}"), method=method, data=data, headers=h)

    def create_user(self, user_name: str, email: str | None = None, **extra):
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **extra}
        if email:
            body["emails"] = [{"value": email, "primary": True, "type": "work"}]
        return self("POST", "/Users", body)

    def create_group(self, name: str, members=(), **extra):
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": str(m)} for m in members],
            **extra,
        }
        return self("POST", "/Groups", body)

    def patch(self, path: str, *ops, headers=None):
        return self("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": list(ops)}, headers=headers)


@pytest.fixture
def scim_world(world, owner_engine):
    """The world with acme on the enterprise plan and a SCIM token of acme's."""
    set_plan(owner_engine, world.acme, "enterprise")
    world.scim_token = make_token(world.acme, world.users["owner"])
    return world


@pytest.fixture
def scim(app, scim_world) -> ScimClient:
    return ScimClient(app, "acme", scim_world.scim_token)


def membership_of(org, user_id) -> Membership | None:
    db.session.expire_all()
    with tenant_context(org.id):
        return db.session.execute(select(Membership).where(Membership.user_id == user_id)).unique().scalar_one_or_none()


def entitle_scim(org_id) -> None:
    """Give the organization the ``scim`` feature by an override (as the
    platform console does), whatever its plan; idempotent."""
    from app.scoping import all_organizations
    from app.tenancy.models import EntitlementOverride

    with all_organizations(reason="tests: a SCIM entitlement"):
        if db.session.get(EntitlementOverride, (org_id, "scim")) is None:
            db.session.add(
                EntitlementOverride(organization_id=org_id, name="scim", kind="feature", enabled=True, reason="tests")
            )
            db.session.commit()


def acme_scim_token_id(world) -> str:
    """A SCIM token of acme's (made once per test), entitled; its row id."""
    entitle_scim(world.acme.id)
    with tenant_context(world.acme.id):
        existing = db.session.execute(select(tokens.ScimToken.id)).scalar()
        if existing:
            return str(existing)
    make_token(world.acme, world.users["owner"], "Matrix")
    with tenant_context(world.acme.id):
        return str(db.session.execute(select(tokens.ScimToken.id)).scalar())


def acme_mapping_id(world) -> str:
    """A group → role mapping of acme's (made once per test), entitled; its row id."""
    from app.rbac.group_roles import GroupRoleMapping

    entitle_scim(world.acme.id)
    with tenant_context(world.acme.id):
        existing = db.session.execute(select(GroupRoleMapping.id)).scalar()
        if existing:
            return str(existing)
        db.session.add(GroupRoleMapping(source="scim", group_name="Matrix group", role="viewer"))
        db.session.commit()
        return str(db.session.execute(select(GroupRoleMapping.id)).scalar())

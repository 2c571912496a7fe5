"""Fixtures of the roles area: custom roles and memberships as real rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.extensions import db
from app.rbac.models import Role
from app.scoping import tenant_context
from app.tenancy.models import Membership


def make_role(org, name: str, permissions=(), description: str = "") -> SimpleNamespace:
    """A custom role of ``org`` (committed), returned as plain values: every
    commit expires ORM objects, and a tenant row cannot be reloaded outside
    its organization's context."""
    with tenant_context(org.id):
        role = Role(organization_id=org.id, name=name, description=description, permissions=list(permissions))
        db.session.add(role)
        db.session.commit()
        return SimpleNamespace(id=role.id, name=role.name, permissions=list(role.permissions), organization_id=org.id)


def membership(org, user) -> Membership:
    """``user``'s membership of ``org``, freshly loaded."""
    db.session.expire_all()
    with tenant_context(org.id):
        return db.session.execute(select(Membership).where(Membership.user_id == user.id)).unique().scalar_one()


@pytest.fixture
def roles_world(world):
    """The shared world plus one custom role in each organization, held by nobody."""
    world.acme_role = make_role(world.acme, "Support", ["org:view", "members:view", "audit:view"], "Answers customers")
    world.globex_role = make_role(world.globex, "Globex secret role", ["org:view"])
    return world

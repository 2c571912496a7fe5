"""Demo data: acme's five accounts hold the five system roles, and acme has
the custom role "Auditor" — loaded idempotently."""

from __future__ import annotations

from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.rbac.models import Role
from app.scoping import tenant_context
from app.tenancy.models import Membership, Organization


def test_demo_has_the_five_system_roles_and_an_auditor_role_once(app):
    load_demo()
    load_demo()  # idempotent
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    globex = db.session.execute(select(Organization).where(Organization.slug == "globex")).scalar_one()
    with tenant_context(acme.id):
        roles = db.session.execute(select(Role)).scalars().all()
        held = {m.user.email: m.role for m in db.session.execute(select(Membership)).unique().scalars()}
    assert [(r.name, sorted(r.permissions)) for r in roles] == [
        ("Auditor", ["audit:view", "members:view", "roles:view"])
    ]
    for key in ("owner", "admin", "manager", "member", "viewer"):
        assert held[f"{key}@acme.test"] == key
    with tenant_context(globex.id):
        assert db.session.execute(select(Role)).scalars().all() == []

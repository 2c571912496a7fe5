"""Demo data: acme trials SCIM (an override), has a token row, a group mapped
to Manager, and Mona Manager provisioned in it (source SCIM), loaded once."""

from __future__ import annotations

from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.scim.models import ScimGroup, ScimToken, ScimUser
from app.scoping import tenant_context
from app.tenancy.entitlements import entitled
from app.tenancy.models import Membership, Organization


def test_demo_shows_scim_in_acme_once(app):
    load_demo()
    assert "already loaded" in load_demo()
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    assert entitled(acme, "scim")
    with tenant_context(acme.id):
        assert len(db.session.execute(select(ScimToken)).unique().scalars().all()) == 1
        assert [g.display_name for g in db.session.execute(select(ScimGroup)).scalars()] == ["Engineering Leads"]
        (su,) = db.session.execute(select(ScimUser)).scalars().all()
        m = db.session.execute(select(Membership).where(Membership.user_id == su.user_id)).unique().scalar_one()
        assert (m.role, m.role_source) == ("manager", "scim")

"""Projects hear that a member left through ``hooks.member_removed``, not from members' code."""

from __future__ import annotations

from sqlalchemy import select

from app import hooks
from app.extensions import db
from app.projects.models import Project
from app.scoping import tenant_context
from app.tenancy.models import Membership
from tests.factories import add_member, make_project, make_user


def test_member_removed_hook_releases_their_projects_in_their_org_only(world):
    u = make_user("leaver@example.test")
    add_member(world.acme, u, "member")
    add_member(world.globex, u, "member")
    make_project(world.acme, "Acme thing", owner=u)
    make_project(world.globex, "Globex thing", owner=u)
    with tenant_context(world.acme.id):
        m = db.session.execute(select(Membership).where(Membership.user_id == u.id)).unique().scalar_one()
        assert hooks.member_removed.send(m) == [{"projects_unowned": 1}]
        db.session.commit()
        assert db.session.execute(select(Project.owner_id).where(Project.name == "Acme thing")).scalar_one() is None
    with tenant_context(world.globex.id):
        assert db.session.execute(select(Project.owner_id).where(Project.name == "Globex thing")).scalar_one() == u.id

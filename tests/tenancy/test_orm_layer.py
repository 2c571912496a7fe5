"""The ORM layer on its own: RLS is out of the picture (a session on the owner
connection, which is a superuser, with the scoping hooks installed), so
anything filtered here was filtered by the ``do_orm_execute`` hook alone."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from app import scoping
from app.projects.models import Project
from app.scoping import CrossTenantWrite, tenant_context
from app.tenancy.models import Membership


@pytest.fixture
def owner_session(owner_engine):
    """An ORM session on the owner connection with the tenant hooks, and RLS not applying."""

    class OwnerSession(Session):
        pass

    scoping.install(OwnerSession)
    session = OwnerSession(bind=owner_engine)
    bypass = session.execute(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    assert bypass, "the owner connection must bypass RLS for this test to isolate the ORM layer"
    session.rollback()
    yield session
    session.rollback()
    session.close()


def test_rls_really_is_out_of_the_picture(world, owner_session):
    with tenant_context(world.acme.id):
        assert owner_session.execute(text("SELECT count(*) FROM projects")).scalar() == 6


def test_a_query_without_a_filter_returns_only_the_current_orgs_rows(world, owner_session):
    with tenant_context(world.acme.id):
        projects = owner_session.execute(select(Project)).unique().scalars().all()
        assert sorted(p.name for p in projects) == ["Acme Project 0", "Acme Project 1", "Acme Project 2"]
        assert {p.organization_id for p in projects} == {world.acme.id}
        assert owner_session.execute(select(func.count()).select_from(Project)).scalar() == 3
        members = owner_session.execute(select(Membership)).unique().scalars().all()
        assert {m.organization_id for m in members} == {world.acme.id}
        # Joins and columns-only selects are scoped too.
        rows = owner_session.execute(
            select(Project.name, Membership.user_id).join(Membership, Membership.user_id == Project.owner_id)
        ).all()
        assert sorted(r.name for r in rows) == ["Acme Project 0", "Acme Project 1", "Acme Project 2"]
    with tenant_context(world.globex.id):
        names = owner_session.execute(select(Project.name)).scalars().all()
        assert sorted(names) == ["Globex Secret 0", "Globex Secret 1", "Globex Secret 2"]


def test_get_by_primary_key_of_another_org_finds_nothing(world, owner_session):
    with tenant_context(world.globex.id):
        gid = owner_session.execute(select(Project.id)).scalars().first()
    owner_session.expunge_all()
    with tenant_context(world.acme.id):
        assert owner_session.execute(select(Project).where(Project.id == gid)).scalar_one_or_none() is None
        assert owner_session.get(Project, (world.globex.id, gid)) is None


def test_with_no_current_org_queries_match_nothing(world, owner_session):
    assert owner_session.execute(select(Project)).scalars().all() == []
    assert owner_session.execute(select(func.count()).select_from(Membership)).scalar() == 0


def test_new_rows_get_the_current_org(world, owner_session):
    with tenant_context(world.acme.id):
        p = Project(name="Stamped")
        owner_session.add(p)
        owner_session.flush()
        assert p.organization_id == world.acme.id
        assert (
            owner_session.execute(text("SELECT organization_id FROM projects WHERE id = :id"), {"id": p.id}).scalar()
            == world.acme.id
        )


def test_a_new_row_with_no_org_and_no_current_org_is_refused(world, owner_session):
    owner_session.add(Project(name="Orphan"))
    with pytest.raises(CrossTenantWrite):
        owner_session.flush()


def test_writing_a_row_into_another_org_raises(world, owner_session):
    with tenant_context(world.acme.id):
        owner_session.add(Project(organization_id=world.globex.id, name="Smuggled"))
        with pytest.raises(CrossTenantWrite):
            owner_session.flush()
    owner_session.rollback()
    with tenant_context(world.globex.id):
        theirs = owner_session.execute(select(Project)).unique().scalars().first()
    with tenant_context(world.acme.id):
        theirs.name = "Changed from acme"
        with pytest.raises(CrossTenantWrite):
            owner_session.flush()


def test_bulk_update_and_delete_touch_only_the_current_org(world, owner_session, owner_engine):
    with tenant_context(world.acme.id):
        owner_session.execute(update(Project).values(name="Renamed"))
        owner_session.execute(delete(Membership).where(Membership.role == "viewer"))
        owner_session.commit()
    with owner_engine.connect() as c:
        by_org = dict(
            c.execute(
                text(
                    "SELECT o.slug, string_agg(DISTINCT p.name, ',') FROM projects p "
                    "JOIN organizations o ON o.id = p.organization_id GROUP BY o.slug"
                )
            ).all()
        )
        globex_members = c.execute(
            text("SELECT count(*) FROM memberships WHERE organization_id = :g"), {"g": world.globex.id}
        ).scalar()
    assert by_org == {"acme": "Renamed", "globex": "Globex Secret 0,Globex Secret 1,Globex Secret 2"}
    assert globex_members == 3


def test_the_statement_level_escape_is_explicit(world, owner_session):
    with tenant_context(world.acme.id):
        everything = (
            owner_session.execute(
                select(Project).execution_options(all_organizations="test: proving the escape is opt-in")
            )
            .unique()
            .scalars()
            .all()
        )
    assert len(everything) == 6

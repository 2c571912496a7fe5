"""Where a member's role comes from (manual, SSO, SCIM) is shown on the
members page and the member's page, and an admin's change makes it manual."""

from __future__ import annotations

import re

from sqlalchemy import update

from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Membership
from tests.conftest import csrf_token, url


def _set_source(world, user, source):
    with tenant_context(world.acme.id):
        db.session.execute(update(Membership).where(Membership.user_id == user.id).values(role_source=source))
        db.session.commit()


def _row(html: bytes, user) -> bytes:
    m = re.search(rb'<tr id="row-m-' + str(user.id).encode() + rb'".*?</tr>', html, re.S)
    assert m, "row not found"
    return m.group(0)


def test_members_page_badges_directory_managed_roles_only(world, login):
    _set_source(world, world.users["member"], "scim")
    _set_source(world, world.users["viewer"], "sso")
    html = login(world.users["owner"], "acme").get(url("acme", "/members")).data
    assert b"badge--source" in _row(html, world.users["member"]) and b">SCIM<" in _row(html, world.users["member"])
    assert b">SSO<" in _row(html, world.users["viewer"])
    assert b"badge--source" not in _row(html, world.users["manager"])


def test_member_page_says_the_role_comes_from_the_identity_provider(world, login):
    _set_source(world, world.users["member"], "scim")
    c = login(world.users["owner"], "acme")
    html = c.get(url("acme", f"/members/{world.users['member'].id}")).data
    assert b"Given by the identity provider" in html


def test_admin_role_change_makes_a_scim_role_manual(world, login):
    _set_source(world, world.users["member"], "scim")
    c = login(world.users["owner"], "acme")
    r = c.post(
        url("acme", f"/members/{world.users['member'].id}/role"),
        data={"role": "viewer", "csrf_token": csrf_token(c, "acme"), "confirm": "1"},
    )
    assert r.status_code in (200, 302, 303), r.data[:500]
    with tenant_context(world.acme.id):
        db.session.expire_all()
        m = (
            db.session.execute(db.select(Membership).where(Membership.user_id == world.users["member"].id))
            .unique()
            .scalar_one()
        )
        assert (m.role, m.role_source) == ("viewer", "manual")

"""Group → role mappings edited from the SSO portal, for an organization with
SSO and no SCIM: the connection page lists the mappings for SSO sign-ins and
lets an admin add one, change its role (versioned: a stale page is 409) and
remove it; never Owner, never a role the admin could not give (422 beside
the field, nothing written); every change audited. The SCIM settings draw
the same editor (tests/scim/test_settings_page.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db
from app.rbac.group_roles import GroupRoleMapping
from app.scoping import all_organizations, tenant_context
from tests.conftest import csrf_token, url
from tests.sso.conftest import make_connection, post_form


@pytest.fixture
def sso_only(sso_org, oidc_peer):
    """Acme with SSO on its plan but SCIM turned off for it, and a connection."""
    from app.tenancy.models import EntitlementOverride

    with all_organizations(reason="test: SSO without SCIM"):
        db.session.merge(
            EntitlementOverride(organization_id=sso_org.id, name="scim", kind="feature", enabled=False, reason="test")
        )
    db.session.commit()
    db.session.expire_all()
    conn = make_connection(sso_org, oidc_peer)
    return sso_org, conn.id


def _mappings(org):
    with tenant_context(org.id):
        db.session.expire_all()
        return [
            (m.group_name, m.role_key, m.source, m.version)
            for m in db.session.execute(select(GroupRoleMapping).order_by(GroupRoleMapping.group_name))
            .unique()
            .scalars()
        ]


def _actions(org, prefix="role.group"):
    with tenant_context(org.id):
        return [
            a
            for a in db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars()
            if a.startswith(prefix)
        ]


def _add(c, cid, group="Engineering Leads", role="manager", source="sso", key="k1"):
    return post_form(
        c,
        "acme",
        f"/settings/sso/{cid}/mappings",
        {"group": group, "role": role, "source": source, "submit_key": key},
    )


def _mapping_id(org, group):
    with tenant_context(org.id):
        return db.session.execute(select(GroupRoleMapping.id).where(GroupRoleMapping.group_name == group)).scalar_one()


def test_scim_settings_are_off_but_the_connection_page_has_the_editor(app, sso_only, world, login):
    org, cid = sso_only
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/settings/scim/")).status_code == 403
    page = c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert 'id="group-mappings"' in page and "Map group" in page
    assert 'name="source"' in page and "SSO and SCIM" not in page  # no SCIM here: SSO only


def test_admin_adds_changes_and_removes_a_mapping_each_audited(app, sso_only, world, login):
    org, cid = sso_only
    c = login(world.users["admin"], "acme")
    r = _add(c, cid)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/settings/sso/{cid}#group-mappings")
    assert _mappings(org) == [("Engineering Leads", "manager", "sso", 1)]
    page = c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert "Engineering Leads" in page
    mid = _mapping_id(org, "Engineering Leads")
    r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": "viewer", "edit-version": "1"})
    assert r.status_code == 302
    assert _mappings(org) == [("Engineering Leads", "viewer", "sso", 2)]
    r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}/delete")
    assert r.status_code == 302
    assert _mappings(org) == []
    assert _actions(org) == ["role.group_mapped", "role.group_mapping_changed", "role.group_unmapped"]


def test_a_mapping_applies_at_the_next_sso_sign_in(app, client, sso_only, world, login, oidc_peer):
    from tests.sso.conftest import run_sign_in

    org, cid = sso_only
    c = login(world.users["owner"], "acme")
    assert _add(c, cid, group="tenantry-admins", role="admin").status_code == 302
    r = run_sign_in(client, oidc_peer, f"http://localhost/sso/start/{org.id}".replace("localhost", _apex()), "alice")
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    from app.tenancy.models import Membership

    with tenant_context(org.id):
        roles = {
            (m.user.email, m.role, m.role_source) for m in db.session.execute(select(Membership)).unique().scalars()
        }
    assert ("alice@acme.test", "admin", "sso") in roles


def _apex() -> str:
    from tests.conftest import APEX

    return APEX


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"group": ""}, "group", "Enter the group"),
        ({"group": "x" * 300}, "group", "at most"),
        ({"role": "owner"}, "role", "Owner"),
        ({"role": "nope"}, "role", "allowed to give"),
        ({"source": "scim"}, "source", "what the mapping is for"),
        ({"source": "bogus"}, "source", "what the mapping is for"),
    ],
    ids=["empty", "long", "owner", "unknown-role", "scim-here", "bogus-source"],
)
def test_bad_mapping_is_422_beside_the_field_and_saves_nothing(app, sso_only, world, login, data, field, words):
    org, cid = sso_only
    c = login(world.users["owner"], "acme")
    r = _add(c, cid, **data)
    page = r.get_data(as_text=True)
    assert r.status_code == 422, page[:300]
    # The source is a hidden field here (SSO is the one choice): its error is above the form.
    where = 'class="callout callout--danger"' if field == "source" else f'id="{field}-error"'
    assert where in page and words.lower() in page.lower()
    assert _mappings(org) == [] and _actions(org) == []


def test_a_group_already_mapped_is_422(app, sso_only, world, login):
    org, cid = sso_only
    c = login(world.users["owner"], "acme")
    assert _add(c, cid, key="a").status_code == 302
    r = _add(c, cid, group="engineering leads", key="b")
    assert r.status_code == 422 and "already mapped" in r.get_data(as_text=True)
    assert len(_mappings(org)) == 1


def test_changing_to_owner_or_an_ungivable_role_is_422_and_a_stale_change_409(app, sso_only, world, login):
    org, cid = sso_only
    c = login(world.users["owner"], "acme")
    assert _add(c, cid).status_code == 302
    mid = _mapping_id(org, "Engineering Leads")
    for role in ("owner", "nope"):
        r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": role, "edit-version": "1"})
        assert r.status_code == 422
        assert f'id="mapping-role-{mid}-error"' in r.get_data(as_text=True)
    r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": "viewer"})
    assert r.status_code == 422  # no version: refused
    assert (
        post_form(
            c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": "viewer", "edit-version": "1"}
        ).status_code
        == 302
    )
    r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": "member", "edit-version": "1"})
    assert r.status_code == 409
    assert _mappings(org) == [("Engineering Leads", "viewer", "sso", 2)]
    assert _actions(org) == ["role.group_mapped", "role.group_mapping_changed"]


def test_a_manager_cannot_map_and_a_scim_only_mapping_is_not_reachable_here(app, sso_only, world, login):
    org, cid = sso_only
    with tenant_context(org.id):
        db.session.add(GroupRoleMapping(source="scim", group_name="Directory", role="viewer"))
        db.session.commit()
    mid = _mapping_id(org, "Directory")
    c = login(world.users["owner"], "acme")
    assert "Directory" not in c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}/delete").status_code == 404
    r = post_form(c, "acme", f"/settings/sso/{cid}/mappings/{mid}", {"edit-role": "member", "edit-version": "1"})
    assert r.status_code == 404
    m = login(world.users["manager"], "acme")
    assert _add(m, cid).status_code in (403, 404)
    assert _mappings(org) == [("Directory", "viewer", "scim", 1)]


def test_another_organizations_mapping_is_404(app, sso_only, world, login):
    org, cid = sso_only
    with tenant_context(world.globex.id):
        db.session.add(GroupRoleMapping(source="sso", group_name="Globex group", role="viewer"))
        db.session.commit()
    mid = _mapping_id(world.globex, "Globex group")
    c = login(world.users["owner"], "acme")
    r = c.post(url("acme", f"/settings/sso/{cid}/mappings/{mid}/delete"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 404
    assert _mappings(world.globex) == [("Globex group", "viewer", "sso", 1)]

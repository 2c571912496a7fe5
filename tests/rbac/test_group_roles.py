"""Identity-provider groups → roles (``app.rbac.group_roles``): the rule when
several groups match, Owner never given or taken, isolation, and what a
manual change of a directory-managed member does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.errors import UserError
from app.extensions import db
from app.rbac import group_roles
from app.rbac import services as rbac
from app.scoping import tenant_context
from tests.rbac.conftest import make_role, membership


def _map(org, actor_user, source, group, role_key):
    with tenant_context(org.id):
        actor = membership(org, actor_user)
        with tenant_context(org.id):
            m = group_roles.add_mapping(source, group, role_key, actor)
            db.session.commit()
            return m.id


def _role(org, source, groups):
    with tenant_context(org.id):
        info = group_roles.roles_for_groups(org, source, groups)
        return info.key if info else None


def test_highest_ranked_role_wins_whatever_the_order(world):
    o = world.users["owner"]
    _map(world.acme, o, "scim", "Engineering", "member")
    _map(world.acme, o, "scim", "Leads", "manager")
    _map(world.acme, o, "any", "IT-Admins", "admin")
    assert _role(world.acme, "scim", ["Engineering"]) == "member"
    assert _role(world.acme, "scim", ["Engineering", "Leads"]) == "manager"
    assert _role(world.acme, "scim", ["Leads", "Engineering"]) == "manager"
    assert _role(world.acme, "scim", ["engineering", "it-admins", "Leads"]) == "admin"


def test_custom_role_ranks_by_the_permissions_it_grants(world):
    wide = make_role(world.acme, "Wide", sorted(rbac.get_role("member").permissions | {"audit:view"}))
    _map(world.acme, world.users["owner"], "scim", "Staff", "member")
    _map(world.acme, world.users["owner"], "scim", "Auditors", f"custom:{wide.id}")
    assert _role(world.acme, "scim", ["Staff", "Auditors"]) == f"custom:{wide.id}"


def test_source_is_respected_and_any_counts_for_both(world):
    o = world.users["owner"]
    _map(world.acme, o, "sso", "SsoOnly", "admin")
    _map(world.acme, o, "any", "Both", "viewer")
    assert _role(world.acme, "scim", ["SsoOnly"]) is None
    assert _role(world.acme, "sso", ["SsoOnly"]) == "admin"
    assert _role(world.acme, "scim", ["Both"]) == "viewer"
    assert _role(world.acme, "sso", ["Both"]) == "viewer"


def test_no_group_matches_is_none(world):
    assert _role(world.acme, "scim", []) is None
    assert _role(world.acme, "scim", ["Nobody maps this"]) is None


def test_other_org_mappings_are_invisible(world):
    _map(world.globex, world.users["globex_owner"], "scim", "Engineering", "admin")
    assert _role(world.acme, "scim", ["Engineering"]) is None
    assert _role(world.globex, "scim", ["Engineering"]) == "admin"


@pytest.mark.parametrize(
    ("source", "group", "role", "field"),
    [
        ("ldap", "G", "member", "source"),
        ("scim", "   ", "member", "group"),
        ("scim", "x" * 257, "member", "group"),
        ("scim", "G", "owner", "role"),
        ("scim", "G", "no-such-role", "role"),
    ],
)
def test_bad_mapping_is_refused_beside_its_field(world, source, group, role, field):
    with tenant_context(world.acme.id):
        actor = membership(world.acme, world.users["owner"])
        with pytest.raises(UserError) as e:
            group_roles.add_mapping(source, group, role, actor)
        assert e.value.field == field
        db.session.rollback()
        assert group_roles.list_mappings() == []


def test_duplicate_group_is_refused_case_insensitively(world):
    _map(world.acme, world.users["owner"], "scim", "Engineering", "member")
    with tenant_context(world.acme.id):
        actor = membership(world.acme, world.users["owner"])
        with pytest.raises(UserError) as e:
            group_roles.add_mapping("scim", "ENGINEERING", "viewer", actor)
        assert e.value.field == "group"


def test_a_manager_cannot_map_a_group_to_a_role_they_could_not_give(world):
    with tenant_context(world.acme.id):
        actor = membership(world.acme, world.users["manager"])
        with pytest.raises(UserError):
            group_roles.add_mapping("scim", "G", "admin", actor)


def test_mapping_is_audited(world):
    mid = _map(world.acme, world.users["owner"], "scim", "Engineering", "member")
    with tenant_context(world.acme.id):
        ev = db.session.execute(select(AuditEvent).where(AuditEvent.action == "role.group_mapped")).scalar_one()
        assert ev.target_id == str(mid)
        group_roles.delete_mapping(group_roles.find_mapping(mid))
        db.session.commit()
        assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "role.group_unmapped")).scalar_one()


def test_mapped_custom_role_cannot_be_deleted(world):
    r = make_role(world.acme, "Mapped", ["org:view"])
    _map(world.acme, world.users["owner"], "scim", "G", f"custom:{r.id}")
    with tenant_context(world.acme.id):
        role = rbac.custom_role_by_id(r.id)
        with pytest.raises(UserError, match="identity-provider group"):
            rbac.delete_role(role, membership(world.acme, world.users["owner"]))


def test_apply_never_touches_an_owner(world):
    with tenant_context(world.acme.id):
        m = membership(world.acme, world.users["owner"])
        with tenant_context(world.acme.id):
            assert group_roles.apply_mapped_role(m, "scim", rbac.get_role("viewer")) is False
        assert m.role == "owner" and m.role_source == "manual"


def test_manual_change_of_a_scim_managed_member_holds_until_groups_change(world):
    """The documented rule: an admin's change wins (source manual) until the
    directory next applies the member's groups, which restores its role."""
    with tenant_context(world.acme.id):
        m = membership(world.acme, world.users["member"])
        with tenant_context(world.acme.id):
            group_roles.apply_mapped_role(m, "scim", rbac.get_role("manager"), ["Leads"])
            db.session.commit()
    with tenant_context(world.acme.id):
        m = membership(world.acme, world.users["member"])
        assert (m.role, m.role_source) == ("manager", "scim")
        with tenant_context(world.acme.id):
            rbac.change_role(m, "viewer", membership(world.acme, world.users["owner"]))
            db.session.commit()
    with tenant_context(world.acme.id):
        m = membership(world.acme, world.users["member"])
        assert (m.role, m.role_source) == ("viewer", "manual")
        with tenant_context(world.acme.id):
            assert group_roles.apply_mapped_role(m, "scim", rbac.get_role("manager"), ["Leads"]) is True
            db.session.commit()
    m = membership(world.acme, world.users["member"])
    assert (m.role, m.role_source) == ("manager", "scim")

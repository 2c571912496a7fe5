"""Guardrails of roles: no escalation, Owners managed only by Owners, the last
Owner stays, explicit transfer, roles in use are not deleted, unique names.

Services are called inside the organization's context exactly as views call
them; the HTTP tests prove the views answer refusals with 422 and save nothing.
"""

from __future__ import annotations

import pytest

from app import audit
from app.errors import UserError
from app.extensions import db
from app.permissions import SYSTEM_ROLES
from app.rbac import services
from app.scoping import tenant_context
from tests.conftest import csrf_token, url
from tests.factories import add_member, make_user
from tests.rbac.conftest import make_role, membership


@pytest.fixture
def audited(monkeypatch):
    """Audit events recorded during the test (the real recorder still runs)."""
    events = []
    real = audit.record

    def spy(action, *args, **kwargs):
        events.append((action, kwargs))
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", spy)
    return events


def _in(org):
    return tenant_context(org.id)


# --------------------------------------------------------------------------- escalation
def test_admin_cannot_assign_owner(roles_world):
    w = roles_world
    with _in(w.acme):
        actor, target = membership(w.acme, w.users["admin"]), membership(w.acme, w.users["member"])
        assert "owner" not in dict(services.role_choices(actor))
        with pytest.raises(UserError, match="Owner"):
            services.change_role(target, "owner", actor)
    assert membership(w.acme, w.users["member"]).role == "member"


def test_role_choices_exclude_roles_granting_what_the_actor_lacks(roles_world):
    w = roles_world
    limited = make_role(
        w.acme, "Role admin", ["org:view", "members:view", "members:update_role", "roles:view", "roles:manage"]
    )
    small = make_role(w.acme, "Member viewer", ["members:view"])
    u = make_user("ra@acme.test", "Rae Roles")
    add_member(w.acme, u, custom_role_id=limited.id)
    with _in(w.acme):
        choices = dict(services.role_choices(membership(w.acme, u)))
    assert set(choices) == {f"custom:{limited.id}", f"custom:{small.id}"}
    with _in(w.acme):
        owner_choices = dict(services.role_choices(membership(w.acme, w.users["owner"])))
    assert set(owner_choices) >= set(SYSTEM_ROLES) | {f"custom:{w.acme_role.id}"}


def test_custom_role_holder_cannot_assign_a_role_beyond_their_own(roles_world):
    w = roles_world
    limited = make_role(
        w.acme, "Role admin", ["org:view", "members:view", "members:update_role", "roles:view", "roles:manage"]
    )
    u = make_user("ra@acme.test", "Rae Roles")
    add_member(w.acme, u, custom_role_id=limited.id)
    with _in(w.acme):
        actor = membership(w.acme, u)
        target = membership(w.acme, w.users["viewer"])
        with pytest.raises(UserError, match="projects:view"):
            services.change_role(target, "member", actor)
        with pytest.raises(UserError):
            services.change_role(target, f"custom:{w.acme_role.id}", actor)  # grants audit:view


def test_nobody_changes_a_member_more_powerful_than_themselves(roles_world):
    w = roles_world
    limited = make_role(w.acme, "Role admin", ["org:view", "members:view", "members:update_role"])
    u = make_user("ra@acme.test", "Rae Roles")
    add_member(w.acme, u, custom_role_id=limited.id)
    small = make_role(w.acme, "Member viewer", ["members:view"])
    with _in(w.acme), pytest.raises(UserError, match="holds permissions you do not have"):
        services.change_role(membership(w.acme, w.users["manager"]), f"custom:{small.id}", membership(w.acme, u))


def test_custom_role_cannot_be_created_with_permissions_the_actor_lacks(roles_world):
    w = roles_world
    with _in(w.acme), pytest.raises(UserError, match="org:delete") as e:
        services.create_role("Deleter", "", ["org:delete"], membership(w.acme, w.users["admin"]))
    assert e.value.field == "permissions"


def test_custom_role_holder_cannot_edit_a_role_to_grant_more_than_they_hold(roles_world, login):
    w = roles_world
    limited = make_role(w.acme, "Role admin", ["org:view", "roles:view", "roles:manage", "audit:view"])
    target = make_role(w.acme, "Readers", ["org:view"])
    u = make_user("ra@acme.test", "Rae Roles")
    add_member(w.acme, u, custom_role_id=limited.id)
    c = login(u, "acme")
    r = c.post(
        url("acme", f"/roles/{target.id}"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Readers",
            "permissions": ["org:view", "audit:export"],
            "version": "1",
        },
    )
    assert r.status_code == 422
    assert b"audit:export" in r.data
    with _in(w.acme):
        assert services.custom_role_by_id(target.id).permissions == ["org:view"]
    # Within their own permissions it works.
    r = c.post(
        url("acme", f"/roles/{target.id}"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Readers",
            "permissions": ["org:view", "audit:view"],
            "version": "1",
        },
    )
    assert r.status_code == 302


def test_admin_cannot_edit_or_delete_a_role_granting_owner_only_permissions(roles_world):
    w = roles_world
    strong = make_role(w.acme, "Deleters", ["org:view", "org:delete"])
    with _in(w.acme):
        admin = membership(w.acme, w.users["admin"])
        role = services.custom_role_by_id(strong.id)
        with pytest.raises(UserError, match="org:delete"):
            services.update_role(role, "Deleters", "", ["org:view"], admin)
        with pytest.raises(UserError, match="org:delete"):
            services.delete_role(role, admin)


def test_duplicating_owner_leaves_out_what_the_admin_cannot_grant(roles_world, audited):
    w = roles_world
    with _in(w.acme):
        role, dropped = services.duplicate_role("owner", membership(w.acme, w.users["admin"]))
        db.session.commit()
        assert role.name == "Copy of Owner"
        assert dropped == {"org:delete", "org:transfer", "org:export", "members:manage_owners"}
        assert set(role.permissions) == SYSTEM_ROLES["admin"].permissions
    assert audited[-1][0] == "role.created"


# --------------------------------------------------------------------------- owners
def test_only_owners_change_an_owners_role(roles_world):
    w = roles_world
    with _in(w.acme), pytest.raises(UserError, match="Only an Owner"):
        services.change_role(membership(w.acme, w.users["owner"]), "viewer", membership(w.acme, w.users["admin"]))


def test_only_owners_remove_an_owner(roles_world):
    w = roles_world
    second = make_user("owner2@acme.test", "Second Owner")
    add_member(w.acme, second, "owner")
    with _in(w.acme):
        with pytest.raises(UserError, match="Only an Owner"):
            services.check_can_remove(membership(w.acme, second), membership(w.acme, w.users["admin"]))
        services.check_can_remove(membership(w.acme, second), membership(w.acme, w.users["owner"]))


def test_viewer_cannot_remove_anyone(roles_world):
    w = roles_world
    with _in(w.acme), pytest.raises(UserError):
        services.check_can_remove(membership(w.acme, w.users["member"]), membership(w.acme, w.users["viewer"]))


def test_last_owner_cannot_be_demoted_even_by_themselves(roles_world):
    w = roles_world
    with _in(w.acme):
        owner = membership(w.acme, w.users["owner"])
        with pytest.raises(UserError, match="last Owner"):
            services.change_role(owner, "admin", owner)
    assert membership(w.acme, w.users["owner"]).role == "owner"


def test_last_owner_cannot_leave_or_be_removed(roles_world):
    w = roles_world
    with _in(w.acme):
        owner = membership(w.acme, w.users["owner"])
        with pytest.raises(UserError, match="Transfer ownership"):
            services.check_can_remove(owner, owner)


def test_an_owner_may_step_down_when_another_owner_remains(roles_world, audited):
    w = roles_world
    second = make_user("owner2@acme.test", "Second Owner")
    add_member(w.acme, second, "owner")
    with _in(w.acme):
        owner = membership(w.acme, w.users["owner"])
        assert services.change_role(owner, "admin", owner) is True
        db.session.commit()
        last = membership(w.acme, second)
        with pytest.raises(UserError, match="last Owner"):
            services.change_role(last, "admin", last)
    action, kw = audited[-1]
    assert action == "member.role_changed"
    assert kw["before"]["role"] == "Owner" and kw["after"]["role"] == "Admin"


def test_deactivated_owner_does_not_count_as_the_remaining_owner(roles_world):
    w = roles_world
    add_member(w.acme, make_user("gone@acme.test", "Gone Owner"), "owner", status="deactivated")
    with _in(w.acme):
        owner = membership(w.acme, w.users["owner"])
        with pytest.raises(UserError, match="last Owner"):
            services.change_role(owner, "admin", owner)


def test_unknown_or_foreign_role_is_refused(roles_world):
    w = roles_world
    with _in(w.acme):
        actor, target = membership(w.acme, w.users["owner"]), membership(w.acme, w.users["member"])
        for key in ("superuser", "custom:not-a-uuid", f"custom:{w.globex_role.id}", str(w.globex_role.id), ""):
            with pytest.raises(UserError):
                services.change_role(target, key, actor)


def test_change_role_to_the_same_role_changes_nothing(roles_world, audited):
    w = roles_world
    with _in(w.acme):
        assert (
            services.change_role(membership(w.acme, w.users["member"]), "member", membership(w.acme, w.users["admin"]))
            is False
        )
    assert not [a for a, _ in audited if a == "member.role_changed"]


# --------------------------------------------------------------------------- transfer
def test_transfer_makes_the_member_owner_and_the_owner_admin(roles_world, login, audited):
    w = roles_world
    c = login(w.users["owner"], "acme")
    target = w.users["member"]
    r = c.post(url("acme", "/roles/transfer"), data={"csrf_token": csrf_token(c, "acme"), "user_id": str(target.id)})
    assert r.status_code == 200 and b"transfer-confirm" in r.data  # the confirm step, nothing changed yet
    assert membership(w.acme, target).role == "member"
    r = c.post(
        url("acme", "/roles/transfer"),
        data={"csrf_token": csrf_token(c, "acme"), "user_id": str(target.id), "confirm": "yes"},
    )
    assert r.status_code == 302
    assert membership(w.acme, target).role == "owner"
    assert membership(w.acme, w.users["owner"]).role == "admin"
    assert [a for a, _ in audited if a == "org.ownership_transferred"]
    # The former Owner can no longer transfer.
    assert c.get(url("acme", "/roles/transfer")).status_code == 403
    # Isolation: globex's Owner is untouched.
    assert membership(w.globex, w.users["globex_owner"]).role == "owner"


def test_admin_cannot_transfer_ownership(roles_world):
    w = roles_world
    with _in(w.acme), pytest.raises(UserError, match="Only an Owner"):
        services.transfer_ownership(membership(w.acme, w.users["member"]), membership(w.acme, w.users["admin"]))


@pytest.mark.parametrize("user_id", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "SELF", "GLOBEX"])
def test_transfer_bad_input_is_422(roles_world, login, user_id):
    w = roles_world
    user_id = {"SELF": str(w.users["owner"].id), "GLOBEX": str(w.users["globex_owner"].id)}.get(user_id, user_id)
    c = login(w.users["owner"], "acme")
    r = c.post(
        url("acme", "/roles/transfer"), data={"csrf_token": csrf_token(c, "acme"), "user_id": user_id, "confirm": "yes"}
    )
    assert r.status_code == 422
    assert b"field__error" in r.data
    assert membership(w.acme, w.users["owner"]).role == "owner"


# --------------------------------------------------------------------------- deleting, naming
def test_role_in_use_cannot_be_deleted_and_the_members_are_listed(roles_world, login):
    w = roles_world
    add_member(w.acme, make_user("sup@acme.test", "Sue Support"), custom_role_id=w.acme_role.id)
    c = login(w.users["admin"], "acme")
    r = c.post(url("acme", f"/roles/{w.acme_role.id}/delete"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 422
    assert b"Sue Support" in r.data and b"sup@acme.test" in r.data
    with _in(w.acme):
        assert services.custom_role_by_id(w.acme_role.id) is not None


def test_role_held_by_a_deactivated_member_cannot_be_deleted(roles_world):
    w = roles_world
    add_member(w.acme, make_user("old@acme.test", "Old Timer"), custom_role_id=w.acme_role.id, status="deactivated")
    with _in(w.acme), pytest.raises(UserError, match="Old Timer"):
        services.delete_role(services.custom_role_by_id(w.acme_role.id), membership(w.acme, w.users["owner"]))


def test_unused_role_is_deleted_and_audited(roles_world, login, audited):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(url("acme", f"/roles/{w.acme_role.id}/delete"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302
    with _in(w.acme):
        assert services.custom_role_by_id(w.acme_role.id) is None
    action, kw = audited[-1]
    assert action == "role.deleted" and "audit:view" in kw["before"]["permissions"]


@pytest.mark.parametrize("name", ["support", "SUPPORT", "  Support ", "Owner", "admin", "Viewer"])
def test_role_names_are_unique_and_not_system_names(roles_world, login, name):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", "/roles/"), data={"csrf_token": csrf_token(c, "acme"), "name": name, "permissions": ["org:view"]}
    )
    assert r.status_code == 422
    assert b"field__error" in r.data


def test_same_role_name_is_fine_in_another_organization(roles_world, login):
    w = roles_world
    c = login(w.users["globex_owner"], "globex")
    r = c.post(
        url("globex", "/roles/"),
        data={"csrf_token": csrf_token(c, "globex"), "name": "Support", "permissions": ["org:view"]},
    )
    assert r.status_code == 302


def test_renaming_onto_another_roles_name_is_refused(roles_world, login):
    w = roles_world
    other = make_role(w.acme, "Billing", ["billing:view"])
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{other.id}"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "SUPPORT", "permissions": ["billing:view"]},
    )
    assert r.status_code == 422
    with _in(w.acme):
        assert services.custom_role_by_id(other.id).name == "Billing"


def test_deleting_a_custom_role_offered_in_a_pending_invitation_is_refused(world, login):
    """A pending invitation holds the role too: deleting it must say so, not fail."""
    from datetime import timedelta

    from app.extensions import db
    from app.members.models import Invitation
    from app.rbac import services
    from app.rbac.models import Role
    from app.scoping import tenant_context
    from app.util import utcnow

    with tenant_context(world.acme.id):
        role = Role(organization_id=world.acme.id, name="Temp", permissions=["projects:view"])
        db.session.add(role)
        db.session.flush()
        db.session.add(
            Invitation(
                organization_id=world.acme.id,
                email="later@example.test",
                custom_role_id=role.id,
                token_hash="0" * 64,
                invited_by=world.users["owner"].id,
                expires_at=utcnow() + timedelta(days=7),
            )
        )
        db.session.commit()
        with pytest.raises(UserError, match="later@example.test"):
            services.delete_role(role)
        db.session.rollback()


def test_a_role_another_area_says_is_in_use_is_not_deleted(roles_world):
    """rbac asks ``hooks.role_in_use``; any area (SSO group mappings, say) may answer."""
    from app import hooks

    w = roles_world
    with hooks.role_in_use.connected(lambda role: f"{role.name} is mapped from the IdP group admins."):
        with _in(w.acme), pytest.raises(UserError, match="mapped from the IdP group admins"):
            services.delete_role(services.custom_role_by_id(w.acme_role.id), membership(w.acme, w.users["owner"]))
    with _in(w.acme):
        assert services.custom_role_by_id(w.acme_role.id) is not None

"""The roles pages: listing with counts, the permission editor (plain and
HTMX), assignment, "why can they?", bad input and other organizations' ids."""

from __future__ import annotations

import re

import pytest

from app.permissions import PERMISSIONS
from app.rbac import services
from app.scoping import tenant_context
from tests.conftest import csrf_token, url
from tests.factories import add_member, make_user
from tests.rbac.conftest import make_role, membership

HX = {"HX-Request": "true"}


def test_roles_page_lists_system_and_custom_roles_with_member_counts(roles_world, login):
    w = roles_world
    add_member(w.acme, make_user("s1@acme.test", "S One"), custom_role_id=w.acme_role.id)
    add_member(w.acme, make_user("s2@acme.test", "S Two"), custom_role_id=w.acme_role.id)
    r = login(w.users["manager"], "acme").get(url("acme", "/roles/"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    counts = dict(re.findall(r'data-role="([^"]+)".*?data-member-count>(\d+)<', html, re.S))
    assert counts == {
        "owner": "1",
        "admin": "1",
        "manager": "1",
        "member": "2",
        "viewer": "1",
        f"custom:{w.acme_role.id}": "2",
    }
    assert "Globex secret role" not in html  # isolation


def test_role_page_shows_permissions_and_members(roles_world, login):
    w = roles_world
    add_member(w.acme, make_user("sue@acme.test", "Sue Support"), custom_role_id=w.acme_role.id)
    r = login(w.users["admin"], "acme").get(url("acme", f"/roles/{w.acme_role.id}"))
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Sue Support" in html and 'class="perm-grid"' in html
    assert 'data-permission="audit:view"' in html
    assert "Add member to this role" in html


def test_system_role_page_and_no_editor_for_it(roles_world, login):
    c = login(roles_world.users["admin"], "acme")
    r = c.get(url("acme", "/roles/manager"))
    assert r.status_code == 200 and b"Acme Manager" in r.data
    assert c.get(url("acme", "/roles/manager/edit")).status_code == 404
    assert (
        c.post(url("acme", "/roles/manager"), data={"csrf_token": csrf_token(c, "acme"), "name": "X"}).status_code
        == 404
    )
    assert c.post(url("acme", "/roles/manager/delete"), data={"csrf_token": csrf_token(c, "acme")}).status_code == 404


def test_editor_grid_has_every_offered_permission_with_a_focusable_description(roles_world, login):
    w = roles_world
    html = login(w.users["admin"], "acme").get(url("acme", f"/roles/{w.acme_role.id}/edit")).get_data(as_text=True)
    with tenant_context(w.acme.id):
        offered = [p for p in PERMISSIONS if p.name in services.offered_permissions(w.acme)]
    for p in offered:
        pid = "perm-" + p.name.replace(":", "-").replace("_", "-")
        assert f'id="{pid}" name="permissions" value="{p.name}"' in html
        assert f'aria-describedby="{pid}-desc"' in html
        assert f'id="{pid}-desc">{p.description}<' in html.replace("&#39;", "'")
    assert html.count('name="permissions"') == len(offered)
    # System roles are beside it, read only.
    for name in ("Owner", "Admin", "Manager", "Member", "Viewer"):
        assert f">{name}</span></th>" in html


def test_create_role_then_it_appears(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", "/roles/"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Auditor",
            "description": "Reads the log",
            "permissions": ["audit:view", "members:view"],
        },
    )
    assert r.status_code == 302
    with tenant_context(w.acme.id):
        role = next(i for i in services.all_roles() if i.name == "Auditor")
    assert role.permissions == {"audit:view", "members:view"}
    assert f"/roles/{role.role.id}" in r.headers["Location"]


def test_saving_with_htmx_swaps_the_editor_and_says_what_changed(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}"),
        headers=HX,
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Support",
            "description": "Answers customers",
            "permissions": ["org:view", "members:view", "projects:view"],
            "version": "1",
        },
    )
    assert r.status_code == 200
    assert "HX-Request" in r.headers.get("Vary", "")
    html = r.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<form id="role-editor"')
    assert "Added projects:view; removed audit:view" in html
    assert html.count("is-changed") == 2
    with tenant_context(w.acme.id):
        assert set(services.custom_role_by_id(w.acme_role.id).permissions) == {
            "org:view",
            "members:view",
            "projects:view",
        }


def test_saving_without_js_redirects_with_the_summary(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Support",
            "description": "Answers customers",
            "permissions": ["org:view", "members:view", "audit:view", "audit:export"],
            "version": "1",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert b"Saved Support. Added audit:export." in r.data


def test_editor_bad_input_with_htmx_is_a_422_fragment(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}"),
        headers=HX,
        data={"csrf_token": csrf_token(c, "acme"), "name": "", "permissions": ["audit:view"]},
    )
    assert r.status_code == 422 and b"<html" not in r.data and b"Give the role a name." in r.data


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": ""}, b"Give the role a name."),
        ({"name": "x" * 65}, b"at most 64"),
        ({"name": "Fine", "permissions": ["nope:nothing"]}, b"nope:nothing"),
        ({"name": "Fine", "permissions": ["org:delete"]}, b"org:delete"),
        ({"name": "Fine", "description": "d" * 501}, b"at most 500"),
        ({"name": "Owner"}, b"system role"),
        ({"name": "support"}, b"already has this name"),
    ],
)
@pytest.mark.parametrize("target", ["create", "update"])
def test_role_form_bad_input_is_422_and_saves_nothing(roles_world, login, data, message, target):
    w = roles_world
    c = login(w.users["admin"], "acme")
    path = "/roles/" if target == "create" else f"/roles/{make_role(w.acme, 'Other', ['org:view']).id}"
    r = c.post(url("acme", path), data={"csrf_token": csrf_token(c, "acme"), "version": "1", **data})
    assert r.status_code == 422, r.status_code
    assert message in r.data.replace(b"&#39;", b"'")
    with tenant_context(w.acme.id):
        assert {i.name for i in services.all_roles() if not i.system} == {"Support"} | (
            {"Other"} if target == "update" else set()
        )


@pytest.mark.parametrize("user_id", ["", "junk", "00000000-0000-0000-0000-000000000000", "GLOBEX"])
def test_assign_bad_input_is_422(roles_world, login, user_id):
    w = roles_world
    user_id = str(w.users["globex_member"].id) if user_id == "GLOBEX" else user_id
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}/members"), data={"csrf_token": csrf_token(c, "acme"), "user_id": user_id}
    )
    assert r.status_code == 422 and b"field__error" in r.data
    assert membership(w.globex, w.users["globex_member"]).role == "member"


def test_assign_gives_the_member_the_role(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}/members"),
        data={"csrf_token": csrf_token(c, "acme"), "user_id": str(w.users["viewer"].id)},
    )
    assert r.status_code == 302
    m = membership(w.acme, w.users["viewer"])
    assert m.role is None and m.custom_role_id == w.acme_role.id


def test_assign_refusal_is_422_with_the_reason(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", "/roles/viewer/members"),
        data={"csrf_token": csrf_token(c, "acme"), "user_id": str(w.users["owner"].id)},
    )
    assert r.status_code == 422 and b"Only an Owner" in r.data
    assert membership(w.acme, w.users["owner"]).role == "owner"


def test_assign_owner_is_refused_to_admin(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(
        url("acme", "/roles/owner/members"),
        data={"csrf_token": csrf_token(c, "acme"), "user_id": str(w.users["member"].id)},
    )
    assert r.status_code == 422
    assert membership(w.acme, w.users["member"]).role == "member"


@pytest.mark.parametrize(
    "method, suffix",
    [
        ("GET", ""),
        ("GET", "/edit"),
        ("POST", ""),
        ("POST", "/duplicate"),
        ("GET", "/delete"),
        ("POST", "/delete"),
        ("POST", "/members"),
    ],
)
def test_other_organizations_role_is_404(roles_world, login, method, suffix):
    w = roles_world
    c = login(w.users["owner"], "acme")
    for key in (w.globex_role.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        r = c.open(
            url("acme", f"/roles/{key}{suffix}"),
            method=method,
            data={"csrf_token": csrf_token(c, "acme"), "name": "Hijack", "user_id": str(w.users["member"].id)},
        )
        assert r.status_code == 404, (key, r.status_code)
    with tenant_context(w.globex.id):
        assert services.custom_role_by_id(w.globex_role.id).name == "Globex secret role"


def test_why_page_lists_each_permission_and_the_granting_role(roles_world, login):
    w = roles_world
    sue = make_user("sue@acme.test", "Sue Support")
    add_member(w.acme, sue, custom_role_id=w.acme_role.id)
    r = login(w.users["manager"], "acme").get(url("acme", f"/roles/members/{sue.id}"))
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    rows = [
        (perm, re.findall(r"<td>(?:<a [^>]*>)?([^<]+)<", row)[-1])
        for perm, row in re.findall(r'<tr data-permission="([^"]+)">(.*?)</tr>', html, re.S)
    ]
    perms = {p for p, _ in rows}
    assert perms == {"org:view", "members:view", "audit:view"}
    assert {name for _, name in rows} == {"Support"}


def test_why_page_for_another_organizations_member_is_404(roles_world, login):
    w = roles_world
    c = login(w.users["owner"], "acme")
    assert c.get(url("acme", f"/roles/members/{w.users['globex_member'].id}")).status_code == 404
    assert c.get(url("acme", "/roles/members/junk")).status_code == 404


def test_explain_matches_the_permissions_require_checks(roles_world):
    w = roles_world
    with tenant_context(w.acme.id):
        for key in ("owner", "admin", "manager", "member", "viewer"):
            m = membership(w.acme, w.users[key])
            assert {p for p, _ in services.explain(m)} == m.permissions


def test_duplicate_redirects_to_the_editor_of_the_copy(roles_world, login):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = c.post(url("acme", "/roles/manager/duplicate"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302 and r.headers["Location"].endswith("/edit")
    r = c.post(url("acme", "/roles/manager/duplicate"), data={"csrf_token": csrf_token(c, "acme")})
    with tenant_context(w.acme.id):
        names = {i.name for i in services.all_roles() if not i.system}
    assert {"Copy of Manager", "Copy of Manager (2)"} <= names


# --------------------------------------------------------------------------- enforcement of custom roles
def test_custom_role_permissions_are_what_require_checks(roles_world, login):
    w = roles_world
    auditor = make_role(w.acme, "Auditor only", ["audit:view"])
    u = make_user("aud@acme.test", "Audrey Auditor")
    add_member(w.acme, u, custom_role_id=auditor.id)
    c = login(u, "acme")
    for path in ("/dashboard", "/roles/", f"/roles/{w.acme_role.id}", "/roles/transfer", f"/roles/members/{u.id}"):
        assert c.get(url("acme", path)).status_code == 403, path
    r = c.post(
        url("acme", "/roles/"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "Mine", "permissions": ["audit:view"]},
    )
    assert r.status_code == 403
    # Granting roles:view through the custom role opens exactly that.
    with tenant_context(w.acme.id):
        services.update_role(
            services.custom_role_by_id(auditor.id),
            None,
            None,
            ["audit:view", "roles:view"],
            membership(w.acme, w.users["owner"]),
        )
        from app.extensions import db

        db.session.commit()
    assert c.get(url("acme", "/roles/")).status_code == 200
    assert c.get(url("acme", "/dashboard")).status_code == 403


def test_sidenav_shows_roles_only_to_holders_of_roles_view(roles_world, login):
    w = roles_world
    assert b'href="/roles/"' in login(w.users["manager"], "acme").get(url("acme", "/dashboard")).data
    assert b'href="/roles/"' not in login(w.users["member"], "acme").get(url("acme", "/dashboard")).data

"""The permission editor offers only permissions of features that exist (and
that the organization's plan includes); a role cannot be given another."""

from __future__ import annotations

import re
from dataclasses import replace

from app.permissions import ALL, PERMISSIONS
from app.rbac import services
from app.scoping import tenant_context
from app.web.access import access_of
from tests.conftest import csrf_token, url
from tests.rbac.conftest import make_role

# Permissions of features not built yet (no view requires them).
NOT_BUILT = {"projects:export"}


def _checkboxes(html: str) -> set[str]:
    return set(re.findall(r'name="permissions" value="([^"]+)"', html))


def _required_by_views(app) -> set[str]:
    names = set()
    for view in app.view_functions.values():
        access = access_of(view) or {}
        if access.get("kind") == "permission":
            names.update(access["permissions"])
    return names


def test_offered_permissions_are_those_some_view_or_service_enforces(app, world):
    from app.tenancy import entitlements

    with tenant_context(world.acme.id):
        offered = services.offered_permissions(world.acme)
    # A permission of a plan feature acme lacks (settings:sso: Enterprise) is not offered either.
    lacking = {p.name for p in PERMISSIONS if p.feature and not entitlements.entitled(world.acme, p.feature)}
    assert offered == ((_required_by_views(app) | {"members:manage_owners"}) & ALL) - lacking
    assert not offered & NOT_BUILT


def test_editor_shows_only_offered_permissions(roles_world, login):
    c = login(roles_world.users["owner"], "acme")
    for path in ("/roles/new", f"/roles/{roles_world.acme_role.id}/edit"):
        html = c.get(url("acme", path)).get_data(as_text=True)
        shown = _checkboxes(html)
        assert {"projects:create", "audit:export", "roles:manage", "members:manage_owners"} <= shown, path
        assert not shown & NOT_BUILT, path
        assert "projects:export" not in html, path
    # The read-only grid of a role compares only offered permissions too.
    html = c.get(url("acme", "/roles/owner")).get_data(as_text=True)
    assert "projects:create" in html and "projects:export" not in html


def test_creating_a_role_with_a_permission_not_offered_is_422_and_creates_nothing(roles_world, login):
    c = login(roles_world.users["owner"], "acme")
    r = c.post(
        url("acme", "/roles/"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "Analysts", "permissions": ["org:view", "projects:export"]},
    )
    assert r.status_code == 422
    assert b"Not available in this organization" in r.data and b"projects:export" in r.data
    with tenant_context(roles_world.acme.id):
        assert "Analysts" not in {i.name for i in services.all_roles()}


def test_saving_a_role_with_a_permission_not_offered_is_422_and_changes_nothing(roles_world, login):
    w = roles_world
    c = login(w.users["owner"], "acme")
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Support",
            "permissions": ["org:view", "projects:export"],
            "version": "1",
        },
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 422 and b"projects:export" in r.data
    with tenant_context(w.acme.id):
        assert services.custom_role_by_id(w.acme_role.id).permissions == w.acme_role.permissions


def test_a_permission_no_longer_offered_is_kept_by_a_save_not_dropped_unseen(roles_world, login):
    w = roles_world
    legacy = make_role(w.acme, "Legacy", ["org:view", "projects:export"])
    c = login(w.users["owner"], "acme")
    r = c.post(
        url("acme", f"/roles/{legacy.id}"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "name": "Legacy",
            "permissions": ["org:view", "audit:view"],
            "version": "1",
        },
    )
    assert r.status_code == 302
    with tenant_context(w.acme.id):
        assert services.custom_role_by_id(legacy.id).permissions == ["org:view", "audit:view", "projects:export"]


def test_a_permission_whose_feature_the_plan_lacks_is_not_offered(roles_world, login, monkeypatch):
    """Once plans carry features: a permission naming one is offered only
    where ``entitled(org, feature)`` (acme is on "pro", globex on "free")."""
    gated = tuple(replace(p, feature="audit_export") if p.name == "audit:export" else p for p in PERMISSIONS)
    monkeypatch.setattr(services, "PERMISSIONS", gated)
    monkeypatch.setattr(services, "entitled", lambda org, feature: org.plan_key == "pro")
    w = roles_world
    with tenant_context(w.acme.id):
        assert "audit:export" in services.offered_permissions(w.acme)
    globex = login(w.users["globex_owner"], "globex")
    assert "audit:export" not in _checkboxes(globex.get(url("globex", "/roles/new")).get_data(as_text=True))
    r = globex.post(
        url("globex", "/roles/"),
        data={"csrf_token": csrf_token(globex, "globex"), "name": "Exporters", "permissions": ["audit:export"]},
    )
    assert r.status_code == 422 and b"audit:export" in r.data

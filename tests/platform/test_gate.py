"""The console is gated once: every /platform URL is 404 for anyone who is
not a super-admin on the apex. The URLs come from the url map, so a route
added later is covered the day it is registered."""

from __future__ import annotations

import uuid

import pytest

from app.web.access import access_of
from tests.conftest import csrf_token, url

IGNORED = {"HEAD", "OPTIONS"}


def _open(client, slug, method, path):
    """The request as a browser with a valid session sends it: POSTs carry a
    CSRF token, so what answers is the gate, not the CSRF check (which
    refuses a token-less POST with 400 before any view-level hook runs)."""
    data = {"csrf_token": csrf_token(client, slug)} if method != "GET" else None
    return client.open(url(slug, path), method=method, data=data)


def platform_routes(app):
    """``(method, path)`` for every /platform rule, variables filled with a real-looking id."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/platform"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", str(uuid.uuid4())).replace(f"<int:{arg}>", "1")
        for method in sorted(rule.methods - IGNORED):
            out.append((rule.endpoint, method, path))
    return out


def test_every_platform_url_is_404_for_an_organization_owner(app, world, login):
    owner = world.users["owner"]
    for slug in (None, "acme"):
        client = login(owner, slug)
        for endpoint, method, path in platform_routes(app):
            if endpoint == "platform.stop_impersonating":
                continue  # refused for a session that is not a support session: see below
            r = _open(client, slug, method, path)
            assert r.status_code == 404, f"{method} {path} on {slug or 'apex'}: {r.status_code}"


def test_every_platform_url_is_404_for_anonymous_visitors(app, world, client):
    for _endpoint, method, path in platform_routes(app):
        r = _open(client, None, method, path)
        assert r.status_code == 404, f"{method} {path}: {r.status_code}"


def test_stop_impersonating_is_404_outside_a_support_session(app, world, login):
    client = login(world.users["owner"])
    r = _open(client, None, "POST", "/platform/impersonation/stop")
    assert r.status_code == 404


def test_super_admin_reaches_the_console_on_the_apex_only(app, world, login, superadmin):
    f_member = superadmin  # a super-admin who is also a member of acme
    from tests import factories as f

    f.add_member(world.acme, f_member, "member")
    assert login(superadmin).get(url(None, "/platform/")).status_code == 200
    assert login(superadmin, "acme").get(url("acme", "/platform/")).status_code == 404


def test_every_platform_view_declares_its_access_through_the_blueprint(app):
    """Each console view is declared by the blueprint (kind login, platform),
    and no view outside it claims the platform marker."""
    for rule in app.url_map.iter_rules():
        access = access_of(app.view_functions[rule.endpoint]) or {}
        if rule.endpoint.startswith("platform."):
            assert access.get("kind") == "login" and access.get("platform"), rule.endpoint
        else:
            assert not access.get("platform"), rule.endpoint


@pytest.mark.parametrize("who", ["owner", "member"])
def test_console_link_is_shown_to_super_admins_only(app, world, login, superadmin, who):
    assert "Platform console" in login(superadmin).get(url(None, "/account")).get_data(as_text=True)
    assert "Platform console" not in login(world.users[who]).get(url(None, "/account")).get_data(as_text=True)


def test_stop_impersonating_is_404_for_a_super_admin_outside_a_support_session(console, world):
    r = _open(console, None, "POST", "/platform/impersonation/stop")
    assert r.status_code == 404


def _post_without_token(client, slug, path):
    return client.post(url(slug, path), data={"reason": "no token"})


def test_a_post_without_csrf_token_is_404_for_anyone_but_a_super_admin(app, world, login, client):
    """The gate answers before the CSRF check: a token-less POST from an
    owner or an anonymous visitor is the same 404 as any unknown URL (a 400
    would tell them the console's URL exists)."""
    owner = login(world.users["owner"])
    for who, c in (("owner", owner), ("anonymous", client)):
        for endpoint, method, path in platform_routes(app):
            if method != "POST" or endpoint == "platform.stop_impersonating" and who == "owner":
                continue
            r = _post_without_token(c, None, path)
            assert r.status_code == 404, f"{who}: POST {path} without a token: {r.status_code}"


def test_a_super_admins_post_without_csrf_token_is_refused_and_changes_nothing(console, world, org_row):
    """Past the gate the CSRF check still runs: no token, 400, the
    organization untouched."""
    before = org_row(world.acme.id)
    r = _post_without_token(console, None, f"/platform/organizations/{world.acme.id}/suspend")
    assert r.status_code == 400
    assert org_row(world.acme.id)["status"] == before["status"] == "active"

"""The navigation registry: each area declares its links, its entity pages and
its dashboard figure; the side navigation, the organization's landing page,
the audit viewer and the dashboard read them."""

from __future__ import annotations

import re

import pytest
from flask import url_for

from app.extensions import db
from app.rbac.models import Role
from app.scoping import tenant_context
from app.web import nav
from tests import factories as f
from tests.conftest import url

SIDENAV = re.compile(r'<nav class="sidenav".*?</nav>', re.S)


def _nav_hrefs(client) -> list[str]:
    html = client.get(url("acme", "/switcher")).get_data(as_text=True)  # any page of the organization
    block = SIDENAV.search(html)
    return re.findall(r'href="([^"]+)"', block.group(0)) if block else []


def _custom_member(world, permissions: list[str]):
    with tenant_context(world.acme.id):
        role = Role(organization_id=world.acme.id, name="Custom " + "+".join(permissions), permissions=permissions)
        db.session.add(role)
        db.session.commit()
        role_id = role.id
    user = f.make_user()
    f.add_member(world.acme, user, custom_role_id=role_id)
    return user


def _registered_link_urls(app) -> list[str]:
    with app.test_request_context(base_url="http://acme.tenantry.localhost"):
        return [url_for(x.endpoint) for x in nav._registry(app).links]


CUSTOM = [
    ["audit:view", "members:view"],  # an auditor: no dashboard
    ["org:delete"],  # may open the settings page (the danger zone) and nothing else
    ["settings:branding"],  # no page of its own yet: no link at all
    ["roles:view", "audit:view"],
]


@pytest.mark.parametrize("who", ["owner", "admin", "manager", "member", "viewer", *map("+".join, CUSTOM)])
def test_side_nav_shows_exactly_the_links_the_role_may_open(world, login, app, who):
    user = world.users[who] if who in world.users else _custom_member(world, who.split("+"))
    c = login(user, "acme")
    may_open = [u for u in _registered_link_urls(app) if c.get(url("acme", u)).status_code == 200]
    shown = _nav_hrefs(c)
    assert sorted(shown) == sorted(may_open)
    # The organization's root lands on the first link shown, or the picker when there is none.
    r = c.get(url("acme", "/"))
    assert r.status_code == 302
    if shown:
        assert r.headers["Location"] == shown[0]
    else:
        assert r.headers["Location"].endswith("/?pick=1")


def test_links_follow_the_declared_order_within_sections(world, login):
    assert _nav_hrefs(login(world.users["owner"], "acme")) == [
        "/dashboard",
        "/projects/",
        "/analytics/",
        "/members",
        "/roles/",
        "/audit/",
        "/reports/",
        "/reviews/",
        "/webhooks/",
        "/api-keys/",
        "/settings/",
    ]


def test_the_current_area_is_marked(world, login):
    c = login(world.users["owner"], "acme")
    html = c.get(url("acme", "/projects/new")).get_data(as_text=True)
    block = SIDENAV.search(html).group(0)
    assert re.search(r'class="sidenav__link is-active" href="/projects/" aria-current="page"', block)
    assert block.count('aria-current="page"') == 1


def test_every_declared_link_and_entity_page_is_a_registered_route(app):
    registry = nav._registry(app)
    for x in registry.links:
        assert x.endpoint in app.view_functions
    with app.test_request_context(base_url="http://acme.tenantry.localhost"):
        for kind in registry.entity_pages:
            assert nav.entity_url(kind, "00000000-0000-0000-0000-000000000001"), kind


def test_entity_pages_come_from_the_areas(app):
    pid = "5b3a1d1e-0000-4000-8000-000000000000"
    with app.test_request_context(base_url="http://acme.tenantry.localhost"):
        assert nav.entity_url("project", pid) == f"/projects/{pid}"
        assert nav.entity_url("user", pid) == f"/members/{pid}"
        assert nav.entity_url("invitation", pid) == "/members?status=invited"
        assert nav.entity_url("organization", pid) == "/settings/general"
        assert nav.entity_url("session", pid) is None  # no area has a page for it


def test_dashboard_shows_each_areas_figure(world, login):
    html = login(world.users["viewer"], "acme").get(url("acme", "/dashboard")).get_data(as_text=True)
    figures = re.findall(r'stat__label">([^<]+)</div><div class="stat__value">([^<]+)</div>', html)
    assert figures == [("Seats used", "6"), ("Active projects", "3"), ("Plan", "Pro")]
    assert "of 250 seats" in html and "600 API requests/min" in html

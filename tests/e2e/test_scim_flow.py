"""Real Chromium and a real HTTP SCIM client: an admin creates a SCIM token
in Settings → SCIM provisioning and copies it; the identity provider (here,
requests) provisions a new hire, who shows on the members page with a SCIM
badge, then deactivates a member who is signed in, in another browser:
their next page request is refused and they are signed out."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.helpers import check_a11y, sign_in
from tests.scim.conftest import PATCH_SCHEMA, SCIM, USER_SCHEMA, set_plan

pytestmark = pytest.mark.e2e


def _scim(live_server, token: str, method: str, path: str, body=None):
    # Straight to the served port with the organization's Host, as the identity provider sends it.
    return requests.request(
        method,
        f"http://127.0.0.1:{live_server.port}/scim/v2{path}",
        json=body,
        headers={
            "Host": f"acme.localhost:{live_server.port}",
            "Authorization": f"Bearer {token}",
            "Content-Type": SCIM,
        },
        timeout=10,
    )


def test_scim_deactivation_signs_out_a_signed_in_member(page, browser, live_server, world, owner_engine, shot):
    set_plan(owner_engine, world.acme, "enterprise")
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", "/settings/"))
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="SCIM provisioning").click()
    expect(page.get_by_role("heading", name="No tokens yet")).to_be_visible()
    check_a11y(page, "SCIM settings, no token")
    page.get_by_label("Name", exact=True).fill("Okta production")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Copy the token now")).to_be_visible()
    token = page.locator("#scim-token").input_value()
    assert token.startswith("scim_")
    shot(page, "token-created")

    # The member signs in, in a browser of their own.
    other = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    member = other.new_page()
    sign_in(member, live_server, "member@acme.test")
    member.goto(live_server.org_url("acme", "/projects/"))
    expect(member.get_by_role("heading", name="Projects", exact=True)).to_be_visible()

    # The identity provider provisions a new hire and matches the member by e-mail.
    hire = _scim(
        live_server,
        token,
        "POST",
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "newhire@example.com", "displayName": "Nina Newhire"},
    )
    assert hire.status_code == 201, hire.text
    found = _scim(live_server, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "member@acme.test"})
    assert found.status_code == 201, found.text
    page.goto(live_server.org_url("acme", "/members"))
    row = page.locator("tr", has_text="newhire@example.com")
    expect(row.locator(".badge--source")).to_have_text("SCIM")
    shot(page, "members-with-scim-badge")

    # Deprovisioned: active false. The member's very next request is refused.
    off = _scim(
        live_server,
        token,
        "PATCH",
        f"/Users/{found.json()['id']}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert off.status_code in (200, 204), off.text
    member.goto(live_server.org_url("acme", "/projects/"))
    expect(member).to_have_url(re.compile(r"/login"))
    expect(member.get_by_text("Acme Project 0")).to_have_count(0)
    shot(member, "member-signed-out")
    other.close()

    page.goto(live_server.org_url("acme", "/members?status=deactivated"))
    expect(page.locator("tr", has_text="member@acme.test").locator(".badge--deactivated")).to_be_visible()

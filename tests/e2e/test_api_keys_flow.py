"""Real Chromium on the API keys page, and a real HTTP client on the API: an
admin creates a key with two scopes and copies it (the Copy button, through
the clipboard); the client lists members,
is refused a third scope's endpoint, hits the rate limit (429 with
Retry-After); the admin revokes the key and the next call is 401."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.helpers import check_a11y, sign_in

pytestmark = pytest.mark.e2e


def _call(live_server, key: str, path: str):
    # Straight to the served port with the organization's Host: the same
    # request a program on another machine sends to acme's host.
    return requests.get(
        f"http://127.0.0.1:{live_server.port}/api/v1{path}",
        headers={"Host": f"acme.localhost:{live_server.port}", "Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_admin_creates_a_key_a_client_uses_it_until_it_is_revoked(page, live_server, world, shot, monkeypatch):
    monkeypatch.setitem(live_server.app.config, "API_KEY_REQUESTS_PER_MINUTE", 5)
    sign_in(page, live_server, "admin@acme.test")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    check_a11y(page, "API keys, empty")
    page.get_by_role("link", name="New API key").first.click()
    page.get_by_label("Name", exact=True).fill("Reporting script")
    page.locator("#scope-members-view").check()
    page.locator("#scope-projects-view").check()
    check_a11y(page, "new API key")
    shot(page, "new-key")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.org_url("acme", ""))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    key = page.evaluate("navigator.clipboard.readText()")
    assert key.startswith("tnt_") and key == page.locator("#api-key").input_value()
    shot(page, "created")

    r = _call(live_server, key, "/members")
    assert r.status_code == 200, r.text
    assert "admin@acme.test" in {m["email"] for m in r.json()["data"]}
    r = _call(live_server, key, "/roles")  # roles:view was not given
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/problem+json"
    codes = [_call(live_server, key, "/projects").status_code for _ in range(4)]
    assert codes[-1] == 429, codes
    r = _call(live_server, key, "/projects")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.json()["status"] == 429

    page.get_by_role("link", name="I have copied it").click()
    row = page.locator("#api-keys tbody tr", has_text="Reporting script")
    expect(row).to_contain_text("members:view")
    shot(page, "list")
    row.get_by_role("button", name="Revoke Reporting script").click()
    expect(page.get_by_text("revoked").first).to_be_visible()
    shot(page, "revoked")
    r = _call(live_server, key, "/members")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]

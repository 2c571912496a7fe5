"""Real Chromium on the settings pages: an admin sets a colour (a pale one is
refused with its contrast ratio) and a logo, and sees both applied on the
organization's pages; then sets an IP allowlist, and a request from another
address (``X-Forwarded-For`` behind ``TRUSTED_PROXIES``) gets the page naming
the policy. axe-core checks every step (``shot``)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.e2e.helpers import sign_in
from tests.settings.images import png

pytestmark = pytest.mark.e2e


def test_admin_brands_the_organization_and_the_allowlist_blocks_another_address(
    page, live_server, world, shot, monkeypatch
):
    # What create_app does with TRUSTED_PROXIES=1: the client address comes from X-Forwarded-For.
    monkeypatch.setitem(live_server.app.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setattr(live_server.app, "wsgi_app", ProxyFix(live_server.app.wsgi_app, x_for=1, x_proto=1, x_host=1))

    sign_in(page, live_server, "admin@acme.test")
    page.get_by_role("link", name="Settings").click()
    nav = page.get_by_role("navigation", name="Settings sections")
    nav.get_by_role("link", name="Branding").click()

    page.get_by_label("Primary colour").fill("#ffeb3b")
    page.get_by_role("button", name="Save colour").click()
    expect(page.locator("#colour-error")).to_contain_text("4.5:1")
    shot(page, "pale-colour-refused")

    page.get_by_label("Primary colour").fill("#1d4ed8")
    page.get_by_role("button", name="Save colour").click()
    expect(page.get_by_text("Colour saved.")).to_be_visible()
    page.get_by_label("Logo").set_input_files({"name": "logo.png", "mimeType": "image/png", "buffer": png(120, 40)})
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_text("Logo saved.")).to_be_visible()
    shot(page, "branding-saved")

    page.get_by_role("link", name="Projects").click()
    logo = page.get_by_test_id("org-logo")
    expect(logo).to_be_visible()
    assert page.evaluate("() => document.querySelector('[data-testid=org-logo]').naturalWidth") == 120
    accent = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
    assert accent == "#1d4ed8"
    shot(page, "branding-applied")

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Security").click()
    expect(page.get_by_test_id("my-address")).to_have_text("127.0.0.1")
    page.get_by_label("IP allowlist").fill("127.0.0.1\n2001:db8::/32")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Security policy saved.")).to_be_visible()
    shot(page, "allowlist-saved")

    page.set_extra_http_headers({"X-Forwarded-For": "198.51.100.7"})
    page.goto(live_server.org_url("acme", "/projects/"))
    expect(page.get_by_test_id("ip-blocked")).to_contain_text("IP allowlist")
    expect(page.get_by_test_id("ip-blocked")).to_contain_text("198.51.100.7")
    shot(page, "blocked-by-allowlist")


def test_every_settings_page_passes_axe_in_light_and_dark(page, live_server, world, shot):
    """Each section as the Owner sees it (branded, so the theme stylesheet is
    in force), with an error shown beside a field, in both colour schemes."""
    from tests.e2e.helpers import check_a11y

    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/settings/branding"))
    page.get_by_label("Primary colour").fill("#0f766e")
    page.get_by_role("button", name="Save colour").click()
    expect(page.get_by_text("Colour saved.")).to_be_visible()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for path in (
            "/settings/",
            "/settings/general",
            "/settings/branding",
            "/settings/security",
            "/settings/notifications",
            "/settings/plan",
            "/settings/danger",
        ):
            page.goto(live_server.org_url("acme", path))
            expect(page.get_by_role("navigation", name="Settings sections")).to_be_visible()
            check_a11y(page, f"{path} ({scheme})")
        page.goto(live_server.org_url("acme", "/settings/security"))
        page.get_by_label("IP allowlist").fill("10.0.0.0/33")
        page.get_by_role("button", name="Save policy").click()
        expect(page.locator("#ip_allowlist-error")).to_contain_text("not an IP address")
        shot(page, f"security-error-{scheme}")
    page.emulate_media(color_scheme="light")
    page.goto(live_server.org_url("acme", "/settings/plan"))
    shot(page, "plan-and-usage")

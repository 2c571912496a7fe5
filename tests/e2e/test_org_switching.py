"""Real Chromium: a member of two organizations logs in once on the apex and
moves between them with the switcher, never typing a password again, and
each organization shows only its own projects."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_consultant_switches_organizations_without_a_password_prompt(page, live_server, world, shot):
    log_in(page, "consultant@example.test")

    # Two organizations and none used yet: the picker.
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    shot(page, "picker")
    page.get_by_role("link", name="Acme Corporation").click()
    expect(page).to_have_url(live_server.org_url("acme", "/dashboard"))

    page.get_by_role("link", name="Projects").click()
    expect(page).to_have_url(live_server.org_url("acme", "/projects/"))
    expect(page.get_by_text("Acme Project 0")).to_be_visible()
    shot(page, "acme-projects")

    # The switcher lists both organizations with the role held in each.
    page.locator("#org-switcher summary").click()
    switch_to_globex = page.locator("#org-switcher-items").get_by_role("link", name="Globex")
    expect(switch_to_globex).to_contain_text("Admin")
    shot(page, "switcher-open")
    switch_to_globex.click()

    # Same section, other organization, no password asked.
    expect(page).to_have_url(live_server.org_url("globex", "/projects/"))
    expect(page.get_by_label("Password")).to_have_count(0)
    expect(page.get_by_text("Globex Secret 0")).to_be_visible()
    body = page.locator("main").inner_text()
    assert "Acme Project" not in body
    shot(page, "globex-projects")

    # Back on Acme's host, its own cookie still works and shows only Acme.
    page.goto(live_server.org_url("acme", "/projects/"))
    expect(page.get_by_text("Acme Project 0")).to_be_visible()
    assert "Globex Secret" not in page.locator("main").inner_text()

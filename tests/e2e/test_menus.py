"""The top bar's menus close on Escape, wherever the focus is inside them,
and give the focus back to their toggle."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_escape_closes_the_switcher_and_the_user_menu(page, live_server, world, shot):
    for i in range(5):  # more than five organizations: the switcher gets its filter box
        f.add_member(f.make_org(f"menu-org-{i}", f"Menu Org {i}"), world.users["admin"], "member")
    log_in(page, "admin@acme.test")  # several organizations: the picker
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    page.goto(live_server.org_url("acme", "/dashboard"))

    switcher = page.locator("#org-switcher")
    toggle = switcher.locator("summary")
    toggle.click()
    search = page.get_by_label("Find an organization")
    search.fill("menu")
    shot(page, "switcher-filtered")
    search.focus()
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(toggle).to_be_focused()

    # Opened from the keyboard, focus on an item: Escape still closes it.
    page.keyboard.press("Enter")
    expect(switcher).to_have_attribute("open", "")
    page.get_by_role("link", name="All your organizations").focus()
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")

    user_menu = page.locator(".topbar__user")
    user_menu.locator("summary").click()
    page.keyboard.press("ArrowDown")
    shot(page, "user-menu-open")
    page.keyboard.press("Escape")
    expect(user_menu).not_to_have_attribute("open", "")
    expect(user_menu.locator("summary")).to_be_focused()
    # Focus outside the menu (a click on the page body does not close it first).
    user_menu.locator("summary").click()
    page.locator("h1").first.evaluate("el => { el.tabIndex = -1; el.focus(); }")
    page.keyboard.press("Escape")
    expect(user_menu).not_to_have_attribute("open", "")

"""Real Chromium on the projects pages: active search that keeps the URL in
step, sorting that survives the next search, inline edit with its 422, and
archive behind a confirmation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.e2e


def test_active_search_sort_and_pagination_keep_the_url(page, live_server, world, shot):
    for name in ("Rocket sled", "Rocket skates", "Anvil logistics"):
        f.make_project(world.acme, name, description="catalogue item")
    sign_in(page, live_server, "member@acme.test")
    page.get_by_role("link", name="Projects").click()
    table = page.locator("#projects-table")
    expect(table.get_by_role("link", name="Anvil logistics")).to_be_visible()
    shot(page, "list")

    page.get_by_label("Search projects").fill("rocket")
    expect(page).to_have_url(re.compile(r"/projects/\?q=rocket"))
    expect(table.get_by_role("link", name="Anvil logistics")).to_have_count(0)
    expect(table.get_by_role("link", name="Rocket skates")).to_be_visible()
    shot(page, "searched")

    # Sort Z–A from the header; the next search keeps that order.
    table.get_by_role("link", name="Name").click()
    expect(page).to_have_url(re.compile(r"sort=-name"))
    page.get_by_label("Search projects").fill("rocket s")
    expect(page).to_have_url(re.compile(r"q=rocket(\+|%20)s&.*sort=-name"))
    names = table.locator("tbody a").all_inner_texts()
    assert names == ["Rocket sled", "Rocket skates"]
    shot(page, "sorted")

    # The URL is the state: a reload shows the same list.
    page.reload()
    expect(page.get_by_label("Search projects")).to_have_value("rocket s")
    assert table.locator("tbody a").all_inner_texts() == ["Rocket sled", "Rocket skates"]

    page.get_by_label("Status").select_option("all")
    expect(page).to_have_url(re.compile(r"status=all"))


def test_inline_edit_and_archive(page, live_server, world, shot):
    sign_in(page, live_server, "member@acme.test")
    page.goto(live_server.org_url("acme", "/projects/"))
    page.get_by_role("link", name="Acme Project 0").click()
    detail_url = page.url
    details = page.locator("#project-details")
    details.get_by_role("link", name="Edit").click()
    expect(details.get_by_label("Name")).to_be_visible()
    assert page.url == detail_url  # edited in place, no navigation
    shot(page, "editing")

    details.get_by_label("Name").fill("")
    details.get_by_role("button", name="Save").click()
    expect(details.get_by_text("Give the project a name.")).to_be_visible()
    shot(page, "invalid")

    details.get_by_label("Name").fill("Acme Project Renamed")
    details.get_by_role("button", name="Save").click()
    expect(details.get_by_role("link", name="Edit")).to_be_visible()
    expect(page.locator("#project-title")).to_have_text("Acme Project Renamed")
    shot(page, "saved")

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_text("archived.")).to_be_visible()
    expect(page.get_by_role("button", name="Restore")).to_be_visible()
    shot(page, "archived")

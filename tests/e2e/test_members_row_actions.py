"""Real Chromium on the members table's row buttons, which submit the page's
one shared form (#row-post) at their own formaction: deactivating asks
first and a refusal changes nothing; an accepted action replaces only its
row; an invitation is resent and revoked from its row."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in
from tests.members.conftest import invite_row, membership

pytestmark = pytest.mark.e2e


def row(page, name):
    return page.locator("#members-list tbody tr", has=page.get_by_role("rowheader", name=re.compile(name)))


def test_row_buttons_ask_first_and_replace_only_their_row(page, live_server, world, shot):
    invite_row(world.acme, "pending.person@example.test")
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", "/members"))
    viewer = row(page, "Acme Viewer")

    # A refused confirmation sends nothing.
    page.once("dialog", lambda d: d.dismiss())
    viewer.get_by_role("button", name="Deactivate").click()
    expect(viewer.get_by_text("Active", exact=True)).to_be_visible()
    assert membership(world.acme, world.users["viewer"].id).status == "active"

    # An accepted one: the row, and only the row, is replaced in place.
    others = page.locator("#members-list tbody tr").count()
    page.once("dialog", lambda d: d.accept())
    viewer.get_by_role("button", name="Deactivate").click()
    expect(viewer.get_by_text("Deactivated", exact=True)).to_be_visible()
    expect(viewer.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(page.locator("#members-list tbody tr")).to_have_count(others)
    assert membership(world.acme, world.users["viewer"].id).status == "deactivated"
    shot(page, "deactivated")

    viewer.get_by_role("button", name="Reactivate").click()
    expect(viewer.get_by_text("Active", exact=True)).to_be_visible()
    assert membership(world.acme, world.users["viewer"].id).status == "active"

    # An invitation's row: resend, then revoke (which asks).
    page.goto(live_server.org_url("acme", "/members?status=invited"))
    invited = page.locator("#members-list tbody tr", has_text="pending.person@example.test")
    invited.get_by_role("button", name="Resend").click()
    expect(invited.get_by_text(re.compile("sent again", re.I))).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    invited.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text(re.compile("revoked", re.I))).to_be_visible()
    shot(page, "revoked")


def test_without_javascript_a_row_button_posts_the_shared_form_and_comes_back(browser, live_server, world):
    from tests.e2e.helpers import log_in

    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, "admin@acme.test")
        page.goto(live_server.org_url("acme", "/members"))
        row(page, "Acme Viewer").get_by_role("button", name="Deactivate").click()
        expect(page).to_have_url(live_server.org_url("acme", "/members"))
        assert membership(world.acme, world.users["viewer"].id).status == "deactivated"
        expect(row(page, "Acme Viewer").get_by_text("Deactivated", exact=True)).to_be_visible()
    finally:
        context.close()

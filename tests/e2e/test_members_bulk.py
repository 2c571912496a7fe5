"""Real Chromium: a bulk role change asks first with what will happen (how
many, which permissions they lose), can be cancelled from the keyboard with
the selection kept, and answers with who changed and who did not, and why."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in
from tests.members.conftest import add_members, membership

pytestmark = pytest.mark.e2e


def test_bulk_role_change_confirms_what_will_happen_and_answers_row_by_row(page, live_server, world, shot):
    ids = add_members(world.acme, 3, prefix="crew")
    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/members"))
    table = page.locator("#members-list")
    for name in ("Crew 0000", "Crew 0001", "Acme Manager", "Acme Viewer", "Acme Owner"):
        table.get_by_label(f"Select {name}").check()
    page.get_by_label("With selected").select_option("role")
    page.get_by_label("New role").select_option("viewer")
    page.get_by_role("button", name="Apply").click()

    panel = page.locator("#bulk-confirm-panel")
    title = panel.get_by_role("heading", name="Change the role of 5 members to Viewer?")
    expect(title).to_be_focused()
    expect(panel.locator("#bulk-permissions")).to_contain_text("projects:create")
    expect(panel.get_by_text("1 already has the role Viewer")).to_be_visible()
    shot(page, "bulk-confirm")

    # Escape cancels: nothing changed, the selection is still there, focus is back on the action.
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(page.get_by_label("With selected")).to_be_focused()
    expect(table.get_by_label("Select Crew 0000")).to_be_checked()
    assert membership(world.acme, ids[0]).role == "member"

    # Again, confirmed from the keyboard this time.
    page.get_by_role("button", name="Apply").click()
    expect(title).to_be_focused()
    page.keyboard.press("Tab")  # "Who (5)": the list of names
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Change the role of 5 members to Viewer")).to_be_focused()
    page.keyboard.press("Enter")

    result = page.locator("#bulk-summary")
    expect(result).to_be_focused()
    expect(result).to_contain_text(re.compile(r"3 changed, 1 already in that role, 1 refused"))
    not_changed = result.locator("#bulk-not-changed")
    expect(not_changed).to_contain_text("You cannot change the role of yourself here.")
    expect(not_changed).to_contain_text("already has that role")
    shot(page, "bulk-result")
    assert membership(world.acme, ids[0]).role == "viewer"
    assert membership(world.acme, world.users["manager"].id).role == "viewer"
    assert membership(world.acme, world.users["owner"].id).role == "owner"

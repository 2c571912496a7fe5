"""Real Chromium: giving a role to one of 250 members by typing part of a
name, moving through the matches with the arrow keys and picking with Enter,
as the role page's search-as-you-type picker offers."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in
from tests.members.conftest import add_members, membership
from tests.rbac.conftest import make_role

pytestmark = pytest.mark.e2e


def test_an_admin_picks_a_member_from_the_keyboard_and_gives_them_the_role(page, live_server, world, shot):
    ids = add_members(world.acme, 250, prefix="crowd")
    role = make_role(world.acme, "Support", ["org:view", "members:view"])
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", f"/roles/{role.id}"))
    box = page.get_by_role("combobox", name="Add a member")
    box.fill("crowd 012")
    listbox = page.get_by_role("listbox", name="Matching members")
    expect(listbox).to_be_visible()
    expect(listbox.get_by_role("option")).to_have_count(10)  # Crowd 0120 … 0129
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("ArrowDown")
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", f"pick-{ids[121]}")
    expect(listbox.get_by_role("option", name=re.compile("Crowd 0121"))).to_have_attribute("aria-selected", "true")
    shot(page, "picker-open")
    box.press("Enter")  # picks; does not submit yet
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("Crowd 0121 (crowd0121@acme.test)")
    expect(box).to_be_focused()
    shot(page, "picked")

    # Escape closes the list without picking; typing again clears a pick.
    box.fill("crowd 0")
    expect(listbox).to_be_visible()
    box.press("Escape")
    expect(listbox).to_be_hidden()
    box.fill("crowd 0121")
    expect(listbox.get_by_role("option")).to_have_count(1)
    box.press("ArrowDown")
    box.press("Enter")
    page.get_by_role("button", name="Add member to this role").click()
    expect(page.locator(".flash")).to_contain_text("Crowd 0121 is now Support.")
    expect(page.locator("#role-members")).to_contain_text("crowd0121@acme.test")
    shot(page, "assigned")
    assert membership(world.acme, ids[121]).custom_role_id == role.id
    assert membership(world.acme, ids[120]).role == "member"

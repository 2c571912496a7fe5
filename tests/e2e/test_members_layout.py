"""The members table at a laptop's width and at a phone's: every row's
actions stay in view (nothing scrolls sideways), and on a phone each row
is a card that still shows role, status and actions."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in
from tests.members.conftest import add_members

pytestmark = pytest.mark.e2e

OVERFLOW = """() => {
  const wrap = document.querySelector('#members-list').closest('.table-wrap');
  return {scroll: wrap.scrollWidth, client: wrap.clientWidth, page: document.documentElement.scrollWidth,
          viewport: window.innerWidth};
}"""


def _actions_in_view(page, width):
    for button in page.locator("#members-list td.actions button").all():
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"row action cut off: {box}"


@pytest.mark.parametrize("width,height", [(1280, 860), (390, 844)], ids=["laptop-1280", "phone-390"])
def test_members_table_fits(page, live_server, world, shot, width, height):
    add_members(world.acme, 3, prefix="crew")
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", "/members"))
    table = page.locator("#members-list")
    expect(table.get_by_role("link", name="Crew 0002")).to_be_visible()

    sizes = page.evaluate(OVERFLOW)
    assert sizes["scroll"] <= sizes["client"], f"the table scrolls sideways: {sizes}"
    assert sizes["page"] <= sizes["viewport"], f"the page scrolls sideways: {sizes}"
    _actions_in_view(page, width)

    viewer = table.locator("tbody tr", has=page.get_by_role("rowheader", name="Acme Viewer"))
    for part in (
        viewer.get_by_label("Role of Acme Viewer"),
        viewer.get_by_text("Active"),
        viewer.get_by_role("button", name="Remove"),
    ):
        expect(part).to_be_visible()
    shot(page, f"members-{width}")

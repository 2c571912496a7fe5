"""A signed-in user who opens an organization that is not theirs sees where
to go instead, and can sign in as someone else."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_not_a_member_page_offers_your_organizations_and_signing_out(page, live_server, world, shot):
    log_in(page, "member@globex.test")
    expect(page).to_have_url(live_server.org_url("globex", "/dashboard"))
    page.goto(live_server.org_url("acme", "/projects/"))
    expect(page.get_by_role("heading", name="No such organization, or you are not a member")).to_be_visible()
    shot(page, "not-a-member")
    page.goto(live_server.org_url("no-such-org", "/"))
    expect(page.get_by_role("heading", name="No such organization, or you are not a member")).to_be_visible()
    page.emulate_media(color_scheme="dark")
    shot(page, "no-such-organization-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_role("link", name="Globex").click()
    expect(page).to_have_url(live_server.org_url("globex", "/dashboard"))
    page.goto(live_server.org_url("acme", "/"))
    page.get_by_role("button", name="Sign in as someone else").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shot(page, "signed-out")

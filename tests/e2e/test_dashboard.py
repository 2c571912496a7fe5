"""A new organization's dashboard: the getting-started checklist and recent activity."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app import audit
from app.extensions import db
from app.scoping import tenant_context
from tests import factories as f
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_new_organization_dashboard_guides_the_owner(page, live_server, world, shot):
    org = f.make_org("initech", "Initech")
    owner = f.make_user("owner@initech.test", "Ivy Initech")
    f.add_member(org, owner, "owner")
    with tenant_context(org.id):
        audit.record("org.created", org, after={"name": "Initech"})
        db.session.commit()
    log_in(page, "owner@initech.test")
    expect(page).to_have_url(live_server.org_url("initech", "/dashboard"))
    checklist = page.locator("#getting-started")
    expect(checklist.get_by_text("0 of 3 done")).to_be_visible()
    expect(page.locator("#recent-activity").get_by_text("Created the organization")).to_be_visible()
    shot(page, "new-organization")
    page.emulate_media(color_scheme="dark")
    shot(page, "new-organization-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the dashboard scrolls sideways at 390 px: {widths}"
    shot(page, "new-organization-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    checklist.get_by_role("link", name="Create a project").click()
    expect(page).to_have_url(live_server.org_url("initech", "/projects/new"))
    page.get_by_label("Name").fill("Launch")
    page.get_by_role("button", name="Create project").click()
    page.goto(live_server.org_url("initech", "/dashboard"))
    expect(checklist.get_by_text("1 of 3 done")).to_be_visible()
    expect(page.locator("#recent-activity").get_by_text("Launch")).to_be_visible()
    shot(page, "one-step-done")
    checklist.get_by_role("button", name="Hide this list").click()
    expect(page.locator("#getting-started")).to_have_count(0)
    shot(page, "checklist-hidden")

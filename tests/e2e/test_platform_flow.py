"""Real Chromium in the platform console: a super-admin suspends globex and a
globex member sees the suspension page with the reason; the super-admin
reactivates it, changes acme's plan and sees its limits change; then acts as
member@acme.test for support, sees the banner, creates a project that acme's
audit log records as support, and stops."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests import factories as f
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_suspend_reactivate_plan_and_support_session(page, browser, live_server, world, shot, owner_engine):
    f.make_user("super@tenantry.test", "Sam Super", superadmin=True)
    log_in(page, "super@tenantry.test", totp_secret=f.TOTP_SECRET)
    expect(page.locator(".topbar__user summary")).to_be_visible()
    page.locator(".topbar__user summary").click()
    page.get_by_role("link", name="Platform console").click()
    expect(page.get_by_role("heading", name="Platform overview")).to_be_visible()
    shot(page, "overview")

    # Suspend globex, with a reason its members will read.
    page.get_by_role("navigation", name="Platform console").get_by_role("link", name="Organizations").click()
    # htmx binds the live search when the page has loaded: typing earlier is lost.
    expect(page).to_have_url(re.compile(r"/platform/organizations$"))
    page.wait_for_load_state()
    page.get_by_label("Search organizations").fill("globex")
    expect(page).to_have_url(re.compile(r"/platform/organizations\?q=globex"))
    expect(page.locator("#platform-orgs").get_by_role("link", name="Acme Corporation")).to_have_count(0)
    shot(page, "search")
    page.locator("#platform-orgs").get_by_role("link", name="Globex").click()
    expect(page.get_by_role("heading", name="Globex", exact=True)).to_be_visible()
    suspend = page.locator("#suspend")
    suspend.get_by_role("button", name="Suspend Globex").click()
    expect(suspend.get_by_text("Give a reason")).to_be_visible()  # 422 beside the field
    shot(page, "suspend-needs-reason")
    suspend.get_by_label("Reason").fill("Unpaid invoice INV-2041: contact billing@tenantry.test")
    suspend.get_by_role("button", name="Suspend Globex").click()
    expect(page.get_by_text("Globex is suspended.")).to_be_visible()
    shot(page, "suspended")

    member = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url).new_page()
    log_in(member, "member@globex.test")
    expect(member.get_by_role("heading", name="Globex is suspended")).to_be_visible()
    expect(member.get_by_text("Unpaid invoice INV-2041: contact billing@tenantry.test")).to_be_visible()
    shot(member, "member-sees-suspension")

    page.locator("#reactivate").get_by_label("Reason").fill("Invoice paid")
    page.get_by_role("button", name="Reactivate Globex").click()
    expect(page.get_by_text("Globex is active again.")).to_be_visible()
    member.reload()
    expect(member.get_by_role("heading", name="Globex is suspended")).to_have_count(0)
    member.context.close()

    # Change acme's plan: its limits change on its page.
    page.goto(live_server.url + "/platform/organizations?q=acme")
    page.locator("#platform-orgs").get_by_role("link", name="Acme Corporation").click()
    ent = page.locator("section", has=page.get_by_role("heading", name="Usage and entitlements"))
    expect(ent.locator("tr", has_text="Seats")).to_contain_text("250")
    plan = page.locator("#plan")
    plan.get_by_label("Plan").select_option("enterprise")
    plan.get_by_label("Reason").fill("Signed the enterprise contract")
    plan.get_by_role("button", name="Change plan").click()
    expect(page.get_by_text("Acme Corporation is now on the Enterprise plan.")).to_be_visible()
    expect(ent.locator("tr", has_text="Seats")).to_contain_text("Unlimited")
    expect(ent.locator("tr", has_text="Seats")).to_contain_text("plan enterprise")
    shot(page, "plan-changed")

    # Give acme its own seats limit until a date: the page names the source.
    until = (date.today() + timedelta(days=45)).isoformat()
    box = page.locator("#overrides")
    box.get_by_label("Limit or feature").select_option("seats")
    box.get_by_label("New limit").fill("400")
    box.get_by_label("Until (optional)").fill(until)
    box.get_by_label("Reason", exact=True).fill("Contract: 400 seats during the rollout")
    box.get_by_role("button", name="Set override").click()
    expect(page.get_by_text("Acme Corporation has its own seats now.")).to_be_visible()
    expect(ent.locator("tr", has_text="Seats")).to_contain_text("400")
    expect(ent.locator("tr", has_text="Seats")).to_contain_text(f"override until {until}")
    expect(page.locator("#override-seats")).to_contain_text("Contract: 400 seats during the rollout")
    shot(page, "override-set")

    # Plans are data: the plans page and one plan's form; the platform log has both changes.
    page.get_by_role("navigation", name="Platform console").get_by_role("link", name="Plans").click()
    expect(page.get_by_role("heading", name="Plans", exact=True)).to_be_visible()
    shot(page, "plans")
    page.locator("#plan-free").get_by_role("link", name="Free").click()
    page.get_by_label("Seats").fill("2")
    page.get_by_label("Reason").fill("Tighter free tier")
    page.get_by_role("button", name="Save plan").click()
    expect(page.get_by_text("globex (3)")).to_be_visible()  # asks to confirm, names who is over
    shot(page, "plan-confirm")
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("navigation", name="Platform console").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Platform log")).to_be_visible()
    expect(page.locator("#audit-results")).to_contain_text("set an organization's own limit or feature")
    shot(page, "platform-log")

    # Act as member@acme.test for support.
    page.get_by_role("navigation", name="Platform console").get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/platform/users$"))
    page.wait_for_load_state()
    page.get_by_label("Search people").fill("member@acme.test")
    expect(page.locator("#platform-users").get_by_role("link", name="Acme Member")).to_be_visible()
    page.locator("#platform-users").get_by_role("link", name="Acme Member").click()
    box = page.locator("#impersonate")
    box.get_by_label("Reason").fill("Ticket: cannot create a project")
    box.get_by_label("Ticket reference (optional)").fill("SUP-1234")
    shot(page, "user-page")
    box.get_by_role("button", name="Start support session").click()
    expect(page).to_have_url(re.compile(re.escape(live_server.org_url("acme", "/dashboard"))))
    banner = page.get_by_role("region", name="Support session")
    expect(banner).to_contain_text("you are acting as Acme Member (member@acme.test)")
    shot(page, "banner")

    page.goto(live_server.org_url("acme", "/projects/new"))
    expect(banner).to_be_visible()
    page.get_by_label("Name").fill("Reproduced by support")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Project “Reproduced by support” created.")).to_be_visible()
    with owner_engine.connect() as c:
        row = c.execute(
            text(
                "SELECT actor_type, actor_label FROM audit_events WHERE organization_id = :o "
                "AND action = 'project.created'"
            ),
            {"o": world.acme.id},
        ).one()
    assert row.actor_type == "support" and "super@tenantry.test" in row.actor_label

    banner.get_by_role("button", name="Stop acting as Acme Member").click()
    expect(page).to_have_url(re.compile(r"/platform/users/"))
    expect(page.get_by_role("region", name="Support session")).to_have_count(0)
    expect(page.get_by_role("heading", name="Acme Member", exact=True)).to_be_visible()
    shot(page, "stopped")

    # acme's recent events, seen from the console, show the support action.
    page.goto(live_server.url + f"/platform/organizations/{world.acme.id}")
    events = page.locator("section", has=page.get_by_role("heading", name="Recent audit events"))
    expect(events.locator("tr", has_text="Created a project")).to_contain_text("support")
    shot(page, "acme-events")

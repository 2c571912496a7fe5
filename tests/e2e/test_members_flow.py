"""Real Chromium on the members pages: an admin searches, filters by role,
changes a role inline (a demotion asks first), invites two people, and an
invitee accepts from the mail the SMTP server captured."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in
from tests.members.conftest import add_members, link_in

pytestmark = pytest.mark.e2e


def row(page, name):
    return page.locator("#members-list tbody tr", has=page.get_by_role("rowheader", name=re.compile(name)))


def test_admin_searches_filters_changes_a_role_and_invites_and_the_invitee_joins(
    page, browser, live_server, world, mailbox, shot
):
    add_members(world.acme, 8, prefix="crew")
    sign_in(page, live_server, "admin@acme.test")
    page.get_by_role("link", name="Members").click()
    expect(page).to_have_url(live_server.org_url("acme", "/members"))
    table = page.locator("#members-list")
    expect(table.get_by_role("link", name="Crew 0003")).to_be_visible()
    shot(page, "members")

    # Live search: typing filters the table and the URL follows.
    page.get_by_label("Search by name or e-mail").fill("consult")
    expect(page).to_have_url(re.compile(r"/members\?q=consult"))
    expect(table.get_by_role("link", name="Crew 0003")).to_have_count(0)
    expect(table.get_by_role("link", name="Casey Consultant")).to_be_visible()
    shot(page, "searched")

    # Filter by role (the search box cleared first; its debounced search lands before we go on).
    page.get_by_label("Search by name or e-mail").fill("")
    expect(page).to_have_url(re.compile(r"/members\?q=&"))
    expect(table.get_by_role("link", name="Crew 0003")).to_be_visible()
    page.get_by_label("Role", exact=True).select_option("viewer")
    expect(page).to_have_url(re.compile(r"role=viewer"))
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.get_by_role("link", name="Acme Viewer")).to_be_visible()
    shot(page, "filtered")

    # Inline role change: a promotion saves on change.
    viewer_row = row(page, "Acme Viewer")
    viewer_row.get_by_label("Role of Acme Viewer").select_option("member")
    expect(viewer_row.get_by_text("Role changed to Member.")).to_be_visible()
    shot(page, "promoted")

    # A demotion asks first, in the row.
    page.get_by_label("Role", exact=True).select_option("")
    expect(page).to_have_url(re.compile(r"role=&"))
    expect(table.get_by_role("link", name="Acme Manager")).to_be_visible()
    manager_row = row(page, "Acme Manager")
    manager_row.get_by_label("Role of Acme Manager").select_option("viewer")
    expect(manager_row.get_by_text(re.compile(r"Demote to Viewer\?"))).to_be_visible()
    shot(page, "demotion-asks")
    manager_row.get_by_role("button", name="Demote").click()
    expect(manager_row.get_by_text("Role changed to Viewer.")).to_be_visible()
    expect(manager_row.get_by_label("Role of Acme Manager")).to_have_value("viewer")

    # The URL still reflects the page: a reload keeps the roles.
    page.reload()
    expect(row(page, "Acme Manager").get_by_label("Role of Acme Manager")).to_have_value("viewer")
    expect(row(page, "Acme Viewer").get_by_label("Role of Acme Viewer")).to_have_value("member")

    # Invite two people at once.
    page.get_by_role("link", name="Invite people").click()
    page.get_by_label("E-mail addresses").fill("ann.new@example.test,\nbob.new@example.test")
    page.get_by_label("Role").select_option("member")
    shot(page, "invite-form")
    page.get_by_role("button", name="Send invitations").click()
    expect(page).to_have_url(re.compile(r"/members\?status=invited"))
    expect(page.get_by_text("Invited ann.new@example.test, bob.new@example.test.")).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(2)
    shot(page, "invited")

    # Ann opens the link from her mail in her own browser and signs up.
    link, _token = link_in(mailbox.last("ann.new@example.test"))
    assert link.startswith(live_server.org_url("acme", "/invitations/"))
    assert mailbox.last("bob.new@example.test")
    ann = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    ann.goto(link)
    expect(ann.get_by_role("heading", name="Join Acme Corporation")).to_be_visible()
    expect(ann.get_by_label("E-mail")).to_have_value("ann.new@example.test")
    ann.get_by_label("Your name").fill("Ann Newcomer")
    ann.get_by_label("Choose a password").fill("a-long-enough-passphrase")
    shot(ann, "accept-sign-up")
    ann.get_by_role("button", name="Create account and join").click()
    expect(ann).to_have_url(live_server.org_url("acme", "/dashboard"))
    expect(ann.get_by_text("Welcome to Acme Corporation")).to_be_visible()
    shot(ann, "joined")
    ann.context.close()

    # The admin now sees Ann as an active member and one pending invitation.
    page.goto(live_server.org_url("acme", "/members?q=new%40example"))
    expect(row(page, "Ann Newcomer").locator(".badge--active")).to_be_visible()
    expect(
        page.locator("#members-list tbody tr", has_text="bob.new@example.test").locator(".badge--invited")
    ).to_be_visible()
    shot(page, "after-accept")

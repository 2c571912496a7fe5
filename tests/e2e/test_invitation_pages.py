"""Real Chromium on the pages added for invitations and leaving (each step
checked by axe): a CSV upload with its per-row outcome, changing a pending
invitation's role, the accept page with the inviter's message, and a member
leaving from their account page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import log_in, sign_in
from tests.members.conftest import invitations, link_in, membership

pytestmark = pytest.mark.e2e


def test_csv_upload_role_change_message_and_leaving(page, browser, live_server, world, mailbox, shot):
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", "/members/invite"))
    page.get_by_role("link", name="Upload a CSV file").click()
    page.get_by_label("CSV file").set_input_files(
        files=[
            {
                "name": "people.csv",
                "mimeType": "text/csv",
                "buffer": b"email,role\nann.csv@example.test,Viewer\nnot-an-address\nmember@acme.test\n",
            }
        ]
    )
    page.get_by_label("Personal message (optional)").fill("Welcome! <b>See you</b> on Monday.")
    shot(page, "csv-form")
    page.get_by_role("button", name="Upload and invite").click()
    rows = page.locator("#csv-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Invited")
    expect(rows.nth(1)).to_contain_text("Invalid e-mail")
    expect(rows.nth(2)).to_contain_text("Already a member")
    shot(page, "csv-outcome")

    # The invitation's role changes on its page; the list says who invited.
    page.get_by_role("link", name="See pending invitations").click()
    row = page.locator("#members-list tbody tr", has_text="ann.csv@example.test")
    expect(row).to_contain_text("by Acme Admin")
    row.get_by_role("link", name=re.compile("Edit")).click()
    expect(page.locator("#invite-message")).to_contain_text("Welcome! <b>See you</b> on Monday.")
    page.get_by_label("Role").select_option("member")
    shot(page, "invitation-page")
    page.get_by_role("button", name="Save role").click()
    expect(page.locator(".flash")).to_contain_text("now offers Member")
    assert [i.role for i in invitations(world.acme)] == ["member"]

    # Ann opens the link: the accept page shows who invited her and the message, as text.
    link, _token = link_in(mailbox.last("ann.csv@example.test"))
    ann = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    ann.goto(link)
    expect(ann.get_by_text(re.compile(r"Acme Admin invited"))).to_be_visible()
    expect(ann.locator("#invite-message blockquote")).to_have_text("Welcome! <b>See you</b> on Monday.")
    shot(ann, "accept-with-message")
    ann.context.close()

    # The consultant leaves Acme from their account page (through the hand-off), confirming first.
    other = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url).new_page()
    log_in(other, "consultant@example.test")
    other.goto(live_server.url + "/account")
    other.locator("#organizations tr", has_text="Acme Corporation").get_by_role(
        "link", name=re.compile("Leave")
    ).click()
    expect(other.get_by_role("heading", name="Leave Acme Corporation?")).to_be_visible()
    shot(other, "leave-confirm")
    other.get_by_role("button", name="Leave Acme Corporation").click()
    expect(other.get_by_text("You left the organization.")).to_be_visible()
    expect(other.locator("main")).not_to_contain_text("Acme Corporation")
    shot(other, "left")
    other.context.close()
    assert membership(world.acme, world.users["consultant"].id) is None

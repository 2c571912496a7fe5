"""Real Chromium on the audit log: an admin changes a member's role on the
members page, opens the audit log, filters to that member, opens the event
and sees the role before and after; then exports it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.e2e


def test_admin_changes_a_role_then_finds_it_in_the_audit_log(page, live_server, world, shot):
    sign_in(page, live_server, "admin@acme.test")

    # The change, through the members page (a promotion saves on change).
    page.get_by_role("link", name="Members").click()
    viewer_row = page.locator(
        "#members-list tbody tr", has=page.get_by_role("rowheader", name=re.compile("Acme Viewer"))
    )
    viewer_row.get_by_label("Role of Acme Viewer").select_option("member")
    expect(viewer_row.get_by_text("Role changed to Member.")).to_be_visible()
    shot(page, "role-changed")

    # The audit log: newest first, the change on top.
    page.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(live_server.org_url("acme", "/audit/"))
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    table = page.locator("#audit-table")
    expect(table.locator("tbody tr").first).to_contain_text("Changed a member's role")
    shot(page, "audit-log")

    # Filter to that member, picked as you type: the table swaps (HTMX) and the URL follows.
    person = page.get_by_role("combobox", name="Member", exact=True)
    person.fill("viewer@")
    page.get_by_role("option", name=re.compile("Acme Viewer")).click()
    expect(page).to_have_url(re.compile(rf"person={world.users['viewer'].id}"))
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Acme Viewer")
    expect(rows.first).to_contain_text("Acme Admin")
    shot(page, "filtered-to-member")

    # The filter survives a reload (it is in the URL).
    page.reload()
    expect(person).to_have_value("Acme Viewer <viewer@acme.test>")
    expect(table.locator("tbody tr")).to_have_count(1)

    # The event: before and after, field by field, and the request context.
    rows.first.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="Changed a member's role")).to_be_visible()
    diff = page.locator("#event-diff")
    role_row = diff.locator("tr", has=page.get_by_role("rowheader", name="role", exact=True))
    expect(role_row.locator("del.diff__before")).to_have_text("Viewer")
    expect(role_row.locator("ins.diff__after")).to_have_text("Member")
    expect(page.locator("#event-actor")).to_contain_text("admin@acme.test")
    expect(page.locator("#event-ip")).to_have_text("127.0.0.1")
    expect(page.locator("#event-request-id")).not_to_have_text("—")
    shot(page, "event")

    # "Events for this member" from the event page lists the same change.
    page.get_by_role("link", name="Events for this member").click()
    expect(page).to_have_url(re.compile(r"target_type=member"))
    expect(page.locator("#audit-table tbody tr")).to_have_count(1)

    # Export the filtered view as CSV (a download; itself audited).
    with page.expect_download() as dl:
        page.get_by_role("button", name="CSV").click()
    content = dl.value.path().read_text(encoding="utf-8")
    assert content.splitlines()[0].startswith("id,occurred_at,action")
    assert "member.role_changed" in content and content.count("\n") == 2
    page.goto(live_server.org_url("acme", "/audit/"))
    expect(page.locator("#audit-table tbody tr").first).to_contain_text("Exported the audit log")
    shot(page, "exported")

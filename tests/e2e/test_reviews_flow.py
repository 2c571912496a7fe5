"""Real Chromium: an Owner runs an access review to completion and exports its
evidence; the compliance reports open and download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import check_a11y, log_out, sign_in

pytestmark = pytest.mark.e2e


def _row(page, name):
    return page.locator("#review-items tbody tr", has=page.get_by_role("rowheader", name=name))


def test_owner_runs_an_access_review_to_completion_and_exports_its_evidence(page, live_server, world, shot):
    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/reviews/"))
    expect(page.get_by_role("heading", name="No access reviews yet")).to_be_visible()
    shot(page, "empty")

    page.get_by_role("link", name="Start a review").click()
    page.get_by_label("Name", exact=True).fill("Year-end access review")
    page.get_by_label("Acme Admin (Admin)").check()
    page.get_by_label("Deadline").fill((datetime.now(UTC).date() + timedelta(days=10)).isoformat())
    page.get_by_label("Repeats").select_option("quarterly")
    check_a11y(page, "new review")
    shot(page, "new")
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_role("heading", name="Year-end access review")).to_be_visible()
    expect(page.get_by_test_id("pending")).to_have_text("6")
    check_a11y(page, "review page")
    shot(page, "started")

    # Keyboard: focus the viewer's Keep button and press Enter (the row swaps in place).
    url_before = page.url
    viewer = _row(page, "Acme Viewer")
    viewer.get_by_role("button", name="Keep").focus()
    page.keyboard.press("Enter")
    expect(viewer.get_by_test_id("decision")).to_have_text("Keep")
    assert page.url == url_before

    # Change the member's role to Viewer.
    member = _row(page, "Acme Member")
    member.get_by_label("New role for Acme Member").select_option(label="Viewer")
    member.get_by_role("button", name="Change role").click()
    expect(member.get_by_test_id("decision")).to_have_text("Change role: Viewer")

    # Remove the consultant (a confirmation is not asked per row: the review is the confirmation).
    consultant = _row(page, "Casey Consultant")
    consultant.get_by_label("Note on Casey Consultant").fill("Contract ended")
    consultant.get_by_role("button", name="Remove").click()
    expect(consultant.get_by_test_id("decision")).to_have_text("Remove")

    # Nobody decides on their own access: the Owner's own row offers no buttons.
    owner = _row(page, "Acme Owner")
    expect(owner.get_by_test_id("own-row")).to_contain_text("another reviewer decides")
    expect(owner.get_by_role("button", name="Keep")).to_have_count(0)
    for name in ("Acme Admin", "Acme Manager"):
        row = _row(page, name)
        row.get_by_role("button", name="Keep").click()
        expect(row.get_by_test_id("decision")).to_have_text("Keep")
    shot(page, "own-row")

    # The other reviewer, the Admin, decides on the Owner. A refused
    # application is shown on the row: only an Owner can remove an Owner.
    review_url = page.url
    log_out(page)
    sign_in(page, live_server, "admin@acme.test")
    page.goto(review_url)
    owner = _row(page, "Acme Owner")
    owner.get_by_role("button", name="Remove").click()
    expect(owner.get_by_role("alert")).to_contain_text("Only an Owner can remove an Owner")
    shot(page, "refused")
    owner.get_by_role("button", name="Keep").click()
    expect(owner.get_by_test_id("decision")).to_have_text("Keep")
    shot(page, "decided")

    page.reload()
    expect(page.get_by_test_id("pending")).to_have_text("0")
    page.get_by_role("button", name="Close review").click()
    expect(page.get_by_role("heading", name="Access review evidence: Year-end access review")).to_be_visible()
    expect(page.get_by_test_id("not-reviewed")).to_have_text("0")
    check_a11y(page, "evidence")
    shot(page, "evidence")
    page.emulate_media(media="print")
    expect(page.locator(".sidenav")).to_be_hidden()
    shot(page, "evidence-print")
    page.emulate_media(media="screen")

    with page.expect_download() as dl:
        page.get_by_test_id("export-evidence").click()
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 6
    assert rows["member@acme.test"]["decision"] == "Change role" and rows["member@acme.test"]["new_role"] == "Viewer"
    assert rows["consultant@example.test"]["decision"] == "Remove"
    assert rows["consultant@example.test"]["note"] == "Contract ended"

    # The list shows the campaign closed.
    page.goto(live_server.org_url("acme", "/reviews/"))
    expect(page.locator("#reviews-list")).to_contain_text("Closed")
    shot(page, "list")


def test_compliance_reports_open_as_printable_pages_and_download_as_csv(page, live_server, world, shot):
    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/reports/"))
    check_a11y(page, "reports chooser")
    shot(page, "chooser")
    page.get_by_role("button", name="Open printable page").first.click()
    expect(page.get_by_role("heading", name="Acme Corporation: Access")).to_be_visible()
    expect(page.locator(".report-table")).to_contain_text("Acme Viewer")
    check_a11y(page, "access report")
    page.emulate_media(media="print")
    expect(page.locator(".sidenav")).to_be_hidden()
    shot(page, "access-print")
    page.emulate_media(media="screen")
    page.goto(live_server.org_url("acme", "/reports/"))
    with page.expect_download() as dl:
        page.get_by_test_id("export-security").click()
    assert Path(dl.value.path()).read_text(encoding="utf-8").startswith("occurred_at,action")
    # A bad period is refused beside the field.
    page.get_by_label("From").fill("2026-02-01")
    page.get_by_label("To").fill("2026-01-01")
    page.get_by_role("button", name="Apply period").click()
    expect(page.locator("#report-to-error")).to_contain_text("before the start")
    shot(page, "bad-period")

"""Personal data in real Chromium: a member exports their data (downloads the
ZIP from the e-mailed link; the test opens it), then deletes their account;
the organization's audit log still verifies and shows "Deleted user"."""

from __future__ import annotations

import json
import re
import time
import zipfile

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from app import audit
from app.extensions import db
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import Mailbox, run_due_jobs
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

EMAIL = "mira.member@acme.test"


def _erase_now(live_server, owner_engine, timeout: float = 300) -> None:
    """Run the served app's jobs until the deleted account is erased (its
    job starts 10 seconds after the deletion, and waits for the sealer)."""
    deadline = time.monotonic() + timeout
    while True:
        with owner_engine.begin() as c:
            c.execute(text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'"))
        run_due_jobs(live_server.app)
        with owner_engine.connect() as c:
            if not c.execute(text("SELECT count(*) FROM account_deletions WHERE completed_at IS NULL")).scalar():
                return
        assert time.monotonic() < deadline, "the erasure did not finish"
        time.sleep(2)


def test_a_member_exports_their_data_then_deletes_their_account_and_the_log_still_verifies(
    app, page, live_server, mailbox, shot, owner_engine, tmp_path
):
    from app.auditlog import anchors

    with live_server.app.app_context():
        anchors.path().unlink(missing_ok=True)  # the tables were emptied for this test
    acme = f.make_org("acme", "Acme Corporation")
    f.add_member(acme, f.make_user("owner@acme.test", "Olga Owner"), "owner")
    mira = f.make_user(EMAIL, "Mira Member")
    f.add_member(acme, mira, "member")
    project = f.make_project(acme, "Launch plan")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.23"}):
        with tenant_context(acme.id):
            for i in range(40):
                audit.record(
                    "project.updated",
                    target=project,
                    before={"status": f"s{i}"},
                    after={"status": f"s{i + 1}"},
                    actor=mira,
                )
            db.session.commit()

    log_in(page, EMAIL)
    page.goto("/account/privacy")
    expect(page.get_by_role("heading", name="Your data", exact=True)).to_be_visible()
    expect(page.get_by_text("You have not asked for an export yet.")).to_be_visible()
    shot(page, "your-data")
    page.get_by_role("button", name="Export my data").click()
    expect(page.get_by_text("We are preparing your export")).to_be_visible()
    shot(page, "export-requested")

    link = re.search(r"https?://\S+", Mailbox.text(mailbox.last(EMAIL))).group(0)
    page.reload()
    expect(page.locator("#export-status")).to_contain_text("Ready")
    with page.expect_download() as info:
        # A link in the page, clicked as a person would click the one in the mail.
        page.evaluate(
            "href => { const a = document.createElement('a'); a.href = href; a.textContent = 'download';"
            " document.body.appendChild(a); a.click(); }",
            link,
        )
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name.startswith("tenantry-personal-data-") and saved.suffix == ".zip"
    with zipfile.ZipFile(saved) as z:
        assert json.loads(z.read("profile.json"))["email"] == EMAIL
        assert [m["organization"] for m in json.loads(z.read("memberships.json"))] == ["acme"]
        assert sum(e["action"] == "project.updated" for e in json.loads(z.read("audit_events.json"))) == 40
    page.reload()
    expect(page.locator("#export-status")).to_contain_text("Downloaded")
    shot(page, "export-downloaded")

    page.get_by_label("Type your e-mail address to confirm").fill("someone-else@acme.test")
    page.get_by_label("Current password").fill(f.PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#confirm-error")).to_contain_text("exactly as shown")
    shot(page, "wrong-confirmation")
    page.get_by_label("Type your e-mail address to confirm").fill(EMAIL)
    page.get_by_label("Current password").fill(f.PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("Your account was deleted.")).to_be_visible()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shot(page, "deleted")

    _erase_now(live_server, owner_engine)
    result = live_server.app.test_cli_runner().invoke(args=["audit", "verify", "--org", "acme"])
    assert result.exit_code == 0, result.output
    assert "personal data erased" in result.output

    log_in(page, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/audit/"))
    expect(page.get_by_text("Deleted user").first).to_be_visible()
    assert EMAIL not in page.content() and "Mira Member" not in page.content()
    shot(page, "audit-log-after")

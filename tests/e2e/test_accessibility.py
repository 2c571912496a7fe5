"""axe-core over every main page, as an Owner of acme (and signed out for
the public pages): WCAG 2.1 A and AA, no violation allowed. The other
browser tests check each step they take (``shot`` and the end of every
test run axe too); this one visits the pages they do not, and the open
states of the organization switcher and the user menu, in the light and
the dark colour scheme."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import check_a11y, log_in, sign_in
from tests.rbac.conftest import make_role

pytestmark = pytest.mark.e2e


def visit(page, url, heading=None):
    response = page.goto(url)
    if heading:
        expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
    check_a11y(page, url)
    return response


SCHEMES = pytest.mark.parametrize("scheme", ["light", "dark"])  # app.css follows prefers-color-scheme


@SCHEMES
def test_public_pages_have_no_violations(page, live_server, scheme):
    page.emulate_media(color_scheme=scheme)
    visit(page, "/login", "Log in")
    visit(page, "/signup")
    visit(page, "/forgot-password")
    response = visit(page, "/no-such-page")
    assert response.status == 404
    # A failed log-in: the form with its error.
    log_in(page, "nobody@example.test", "wrong-password-123")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    check_a11y(page, "log-in error")


@SCHEMES
def test_owner_pages_have_no_violations(page, live_server, world, shot, scheme):
    acme = lambda path: live_server.org_url("acme", path)  # noqa: E731
    page.emulate_media(color_scheme=scheme)
    make_role(world.acme, "Auditor", ["audit:view", "members:view"], "Reads the audit log.")
    sign_in(page, live_server, "owner@acme.test")
    check_a11y(page, "dashboard")

    # The top bar's menus, open; Escape closes each (focus back on its toggle).
    switcher = page.locator("#org-switcher")
    switcher.locator("summary").click()
    expect(page.locator("#org-switcher-items")).to_be_visible()
    check_a11y(page, "organization switcher open")
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(switcher.locator("summary")).to_be_focused()
    user_menu = page.locator(".topbar__user")
    user_menu.locator("summary").click()
    expect(user_menu.get_by_role("button", name="Log out")).to_be_visible()
    check_a11y(page, "user menu open")
    page.keyboard.press("Escape")
    expect(user_menu).not_to_have_attribute("open", "")

    visit(page, acme("/members"), "Members")
    page.locator("#members-list").get_by_role("link", name="Acme Viewer").click()
    expect(page.get_by_role("heading", name="Acme Viewer")).to_be_visible()
    check_a11y(page, "member page")
    visit(page, acme("/members?status=invited"), "Members")
    visit(page, acme("/members/invite"))

    visit(page, acme("/roles/"), "Roles & permissions")
    page.get_by_role("link", name="Auditor").first.click()
    expect(page.get_by_role("heading", name="Auditor")).to_be_visible()
    check_a11y(page, "role page")
    page.get_by_role("link", name="Edit permissions").click()
    expect(page.locator(".perm-grid")).to_be_visible()
    check_a11y(page, "role editor")
    visit(page, acme("/roles/new"))

    # Projects: list, a new one (its creation is an audit event with a "none" before), detail, edit.
    visit(page, acme("/projects/"), "Projects")
    visit(page, acme("/projects/new"))
    page.get_by_label("Name").fill("Accessible Project")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Accessible Project")).to_be_visible()
    check_a11y(page, "project page")
    visit(page, page.url.rstrip("/") + "/edit")

    visit(page, acme("/audit/"), "Audit log")
    page.locator("#audit-table tbody tr").first.locator("td.actions a").click()
    expect(page.locator(".diff__empty").first).to_be_visible()
    check_a11y(page, "audit event")
    shot(page, "audit-event")

    visit(page, acme("/settings/general"))
    visit(page, acme("/no-such-page"))
    visit(page, live_server.url + "/account")
    visit(page, live_server.url + "/account/sessions")
    visit(page, live_server.url + "/?pick=1")
    visit(page, live_server.url + "/organizations/new")

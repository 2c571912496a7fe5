"""Real Chromium on Settings → Domains: an admin adds a domain, is told the
record is missing, publishes it on the test DNS server, verifies, turns on
automatic joining as Viewer; then a new person signs up with an address at
that domain, verifies it, and lands in the organization as a Viewer. axe-core
checks every page shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.conftest import Mailbox
from tests.domains.dns_server import DnsZone
from tests.e2e.helpers import check_a11y, log_out, sign_in

pytestmark = pytest.mark.e2e

DOMAIN = "acme-e2e.com"
EMAIL = f"dana@{DOMAIN}"
PASSWORD = "plum-orbit-cactus-42"


@pytest.fixture
def dns_zone(live_server, monkeypatch):
    zone = DnsZone().start()
    monkeypatch.setitem(live_server.app.config, "DNS_RESOLVER", zone.address)
    monkeypatch.setitem(live_server.app.config, "DNS_TIMEOUT_SECONDS", 1.0)
    yield zone
    zone.stop()


def test_admin_verifies_a_domain_and_a_new_person_at_it_joins_as_viewer(
    page, live_server, world, shot, dns_zone, mailbox, owner_engine
):
    sign_in(page, live_server, "admin@acme.test")
    page.goto(live_server.org_url("acme", "/settings/domains/"))
    expect(page.get_by_role("heading", name="No domains yet")).to_be_visible()
    shot(page, "empty")

    # A free-mail domain is refused beside the field.
    page.get_by_role("textbox", name="Domain").fill("gmail.com")
    page.get_by_role("button", name="Add domain").click()
    expect(page.locator("#name-error")).to_contain_text("free e-mail provider")
    shot(page, "free-mail-refused")

    page.get_by_role("textbox", name="Domain").fill(DOMAIN)
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("heading", name="Publish this DNS record")).to_be_visible()
    expect(page.get_by_text(f"_tenantry.{DOMAIN}", exact=True)).to_be_visible()
    value = page.locator("code", has_text="tenantry-verification=").inner_text()
    shot(page, "record-to-publish")

    # Not published yet: said beside the button.
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#verify-error")).to_contain_text("No TXT record")
    # The failed check is recorded: state failed, with the time of the check.
    expect(page.get_by_text("Failed · last checked")).to_be_visible()
    shot(page, "record-missing")

    dns_zone.publish(f"_tenantry.{DOMAIN}", value)
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_text(f"{DOMAIN} is verified.")).to_be_visible()
    expect(page.get_by_role("heading", name="Joining by domain")).to_be_visible()
    page.get_by_label("Automatic: people at this domain join with the default role").check()
    page.get_by_label("Role they join with").select_option("viewer")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    shot(page, "verified-auto-join")
    page.goto(live_server.org_url("acme", "/settings/domains/"))
    expect(page.locator("table").get_by_text("Automatic")).to_be_visible()
    check_a11y(page, "domains list")
    log_out(page)

    # A new person signs up with an address at the domain.
    page.goto("/signup")
    page.get_by_label("Your name").fill("Dana Domain")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    link = re.search(r"https?://\S+", Mailbox.text(mailbox.last(EMAIL))).group(0)
    page.goto(link)
    page.get_by_role("button", name=f"Verify {EMAIL}").click()
    expect(page.get_by_role("heading", name="E-mail verified")).to_be_visible()
    page.get_by_role("link", name="Continue").click()
    expect(page).to_have_url(live_server.org_url("acme", "/dashboard"))
    expect(page.get_by_text("Acme Corporation").first).to_be_visible()
    shot(page, "joined-acme")
    with owner_engine.connect() as c:
        role = c.execute(
            text(
                "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id"
                " WHERE u.email = :e AND m.organization_id = :o"
            ),
            {"e": EMAIL, "o": world.acme.id},
        ).scalar()
    assert role == "viewer"

"""Real Chromium in an organization that requires two-factor authentication
with a grace period: during it, a member without a second factor works with
a banner naming the deadline; once it has passed, they are sent to enrol,
enrol an authenticator (the secret read from the page, codes from pyotp),
and are let back in. axe-core checks every page shown (``shot``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from app.util import utcnow
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.e2e


def require_2fa(owner_engine, org_id, since, grace_days: int) -> None:
    policy = {"require_2fa": True, "require_2fa_grace_days": grace_days, "require_2fa_since": since.isoformat()}
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE organizations SET settings = jsonb_set(coalesce(settings, '{}'::jsonb), '{security}',"
                " CAST(:p AS jsonb)) WHERE id = :o"
            ),
            {"p": json.dumps(policy), "o": org_id},
        )


def test_grace_period_banner_then_sent_to_enrol_then_let_back_in(page, live_server, world, owner_engine, shot):
    since = utcnow() - timedelta(days=3)
    require_2fa(owner_engine, world.acme.id, since, grace_days=10)
    sign_in(page, live_server, "member@acme.test")
    banner = page.get_by_test_id("two-factor-grace")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Acme Corporation requires two-factor authentication")
    expect(banner.locator("time")).to_have_attribute("datetime", (since + timedelta(days=10)).isoformat())
    page.get_by_role("link", name="Projects").click()
    expect(page.get_by_test_id("two-factor-grace")).to_be_visible()  # on every page of the organization
    shot(page, "grace-banner")

    # The grace period ends.
    require_2fa(owner_engine, world.acme.id, utcnow() - timedelta(days=11), grace_days=10)
    page.goto(live_server.org_url("acme", "/dashboard"))
    refused = page.get_by_test_id("two-factor-required")
    expect(refused).to_contain_text("Acme Corporation requires two-factor authentication")
    expect(refused).to_contain_text("grace period ended")
    shot(page, "sent-to-enrol")

    page.get_by_role("link", name="Set up two-factor authentication").click()
    expect(page).to_have_url(live_server.url + "/account/security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as a text file").click()
    assert download.value.suggested_filename == "tenantry-recovery-codes.txt"

    page.goto(live_server.org_url("acme", "/dashboard"))
    expect(page.get_by_role("heading", name="Acme Corporation", level=1)).to_be_visible()
    expect(page.get_by_test_id("two-factor-grace")).to_have_count(0)
    shot(page, "let-back-in")

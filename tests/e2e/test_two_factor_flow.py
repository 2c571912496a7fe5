"""Two-factor authentication in real Chromium: a user enrols an authenticator
(the test reads the secret from the page and computes codes with pyotp),
keeps the recovery codes, logs out, and logs back in with a code; a wrong
code is refused beside the field. ``shot`` runs axe on every page shown."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests.e2e.helpers import log_in, log_out

pytestmark = pytest.mark.e2e


def test_enrol_totp_then_log_out_and_back_in_with_a_code(page, live_server, shot):
    f.make_user("ann@example.test", "Ann Example")
    log_in(page, "ann@example.test")
    page.goto("/account/security")
    expect(page.get_by_role("heading", name="Two-factor authentication", exact=True)).to_be_visible()
    shot(page, "off")

    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    totp = pyotp.TOTP(secret)
    shot(page, "scan")

    page.get_by_label("Code from the app").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.locator("#code-error")).to_contain_text("not right")
    shot(page, "wrong-code")

    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_text("they are shown only once")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").locator("li")
    expect(codes).to_have_count(10)
    shot(page, "recovery-codes")

    log_out(page)
    page.get_by_label("E-mail").fill("ann@example.test")
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    shot(page, "second-step")
    # The enrolment used this step's code: the next step's is the one still unused.
    page.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".topbar__user summary")).to_have_text("Ann Example")
    page.goto("/account/security")
    expect(page.get_by_text("Sign-ins ask for a code from your app.")).to_be_visible()
    shot(page, "on")

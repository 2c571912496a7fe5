"""Forgotten password in real Chromium: the e-mailed link, a new password, the
link dead afterwards; and the log-in throttle's message."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests.conftest import Mailbox

pytestmark = pytest.mark.e2e

NEW_PW = "granite-meadow-violin-7"


def test_forgotten_password_by_e_mailed_link(page, live_server, mailbox, shot):
    f.make_user("ann@example.test", "Ann Example")
    page.goto("/login")
    page.get_by_role("link", name="Forgotten your password?").click()
    page.get_by_label("E-mail").fill("ann@example.test")
    shot(page, "forgot")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_text("If an account exists")).to_be_visible()
    shot(page, "forgot-sent")

    link = re.search(r"https?://\S+", Mailbox.text(mailbox.last("ann@example.test"))).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PW)
    page.get_by_label("Confirm new password").fill(NEW_PW + "!")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#confirm-error")).to_contain_text("do not match")
    shot(page, "reset-error")
    page.get_by_label("New password", exact=True).fill(NEW_PW)
    page.get_by_label("Confirm new password").fill(NEW_PW)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_text("Log in with your new password.")).to_be_visible()
    shot(page, "reset-done")

    page.get_by_label("E-mail").fill("ann@example.test")
    page.get_by_label("Password").fill(NEW_PW)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()

    response = page.goto(link)
    assert response.status == 410
    expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    shot(page, "link-used")


def test_throttled_log_in_says_when_to_try_again(page, live_server, shot):
    f.make_user("ann@example.test")
    page.goto("/login")
    for _ in range(6):
        page.get_by_label("E-mail").fill("ann@example.test")
        page.get_by_label("Password").fill("wrong-guess")
        page.get_by_role("button", name="Log in").click()
    expect(page.locator("#throttled")).to_have_text("Too many attempts. Try again in 15 minutes.")
    shot(page, "throttled")

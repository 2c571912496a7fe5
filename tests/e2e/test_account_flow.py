"""The first scenario in real Chromium: sign up, verify the e-mail from the
captured mail, log in, see your sessions, log out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import Mailbox

pytestmark = pytest.mark.e2e

EMAIL = "nina@example.test"
PASSWORD = "plum-orbit-cactus-42"


def open_user_menu(page):
    page.locator(".topbar__user summary").click()


def test_sign_up_verify_log_in_sessions_log_out(page, live_server, mailbox, shot):
    # Landing → sign-up form.
    page.goto("/")
    shot(page, "landing")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()

    # A mistake first: the error appears beside the field, nothing is saved.
    page.get_by_label("Your name").fill("Nina New")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill("qwertyuiop")
    page.get_by_label("Confirm password").fill("qwertyuiop")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_contain_text("too common")
    shot(page, "signup-error")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    shot(page, "signup-filled")
    page.get_by_role("button", name="Create account").click()

    # Signed in, unverified: "check your inbox".
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    expect(page.locator("main").get_by_text(EMAIL)).to_be_visible()
    shot(page, "check-inbox")

    # The verification link from the mail the real SMTP server received.
    msg = mailbox.last(EMAIL)
    link = re.search(r"https?://\S+", Mailbox.text(msg)).group(0)
    assert link.startswith(f"{live_server.url}/verify-email/")
    page.goto(link)  # opening the link only asks (mail scanners open links too)
    expect(page.get_by_role("heading", name="Verify your e-mail address")).to_be_visible()
    shot(page, "verify-confirm")
    page.get_by_role("button", name=f"Verify {EMAIL}").click()
    expect(page.get_by_role("heading", name="E-mail verified")).to_be_visible()
    shot(page, "verified")

    # Log out (a POST form in the user menu).
    open_user_menu(page)
    shot(page, "user-menu")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    # Log in again.
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    shot(page, "signed-in")

    # Your sessions: one live session (the sign-up one ended at log-out), marked as this one.
    open_user_menu(page)
    page.get_by_role("link", name="Your sessions").click()
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("This session")
    expect(rows.first).to_contain_text("Chrome")
    expect(rows.first).to_contain_text("127.0.0.1")
    shot(page, "sessions")

    # Log out: the account pages are closed again.
    open_user_menu(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shot(page, "logged-out")
    page.goto("/account/sessions")
    expect(page).to_have_url(re.compile(r"/login\?next="))

"""Steps every browser scenario shares: logging in and out like a person would."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.factories import PASSWORD


def log_in(page, email: str, password: str = PASSWORD) -> None:
    """Log in on the apex's form (the page lands wherever the app sends it)."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def sign_in(page, live_server, email: str) -> None:
    """Log in as a member of only ``acme`` and wait for its dashboard."""
    log_in(page, email)
    expect(page).to_have_url(live_server.org_url("acme", "/dashboard"))


def open_user_menu(page) -> None:
    page.locator(".topbar__user summary").click()


def log_out(page) -> None:
    open_user_menu(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

"""Account settings and sessions in real Chromium: errors beside fields, HTMX revoke."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.auth.models import UserSession
from app.extensions import db
from tests import factories as f
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_account_settings_show_errors_beside_fields_and_save(page, live_server, shot):
    f.make_user("ann@example.test", "Ann Example")
    log_in(page, "ann@example.test")
    page.goto("/account")
    expect(page.get_by_role("heading", name="Account settings")).to_be_visible()
    shot(page, "account")

    form = page.locator("form[action='/account/password']")
    form.get_by_label("Current password").fill("not-my-password")
    form.get_by_label("New password", exact=True).fill("granite-meadow-violin-7")
    form.get_by_label("Confirm new password").fill("granite-meadow-violin-7")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text("That is not your current password.")
    shot(page, "password-error")

    page.get_by_label("Name", exact=True).fill("Ann Other")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_text("Your name was saved.")).to_be_visible()
    expect(page.locator(".topbar__user summary")).to_have_text("Ann Other")
    shot(page, "name-saved")


def test_revoking_another_session_swaps_the_list_in_place(page, live_server, shot):
    user = f.make_user("ann@example.test", "Ann Example")
    db.session.add(UserSession(user_id=user.id, ip="203.0.113.9", user_agent=IPHONE))
    db.session.commit()
    log_in(page, "ann@example.test")
    page.goto("/account/sessions")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "two-sessions")

    phone = rows.filter(has_text="Safari on iPhone")
    phone.get_by_role("button", name="Revoke").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("This session")
    expect(page).to_have_url(f"{live_server.url}/account/sessions")
    shot(page, "revoked")
    revoked = db.session.query(UserSession).filter(UserSession.ip == "203.0.113.9").one()
    db.session.refresh(revoked)
    assert revoked.revoked_at is not None


def test_phone_width_is_usable(page, live_server, shot):
    f.make_user("ann@example.test", "Ann Example")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "ann@example.test")
    page.goto("/account")
    shot(page, "account-phone")
    page.goto("/account/sessions")
    shot(page, "sessions-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"page scrolls sideways on a phone ({width}px)"

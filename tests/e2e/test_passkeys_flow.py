"""Passkeys and step-up in real Chromium, with Chromium's own virtual
authenticator (the DevTools WebAuthn domain: CTAP2, internal transport,
resident keys, user verification): a user registers a passkey on the
account page, signs out, and signs in with it without typing anything; the
passkey then serves as the second factor after the password. And an owner
whose sign-in is old is asked to confirm it is them before deleting the
organization, and comes back to the form. ``shot`` runs axe on every page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from app.auth.models import UserSession
from app.extensions import db
from app.util import utcnow
from tests import factories as f
from tests.e2e.helpers import log_in, log_out

pytestmark = pytest.mark.e2e


def virtual_authenticator(page):
    """Attach a platform authenticator that holds passkeys and verifies the user (no prompt)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, found["authenticatorId"]


def add_passkey(page, name: str) -> None:
    page.goto("/account/security")
    page.get_by_label("Name of the new passkey").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_test_id("passkey").filter(has_text=name)).to_be_visible()


def test_register_a_passkey_then_sign_in_with_it_without_a_password(page, live_server, shot):
    f.make_user("ann@example.test", "Ann Example")
    cdp, authenticator_id = virtual_authenticator(page)
    log_in(page, "ann@example.test")
    page.goto("/account/security")
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    shot(page, "no-passkeys")

    add_passkey(page, "Chromium virtual key")
    expect(page.get_by_text("Passkey “Chromium virtual key” added")).to_be_visible()
    shot(page, "passkey-added")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"]  # discoverable: it can sign in alone

    log_out(page)
    shot(page, "login-page")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator(".topbar__user summary")).to_have_text("Ann Example")
    shot(page, "signed-in-with-passkey")

    # With a passkey, the password alone is no longer enough: it is the second step.
    log_out(page)
    log_in(page, "ann@example.test")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    shot(page, "second-step")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.locator(".topbar__user summary")).to_have_text("Ann Example")
    page.goto("/account/security")
    expect(page.get_by_text("last used")).to_be_visible()
    shot(page, "passkey-used")


def test_a_browser_without_a_passkey_for_the_site_is_told_so(page, live_server, shot):
    virtual_authenticator(page)  # an authenticator, but holding nothing for this site
    page.goto("/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("No passkey was used")
    shot(page, "no-passkey-here")


def test_an_old_sign_in_steps_up_before_deleting_the_organization(page, live_server, shot):
    org = f.make_org("acme", "Acme Corporation")
    owner = f.make_user("owner@acme.test", "Olive Owner")
    f.add_member(org, owner, "owner")
    log_in(page, "owner@acme.test")
    expect(page).to_have_url(live_server.org_url("acme", "/dashboard"))
    # The sign-in is now 20 minutes old.
    db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == owner.id)
        .values(authenticated_at=utcnow() - timedelta(minutes=20))
    )
    db.session.commit()

    page.on("dialog", lambda d: d.accept())  # "Delete Acme Corporation?"
    page.goto(live_server.org_url("acme", "/settings/danger"))
    page.get_by_label("Type the organization's address to confirm").fill("acme")
    page.get_by_role("button", name="Delete organization").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert page.url.startswith(live_server.org_url("acme", "/auth/step-up"))
    shot(page, "step-up")

    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Confirm with my password").click()
    expect(page.locator("#password-error")).to_contain_text("not your current password")
    shot(page, "step-up-wrong-password")

    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Confirm with my password").click()
    expect(page).to_have_url(live_server.org_url("acme", "/settings/danger"))
    expect(page.get_by_text("confirmed for the next 10 minutes")).to_be_visible()
    shot(page, "back-at-the-form")

    page.get_by_label("Type the organization's address to confirm").fill("acme")
    page.get_by_role("button", name="Delete organization").click()
    # Deleted: the apex's list of organizations no longer has it.
    expect(page.get_by_text("You are not in any organization yet")).to_be_visible()
    shot(page, "deleted")


def test_a_passkey_steps_up_in_the_platform_console(page, live_server, shot):
    """A super-admin whose second factor is a passkey: signs in with it, and
    confirms with it before impersonating someone."""
    f.make_user("root@example.test", "Rosa Root", superadmin=True, totp=False)
    member = f.make_user("member@example.test", "Max Member")
    virtual_authenticator(page)
    log_in(page, "root@example.test")
    add_passkey(page, "Console key")
    db.session.execute(
        update(UserSession).values(authenticated_at=utcnow() - timedelta(minutes=20))  # every session: old
    )
    db.session.commit()
    page.goto(f"/platform/users/{member.id}")
    box = page.locator("#impersonate")
    box.get_by_label("Reason").fill("Ticket 42")
    box.get_by_role("button", name="Start support session").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    shot(page, "step-up-with-passkey-offered")
    page.get_by_role("button", name="Confirm with a passkey").click()
    expect(page.get_by_text("confirmed for the next 10 minutes")).to_be_visible()
    assert f"/platform/users/{member.id}" in page.url
    shot(page, "back-at-the-person")
    box.get_by_label("Reason").fill("Ticket 42")
    box.get_by_role("button", name="Start support session").click()
    expect(page.get_by_role("region", name="Support session")).to_contain_text("you are acting as Max Member")

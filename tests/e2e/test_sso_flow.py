"""Real Chromium, single sign-on against a real OpenID Connect provider
(node-oidc-provider): an Owner configures a connection through the portal,
tests it (the groups received are shown), maps a group to a role in the
portal's editor, turns it on; then a new person opens the organization's
own address, is offered "Sign in with SSO" there (no address to type),
signs in at the provider, and lands in the organization with the role
their group maps to. axe-core checks every page shown."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e import sso_steps as steps
from tests.e2e.helpers import sign_in
from tests.sso.oidc_peer import CLIENT_ID, CLIENT_SECRET, OidcPeer

pytestmark = pytest.mark.e2e


@pytest.fixture
def idp(live_server, monkeypatch):
    peer = OidcPeer([live_server.url + "/sso/callback/oidc"]).start()
    monkeypatch.setitem(live_server.app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    yield peer
    peer.stop()


def _provider_login(login: str):
    """The provider's own (development) sign-in form, as ``login``."""

    def at_provider(page) -> None:
        expect(page.locator('input[name="login"]')).to_be_visible()
        page.locator('input[name="login"]').fill(login)
        page.locator('input[name="password"]').fill("any password")
        page.locator('button[type="submit"]').click()

    return at_provider


def test_owner_sets_up_oidc_and_a_new_person_signs_in_with_the_mapped_role(
    page, browser, live_server, world, shot, idp, owner_engine
):
    steps.enterprise_with_domain(world, owner_engine)
    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/settings/sso/"))
    expect(page.get_by_role("heading", name="No connection yet")).to_be_visible()
    shot(page, "empty")
    steps.add_connection(page, live_server, "generic", "oidc", "Acme login")
    expect(page.get_by_test_id("our-values")).to_contain_text(live_server.url + "/sso/callback/oidc")
    shot(page, "guide-and-our-values")

    # A wrong issuer is refused beside its field.
    page.get_by_label("Issuer URL").fill("http://127.0.0.1:9")
    page.get_by_label("Client ID").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#issuer-error")).to_contain_text("discovery document")
    shot(page, "issuer-refused")

    page.get_by_label("Issuer URL").fill(idp.issuer)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_label("Scopes").fill("openid email profile groups")  # this provider sends groups on request
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. Test the connection")).to_be_visible()

    steps.run_connection_test(page, _provider_login("alice"), "engineering, tenantry-admins", shot)
    steps.map_group(page, "tenantry-admins", "Admin", shot)
    steps.turn_on(page, shot)

    # A new person opens the organization's address: its sign-in page
    # offers "Sign in with SSO", which goes straight to the provider.
    context, newcomer = steps.new_browser(browser, live_server)
    newcomer.goto(live_server.org_url("acme", "/dashboard"))
    offer = newcomer.get_by_role("link", name="Sign in with SSO to Acme Corporation")
    expect(offer).to_be_visible()
    shot(newcomer, "sign-in-with-sso-offered")
    offer.click()
    _provider_login("alice")(newcomer)
    expect(newcomer).to_have_url(live_server.org_url("acme", "/dashboard"))
    shot(newcomer, "signed-in-through-sso")
    context.close()
    _, role, source = steps.membership(owner_engine, world, "alice@acme.test")
    assert (role, source) == ("admin", "sso")

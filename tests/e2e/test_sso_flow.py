"""Real Chromium, single sign-on against a real OpenID Connect provider
(node-oidc-provider): an Owner configures a connection through the portal,
tests it (the groups received are shown), turns it on; then a new person at
the verified domain types their address on the sign-in page, signs in at the
provider, and lands in the organization with the role their group maps to.
axe-core checks every page shown."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.e2e.helpers import log_out, sign_in
from tests.sso.conftest import verify_domain
from tests.sso.oidc_peer import CLIENT_ID, CLIENT_SECRET, OidcPeer

pytestmark = pytest.mark.e2e


@pytest.fixture
def idp(live_server, monkeypatch):
    peer = OidcPeer([live_server.url + "/sso/callback/oidc"]).start()
    monkeypatch.setitem(live_server.app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    yield peer
    peer.stop()


def _provider_login(page, login: str) -> None:
    """The provider's own (development) sign-in form."""
    expect(page.locator('input[name="login"]')).to_be_visible()
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    page.locator('button[type="submit"]').click()


def test_owner_sets_up_oidc_and_a_new_person_signs_in_with_the_mapped_role(
    page, browser, live_server, world, shot, idp, owner_engine
):
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :a"), {"a": world.acme.id})
    verify_domain(world.acme, "acme.test")
    from app.extensions import db
    from app.rbac.group_roles import GroupRoleMapping
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        db.session.add(GroupRoleMapping(source="sso", group_name="tenantry-admins", role="admin"))
        db.session.commit()

    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/settings/sso/"))
    expect(page.get_by_role("heading", name="No connection yet")).to_be_visible()
    shot(page, "empty")
    page.get_by_label("Identity provider").select_option("generic")
    page.get_by_label("Protocol").select_option("oidc")
    page.get_by_label("Name").fill("Acme login")
    page.get_by_role("button", name="Add connection").click()
    expect(page.get_by_role("heading", name="Acme login")).to_be_visible()
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

    page.get_by_role("button", name="Test the connection").click()
    _provider_login(page, "alice")
    expect(page.get_by_test_id("last-test")).to_contain_text("Test passed")
    expect(page.get_by_test_id("test-groups")).to_have_text("engineering, tenantry-admins")
    shot(page, "test-passed")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("is on: your people can sign in with it")).to_be_visible()
    shot(page, "enabled")
    log_out(page)

    # A new person, in a browser of their own.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    newcomer = context.new_page()
    newcomer.goto("/login")
    newcomer.get_by_label("E-mail").fill("alice@acme.test")
    newcomer.get_by_role("button", name="Log in").click()
    _provider_login(newcomer, "alice")
    expect(newcomer).to_have_url(live_server.org_url("acme", "/dashboard"))
    shot(newcomer, "signed-in-through-sso")
    context.close()
    with owner_engine.connect() as c:
        role, source = c.execute(
            text(
                "SELECT m.role, m.role_source FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE u.email = 'alice@acme.test' AND m.organization_id = :a"
            ),
            {"a": world.acme.id},
        ).one()
    assert (role, source) == ("admin", "sso")

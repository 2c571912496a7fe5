"""Real Chromium, SAML single sign-on against pysaml2's own IdP on loopback
(``tests/sso/saml_idp.py``, its key made for the run, real signed
responses): an Owner adds a SAML connection through the portal, copies our
ACS URL and entity id, saves (which makes our key: our metadata can now be
downloaded), pastes the IdP's metadata, tests the connection (the
attributes and groups received are shown) and turns it on; then a new
person at the verified domain types their address on the sign-in page,
signs in at the IdP, whose page posts the response to our ACS, and lands in
the organization with the role their group maps to. axe-core checks every
page of ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.e2e.helpers import log_out, sign_in
from tests.sso.conftest import verify_domain
from tests.sso.saml_idp import IdentityProvider

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def idp():
    peer = IdentityProvider().start()
    peer.add_user("it@acme.test", "Ida Tester", ["it-staff"])
    peer.add_user("nora@acme.test", "Nora New", ["tenantry-managers", "everyone"])
    yield peer
    peer.stop()


def _at_idp(page, who: str) -> None:
    """The test IdP's pages: choose the person, then its form posts the signed response to our ACS."""
    page.get_by_role("button", name=f"Sign in as {who}").click()
    page.get_by_role("button", name="Continue to the service").click()


def test_owner_sets_up_saml_and_a_new_person_signs_in_with_the_mapped_role(
    page, browser, live_server, world, shot, idp, owner_engine
):
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :a"), {"a": world.acme.id})
    verify_domain(world.acme, "acme.test")
    from app.extensions import db
    from app.rbac.group_roles import GroupRoleMapping
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        db.session.add(GroupRoleMapping(source="sso", group_name="tenantry-managers", role="manager"))
        db.session.commit()

    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/settings/sso/"))
    page.get_by_label("Identity provider").select_option("okta")
    page.get_by_label("Protocol").select_option("saml")
    page.get_by_label("Name").fill("Acme Okta")
    page.get_by_role("button", name="Add connection").click()
    expect(page.get_by_role("heading", name="Acme Okta")).to_be_visible()
    values = page.get_by_test_id("our-values")
    expect(values).to_contain_text(live_server.org_url("acme", "/sso/saml/"))
    expect(values).to_contain_text("/acs")
    expect(page.get_by_text("Audience URI (SP Entity ID)")).to_be_visible()  # Okta's own words in the guide
    shot(page, "guide-and-our-values")

    # Saved without their metadata: our key is made, our metadata downloadable.
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("saml-metadata")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("saml-metadata").click()
    assert "WantAssertionsSigned" in Path(download.value.path()).read_text()

    # Metadata that is not metadata is refused beside its field.
    page.get_by_label("Identity provider metadata (XML)").fill("<nope")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#idp_metadata-error")).to_contain_text("not valid SAML metadata")
    shot(page, "metadata-refused")

    page.get_by_label("Identity provider metadata (XML)").fill(idp.metadata())
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. Test the connection")).to_be_visible()

    page.get_by_role("button", name="Test the connection").click()
    _at_idp(page, "it@acme.test")
    expect(page.get_by_test_id("last-test")).to_contain_text("Test passed")
    expect(page.get_by_test_id("test-groups")).to_have_text("it-staff")
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
    newcomer.get_by_label("E-mail").fill("nora@acme.test")
    newcomer.get_by_role("button", name="Log in").click()
    _at_idp(newcomer, "nora@acme.test")
    expect(newcomer).to_have_url(live_server.org_url("acme", "/dashboard"))
    shot(newcomer, "signed-in-through-saml")
    context.close()
    with owner_engine.connect() as c:
        name, role, source = c.execute(
            text(
                "SELECT u.name, m.role, m.role_source FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE u.email = 'nora@acme.test' AND m.organization_id = :a"
            ),
            {"a": world.acme.id},
        ).one()
        accepted = c.execute(
            text(
                "SELECT count(*) FROM audit_events WHERE organization_id = :a AND action = 'sso.saml_assertion_accepted'"
            ),
            {"a": world.acme.id},
        ).scalar()
    assert (name, role, source) == ("Nora New", "manager", "sso")
    assert accepted == 2  # the test, then the sign-in

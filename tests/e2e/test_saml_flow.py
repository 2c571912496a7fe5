"""Real Chromium, SAML single sign-on against pysaml2's own IdP on loopback
(``tests/sso/saml_idp.py``, its key made for the run, real signed
responses): an Owner adds a SAML connection through the portal, copies our
ACS URL and entity id, saves (which makes our key: our metadata can now be
downloaded), uploads the IdP's metadata file (a file that is not XML is
refused beside the input), tests the connection (the attributes and groups
received are shown), maps a group to a role and turns it on; then a new
person at the verified domain types their address on the sign-in page,
signs in at the IdP, whose page posts the response to our ACS, and lands in
the organization with the role their group maps to. axe-core checks every
page of ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.e2e import sso_steps as steps
from tests.e2e.helpers import sign_in
from tests.sso.saml_idp import IdentityProvider

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def idp():
    peer = IdentityProvider().start()
    peer.add_user("it@acme.test", "Ida Tester", ["it-staff"])
    peer.add_user("nora@acme.test", "Nora New", ["tenantry-managers", "everyone"])
    yield peer
    peer.stop()


def _at_idp(who: str):
    """The test IdP's pages: choose the person, then its form posts the signed response to our ACS."""

    def at_provider(page) -> None:
        page.get_by_role("button", name=f"Sign in as {who}").click()
        page.get_by_role("button", name="Continue to the service").click()

    return at_provider


def _file(name: str, body: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": body}


def test_owner_sets_up_saml_and_a_new_person_signs_in_with_the_mapped_role(
    page, browser, live_server, world, shot, idp, owner_engine
):
    steps.enterprise_with_domain(world, owner_engine)
    sign_in(page, live_server, "owner@acme.test")
    steps.add_connection(page, live_server, "okta", "saml", "Acme Okta")
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

    # A metadata file that is not XML is refused beside its input.
    metadata_file = page.get_by_label("Identity provider metadata file")
    metadata_file.set_input_files(_file("metadata.pdf", b"%PDF-1.4 not metadata", "application/pdf"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#idp_metadata_file-error")).to_contain_text("not XML")
    shot(page, "metadata-file-refused")

    # Pasted text that is not metadata is refused beside its field.
    page.get_by_label("Identity provider metadata (XML)").fill("<nope")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#idp_metadata-error")).to_contain_text("not valid SAML metadata")

    # Their metadata, as the file the provider gives.
    page.get_by_label("Identity provider metadata (XML)").fill("")
    metadata_file.set_input_files(_file("okta-metadata.xml", idp.metadata().encode(), "application/xml"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. Test the connection")).to_be_visible()
    shot(page, "metadata-uploaded")

    steps.run_connection_test(page, _at_idp("it@acme.test"), "it-staff", shot)
    steps.map_group(page, "tenantry-managers", "Manager", shot)
    steps.turn_on(page, shot)

    context, newcomer = steps.new_browser(browser, live_server)
    steps.sign_in_by_email(newcomer, "nora@acme.test", _at_idp("nora@acme.test"))
    expect(newcomer).to_have_url(live_server.org_url("acme", "/dashboard"))
    shot(newcomer, "signed-in-through-saml")
    context.close()
    assert steps.membership(owner_engine, world, "nora@acme.test") == ("Nora New", "manager", "sso")
    with owner_engine.connect() as c:
        accepted = c.execute(
            text(
                "SELECT count(*) FROM audit_events WHERE organization_id = :a AND action = 'sso.saml_assertion_accepted'"
            ),
            {"a": world.acme.id},
        ).scalar()
    assert accepted == 2  # the test, then the sign-in

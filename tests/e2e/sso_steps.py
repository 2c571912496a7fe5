"""Steps the single sign-on scenarios share (OpenID Connect in
test_sso_flow.py, SAML in test_saml_flow.py): acme made an enterprise
organization with a verified domain, a connection added through the portal,
a group mapped to a role in the portal's editor, the connection tested and
turned on, a new person signing in from a browser of their own, and the
membership they land with."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect
from sqlalchemy import text

from tests.e2e.helpers import log_out
from tests.sso.conftest import verify_domain


def enterprise_with_domain(world, owner_engine) -> None:
    """Acme on the enterprise plan (SSO, SCIM) with acme.test verified."""
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :a"), {"a": world.acme.id})
    verify_domain(world.acme, "acme.test")


def add_connection(page, live_server, provider: str, protocol: str, name: str) -> None:
    """From the portal's index: add a draft connection and land on its page."""
    page.goto(live_server.org_url("acme", "/settings/sso/"))
    page.get_by_label("Identity provider").select_option(provider)
    page.get_by_label("Protocol").select_option(protocol)
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Add connection").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def run_connection_test(page, at_provider: Callable[[object], None], groups: str, shot) -> None:
    """Test the connection (``at_provider`` signs in at the provider); the groups received are shown."""
    page.get_by_role("button", name="Test the connection").click()
    at_provider(page)
    expect(page.get_by_test_id("last-test")).to_contain_text("Test passed")
    expect(page.get_by_test_id("test-groups")).to_have_text(groups)
    shot(page, "test-passed")


def map_group(page, group: str, role: str, shot) -> None:
    """In the connection page's group editor: ``group`` gives ``role`` at SSO sign-in."""
    page.get_by_label("Group", exact=True).fill(group)
    page.get_by_label("Role", exact=True).select_option(label=role)
    page.get_by_label("For", exact=True).select_option("sso")
    page.get_by_role("button", name="Map group").click()
    expect(page.get_by_text(f"Members of {group} get {role}")).to_be_visible()
    expect(page.get_by_test_id("group-mappings")).to_contain_text(group)
    shot(page, "group-mapped")


def turn_on(page, shot) -> None:
    """Turn the tested connection on, then log the admin out."""
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("is on: your people can sign in with it")).to_be_visible()
    shot(page, "enabled")
    log_out(page)


def new_browser(browser, live_server):
    """A browser of a new person's own (no cookies): ``(context, page)``."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def sign_in_by_email(page, email: str, at_provider: Callable[[object], None]) -> None:
    """Home-realm discovery: the address typed on the apex sign-in page leads to the provider."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Log in").click()
    at_provider(page)


def membership(owner_engine, world, email: str) -> tuple[str, str, str]:
    """``(name, role, role source)`` of ``email``'s acme membership."""
    with owner_engine.connect() as c:
        return tuple(
            c.execute(
                text(
                    "SELECT u.name, m.role, m.role_source FROM memberships m JOIN users u ON u.id = m.user_id "
                    "WHERE u.email = :e AND m.organization_id = :a"
                ),
                {"e": email, "a": world.acme.id},
            ).one()
        )

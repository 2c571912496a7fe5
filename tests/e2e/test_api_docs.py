"""Real Chromium on the API reference: the vendored Swagger UI draws every
operation of ``/api/v1/openapi.json`` under the strict CSP (a
``securitypolicyviolation`` listener, installed before any page script, fails
the test on any violation), an operation opens with its parameters and
responses, the problem types stay linkable; without JavaScript the page is
the server-rendered reference."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.api import openapi

pytestmark = pytest.mark.e2e

LISTEN = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', function (e) {"
    "  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || ''));"
    "}, true);"
)


def _operations(live_server) -> int:
    with live_server.app.app_context():
        return sum(len(ops) for ops in openapi.document()["paths"].values())


def test_the_viewer_draws_every_operation_under_the_strict_csp(page, live_server, world, shot):
    page.add_init_script(LISTEN)
    response = page.goto(live_server.org_url("acme", "/api/v1/docs"))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp

    viewer = page.locator("#api-viewer[data-ready='true']")
    expect(viewer).to_be_visible(timeout=20_000)
    expect(page.locator("#api-reference-static")).to_be_hidden()
    expect(viewer.locator(".opblock")).to_have_count(_operations(live_server))
    expect(page.get_by_role("heading", name="Tenantry API")).to_be_visible()
    for tag in ("Members", "Projects", "Webhooks"):
        expect(viewer.locator(".opblock-tag", has_text=tag).first).to_be_visible()
    shot(page, "reference")

    members = viewer.locator(".opblock-get", has=page.locator("[data-path='/api/v1/members']")).first
    members.locator(".opblock-summary-control").click()
    expect(members.locator(".parameters-container")).to_contain_text("cursor")
    expect(members.locator(".responses-wrapper")).to_contain_text("Retry-After")
    # Swagger UI's "Try it out" is off (supportedSubmitMethods: []).
    expect(members.get_by_role("button", name="Try it out")).to_have_count(0)
    shot(page, "list-members-open")

    # A problem's type links here: the problem types are on the page.
    expect(page.locator("#problem-missing-scope")).to_be_visible()
    assert page.evaluate("window.__csp") == []


def test_without_javascript_the_reference_is_rendered_on_the_server(browser, live_server, world, tmp_path):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 860})
    try:
        pg = context.new_page()
        pg.goto(live_server.org_url("acme", "/api/v1/docs"))
        expect(pg.locator("#api-viewer")).to_be_hidden()
        expect(pg.locator("#api-reference-static")).to_be_visible()
        expect(pg.locator("#op-list_members")).to_contain_text("List members")
        expect(pg.locator("#problem-rate-limited")).to_be_visible()
        pg.screenshot(path=str(tmp_path / "no-js.png"))
    finally:
        context.close()

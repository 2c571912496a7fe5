"""Steps every browser scenario shares: logging in and out like a person would."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from tests.factories import PASSWORD, totp_code


def log_in(page, email: str, password: str = PASSWORD, totp_secret: str | None = None, ahead: int = 0) -> None:
    """Log in on the apex's form (the page lands wherever the app sends it);
    with ``totp_secret``, answer the second step with a code computed from it
    (``ahead`` steps later: a code already used in this step is refused)."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if totp_secret:
        pass_second_step(page, totp_secret, ahead)


def pass_second_step(page, totp_secret: str, ahead: int = 0) -> None:
    """On the sign-in's second step: type the authenticator's code."""
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Authentication code").fill(totp_code(totp_secret, ahead))
    page.get_by_role("button", name="Verify").click()


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


# axe-core, as shipped inside axe-playwright-python (no download at run
# time), with every WCAG 2.0/2.1 level A and AA rule, the ones axe still
# calls experimental included (label-content-name-mismatch, WCAG 2.5.3).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# A page still swapping an htmx response or running a CSS transition (a
# row fading in, a hover colour) would be judged half-way: wait for htmx to
# settle and jump finite animations to their end first.
_SETTLE = """async () => {
  for (let i = 0; i < 60; i++) {
    if (!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const a of document.getAnimations()) { try { a.finish(); } catch (e) { /* infinite: a spinner */ } }
}"""
_RUN_AXE = """async (tags) => {
  const rules = axe.getRules(tags).map((r) => r.ruleId);
  const results = await axe.run(document, {runOnly: {type: "rule", values: rules}, resultTypes: ["violations"]});
  return results.violations;
}"""


def _run_axe(page) -> list[dict]:
    from axe_playwright_python.base import AXE_SCRIPT

    page.wait_for_load_state()
    page.evaluate(_SETTLE)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    return page.evaluate(_RUN_AXE, WCAG_TAGS)


def axe_violations(page) -> list[str]:
    """The page's axe-core violations, one readable line per element (empty when none).

    A navigation that replaces the document while axe runs (a test that ends
    right after a click) is waited for and the new page checked; a violation
    is confirmed by a second run a moment later, so a passing state of a
    transition is not reported, while a real one (it stays) always is."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            violations = _run_axe(page)
            if violations and attempt == 0:
                page.wait_for_timeout(300)
                continue
            break
        except Error as e:
            if attempt == 2 or "destroyed" not in str(e) and "navigat" not in str(e):
                raise
            page.wait_for_timeout(300)
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            why = " ".join(c["message"] for c in node.get("any", []) + node.get("all", []) + node.get("none", []))
            html = " ".join(node["html"].split())[:160]
            lines.append(f"{violation['id']} ({violation['impact']}) at {target}: {why} [{html}]")
    return lines


def check_a11y(page, where: str = "") -> None:
    """Fail with a readable list when axe-core finds any WCAG 2.1 A/AA violation.

    ``TENANTRY_AXE_COLLECT=/path/file`` appends the findings to that file
    instead of failing: a survey of the whole suite in one run."""
    found = axe_violations(page)
    if found and os.environ.get("TENANTRY_AXE_COLLECT"):
        with open(os.environ["TENANTRY_AXE_COLLECT"], "a") as out:
            out.writelines(f"{where or page.url}\t{line}\n" for line in found)
        return
    if found:
        listing = "\n  ".join(found)
        raise AssertionError(f"axe-core: {len(found)} violation(s) on {where or page.url}:\n  {listing}")

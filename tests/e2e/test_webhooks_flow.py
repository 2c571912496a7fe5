"""Real Chromium on the webhooks pages: an admin creates an endpoint pointing
at a receiver this test starts, sends a test event, finds it in the delivery
log, rotates the secret, and the receiver verifies both signatures with the
Standard Webhooks library."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from tests.conftest import run_due_jobs
from tests.e2e.helpers import check_a11y, sign_in
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_admin_creates_an_endpoint_tests_it_and_rotates_its_secret(
    page, live_server, world, shot, receiver, monkeypatch
):
    # The served app may deliver to this machine, as WEBHOOKS_ALLOW_LOOPBACK=1 does in development.
    monkeypatch.setitem(live_server.app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    sign_in(page, live_server, "admin@acme.test")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="No webhook endpoints yet")).to_be_visible()
    page.get_by_role("link", name="New endpoint").first.click()

    # A blocked address is refused beside the field.
    page.get_by_label("Endpoint URL").fill("http://169.254.169.254/latest/meta-data")
    page.locator("#event-project-created").check()
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#url-error")).to_contain_text("cloud metadata address")
    shot(page, "refused")

    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Description").fill("Receiver started by the test")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("heading", name="Endpoint created")).to_be_visible()
    secret = page.get_by_label("Signing secret for").input_value()
    assert secret.startswith("whsec_")
    shot(page, "secret")

    page.get_by_role("link", name="I have copied it").click()
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    run_due_jobs(live_server.app)
    page.reload()
    log = page.locator("#deliveries-table")
    expect(log.get_by_text("Succeeded")).to_be_visible()
    expect(log.get_by_role("link", name="webhook.test")).to_be_visible()
    shot(page, "delivery-log")
    [got] = receiver.requests
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"

    log.get_by_role("link", name="webhook.test").click()
    expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    expect(page.get_by_text("webhook-signature:")).to_be_visible()
    check_a11y(page, "delivery")
    shot(page, "delivery")
    page.get_by_role("link", name=receiver.url).click()

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="New signing secret")).to_be_visible()
    new_secret = page.get_by_label("Signing secret for").input_value()
    assert new_secret.startswith("whsec_") and new_secret != secret
    shot(page, "rotated")
    page.get_by_role("link", name="I have copied it").click()
    expect(page.get_by_text("The previous secret stays valid until")).to_be_visible()
    page.get_by_role("button", name="Send test event").click()
    run_due_jobs(live_server.app)
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(secret).verify(got.body, got.headers)  # receivers still on the old secret keep working
    Webhook(new_secret).verify(got.body, got.headers)
    page.reload()
    expect(page.locator("#deliveries-table").get_by_text("Succeeded")).to_have_count(2)
    shot(page, "after-rotation")

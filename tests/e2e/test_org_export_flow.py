"""Real Chromium on Settings → Data export: the Owner starts an export,
watches the HTMX-polled progress bar while a worker writes the archive,
and downloads the ZIP (its manifest names every file with its SHA-256)."""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile

import pytest
from playwright.sync_api import expect

from tests.conftest import run_due_jobs
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.e2e


def test_owner_exports_the_organization_and_downloads_the_archive(page, live_server, world, shot, tmp_path):
    from app.demo import load_demo

    load_demo()  # enough rows (90 days of audit history) for the bar to move
    sign_in(page, live_server, "owner@acme.test")
    page.goto(live_server.org_url("acme", "/settings/"))
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Data export").click()
    # The demo's finished export is listed; a new one is started beside it.
    expect(page.locator("#exports tbody tr")).to_have_count(1)
    expect(page.locator("#exports progress")).to_have_attribute("value", "100")
    shot(page, "demo-export")

    page.get_by_role("button", name="Start an export").click()
    bar = page.locator("#exports tbody tr").first.locator("progress")
    expect(bar).to_be_visible()
    expect(page.get_by_text("Waiting for a worker")).to_be_visible()
    shot(page, "queued")

    # A worker picks the job up while the page keeps polling.
    worker = threading.Thread(target=run_due_jobs, args=(live_server.app,), name="export-worker")
    worker.start()
    expect(bar).to_have_attribute("value", "100", timeout=60_000)
    worker.join(60)
    link = page.locator("#exports tbody tr").first.get_by_role("link", name="Download the archive")
    expect(link).to_be_visible()
    shot(page, "ready")

    with page.expect_download() as info:
        link.click()
    path = tmp_path / "export.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["organization"]["slug"] == "acme"
        for name, spec in manifest["files"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == spec["sha256"]
        assert manifest["files"]["audit_events.jsonl"]["rows"] > 100

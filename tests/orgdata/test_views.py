"""Settings → Data export: an Owner starts an export, watches it (HTMX
fragment), downloads it within 24 hours; everyone else is refused; every
step is audited."""

from __future__ import annotations

import io
import json
import re
import zipfile

from sqlalchemy import text

from tests.conftest import UNKNOWN_ID, csrf_token, url


def start(client):
    return client.post(url("acme", "/settings/export/"), data={"csrf_token": csrf_token(client, "acme")})


def location(r):
    loc = r.headers["Location"]
    return loc if loc.startswith("http") else url("acme", loc)


def actions(owner_engine, org):
    with owner_engine.connect() as c:
        return [
            r.action
            for r in c.execute(
                text(
                    "SELECT action FROM audit_events WHERE organization_id = :o AND action LIKE 'org.export%' ORDER BY id"
                ),
                {"o": org.id},
            )
        ]


def test_owner_exports_watches_progress_and_downloads(world, login, run_jobs, owner_engine):
    c = login(world.users["owner"], "acme")
    page = c.get(url("acme", "/settings/export/"))
    assert page.status_code == 200 and b"No exports yet" in page.data and b"Data export" in page.data
    r = start(c)
    assert r.status_code == 302
    show_url = location(r)
    queued = c.get(show_url, headers={"HX-Request": "true"})
    assert queued.status_code == 200 and "HX-Request" in queued.headers["Vary"]
    assert b"<html" not in queued.data and b'hx-trigger="every 1s"' in queued.data  # keeps polling
    assert b"Waiting for a worker" in queued.data

    run_jobs()
    done = c.get(show_url, headers={"HX-Request": "true"})
    assert b"hx-trigger" not in done.data  # finished: the bar stops asking
    assert b'value="100"' in done.data and b"Download the archive" in done.data
    link = re.search(rb'href="([^"]+/download)"', done.data).group(1).decode()
    got = c.get(url("acme", link))
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/zip"
    assert got.headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(got.data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        projects = [json.loads(x) for x in zf.read("projects.jsonl").splitlines()]
    assert manifest["organization"]["slug"] == "acme"
    with owner_engine.connect() as conn:
        names = conn.execute(
            text("SELECT name FROM projects WHERE organization_id = :o"), {"o": world.acme.id}
        ).scalars()
        assert sorted(p["name"] for p in projects) == sorted(names)
    assert all("Globex" not in p["name"] for p in projects)  # only this organization's rows
    assert actions(owner_engine, world.acme) == [
        "org.export_requested",
        "org.export_completed",
        "org.export_downloaded",
    ]


def test_admin_and_member_may_not_export(world, login):
    for role in ("admin", "member"):
        c = login(world.users[role], "acme")
        assert c.get(url("acme", "/settings/export/")).status_code == 403
        assert start(c).status_code == 403


def test_expired_link_is_refused_with_a_clear_message(world, login, run_jobs, owner_engine):
    c = login(world.users["owner"], "acme")
    show_url = location(start(c))
    run_jobs()
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE org_exports SET expires_at = now() - interval '1 minute'"))
    r = c.get(show_url + "/download")
    assert r.status_code == 410 and b"expired" in r.data
    assert actions(owner_engine, world.acme) == ["org.export_requested", "org.export_completed"]


def test_a_second_export_while_one_is_being_written_is_422(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    assert start(c).status_code == 302
    r = start(c)
    assert r.status_code == 422 and b"already being prepared" in r.data
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM org_exports")).scalar() == 1


def test_another_organizations_export_is_404(world, login, run_jobs):
    globex_owner = login(world.users["globex_owner"], "globex")
    r = globex_owner.post(url("globex", "/settings/export/"), data={"csrf_token": csrf_token(globex_owner, "globex")})
    export_id = r.headers["Location"].rsplit("/", 1)[1]
    run_jobs()
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", f"/settings/export/{export_id}")).status_code == 404
    assert c.get(url("acme", f"/settings/export/{export_id}/download")).status_code == 404
    assert c.get(url("acme", f"/settings/export/{UNKNOWN_ID}")).status_code == 404
    assert c.get(url("acme", "/settings/export/not-an-id")).status_code == 404


def test_start_without_csrf_changes_nothing(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    r = c.post(url("acme", "/settings/export/"), data={})
    assert r.status_code in (400, 403, 422)
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM org_exports")).scalar() == 0

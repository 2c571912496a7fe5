"""Create, view, inline edit, archive, delete: permissions, validation, audit,
and another organization's project always being a 404."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import UNKNOWN_ID, url


def project_id(world, slug: str, i: int = 0) -> str:
    """The id of ``world``'s i-th project of ``slug`` (read inside its organization)."""
    org = getattr(world, slug)
    with tenant_context(org.id):
        return str(world.projects[slug][i].id)


def row(owner_engine, pid):
    """A project row as the table owner sees it (no scoping at all)."""
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM projects WHERE id = :id"), {"id": pid}).mappings().first()


def count_projects(owner_engine, org_id) -> int:
    with owner_engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM projects WHERE organization_id = :o"), {"o": org_id}).scalar()


# --------------------------------------------------------------------------- create
def test_member_creates_a_project_owned_by_a_member(world, login, post, audit_events, owner_engine):
    c = login(world.users["member"], "acme")
    form = c.get(url("acme", "/projects/new"))
    assert form.status_code == 200

    r = post(
        c,
        "acme",
        "/projects/",
        {"name": "  New  launch ", "description": "Go", "owner_id": str(world.users["viewer"].id)},
    )
    assert r.status_code == 302
    pid = r.headers["Location"].rsplit("/", 1)[1]
    saved = row(owner_engine, pid)
    assert saved["organization_id"] == world.acme.id
    assert saved["name"] == "New launch" and saved["description"] == "Go" and saved["status"] == "active"
    assert saved["owner_id"] == world.users["viewer"].id
    assert [a for a, _ in audit_events] == ["project.created"]
    assert audit_events[0][1]["after"]["name"] == "New launch"
    page = c.get(url("acme", f"/projects/{pid}"))
    assert b"New launch" in page.data and b"Acme Viewer" in page.data


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": "", "owner_id": "ME"}, "name", "Give the project a name."),
        ({"name": "   ", "owner_id": "ME"}, "name", "Give the project a name."),
        # (a NUL is refused with 400 before any view: tests/test_hostile_input.py)
        ({"name": "\x07\x1b", "owner_id": "ME"}, "name", "Give the project a name."),
        ({"name": "x" * 121, "owner_id": "ME"}, "name", "Use at most 120 characters."),
        ({"name": "ok", "description": "d" * 5001, "owner_id": "ME"}, "description", "Use at most 5,000 characters."),
        ({"name": "ok"}, "owner_id", "Choose the project&#39;s owner."),
        ({"name": "ok", "owner_id": "not-a-uuid"}, "owner_id", "Choose a member of this organization."),
        ({"name": "ok", "owner_id": UNKNOWN_ID}, "owner_id", "Choose a member of this organization."),
        ({"name": "ok", "owner_id": "GLOBEX_MEMBER"}, "owner_id", "Choose a member of this organization."),
        ({"name": "ok", "owner_id": "OUTSIDER"}, "owner_id", "Choose a member of this organization."),
    ],
)
def test_bad_input_is_422_beside_the_field_and_saves_nothing(
    world, login, post, owner_engine, audit_events, data, field, message
):
    ids = {
        "ME": world.users["member"].id,
        "GLOBEX_MEMBER": world.users["globex_member"].id,
        "OUTSIDER": world.users["outsider"].id,
    }
    data = {k: str(ids.get(v, v)) for k, v in data.items()}
    c = login(world.users["member"], "acme")
    r = post(c, "acme", "/projects/", data)
    assert r.status_code == 422
    body = r.data.decode()
    assert f'id="{field}-error"' in body and message in body
    assert count_projects(owner_engine, world.acme.id) == 3
    assert audit_events == []


def test_owner_list_offers_only_this_organizations_members(world, login):
    body = login(world.users["owner"], "acme").get(url("acme", "/projects/new")).data.decode()
    assert str(world.users["viewer"].id) in body and str(world.users["consultant"].id) in body
    assert str(world.users["globex_member"].id) not in body and "Globex" not in body


def test_deactivated_member_cannot_become_owner(world, login, post, owner_engine):
    lapsed = f.make_user("lapsed@acme.test", "Lapsed")
    f.add_member(world.acme, lapsed, "member", status="deactivated")
    c = login(world.users["owner"], "acme")
    r = post(c, "acme", "/projects/", {"name": "x", "owner_id": str(lapsed.id)})
    assert r.status_code == 422
    assert count_projects(owner_engine, world.acme.id) == 3


def test_create_without_csrf_token_is_refused(world, login, owner_engine):
    c = login(world.users["member"], "acme")
    r = c.post(url("acme", "/projects/"), data={"name": "x", "owner_id": str(world.users["member"].id)})
    assert r.status_code == 400
    assert count_projects(owner_engine, world.acme.id) == 3


# --------------------------------------------------------------------------- view
def test_show_page_and_its_htmx_fragment(world, login):
    c = login(world.users["viewer"], "acme")
    pid = project_id(world, "acme")
    full = c.get(url("acme", f"/projects/{pid}"))
    assert full.status_code == 200 and b"<html" in full.data and b"Acme Project 0" in full.data
    frag = c.get(url("acme", f"/projects/{pid}"), headers={"HX-Request": "true"})
    assert frag.data.strip().startswith(b'<section class="card" id="project-details"')
    assert "HX-Request" in frag.headers["Vary"]


@pytest.mark.parametrize("suffix", ["", "/edit", "/delete"])
def test_other_organizations_project_is_404(world, login, suffix):
    c = login(world.users["owner"], "acme")
    r = c.get(url("acme", f"/projects/{project_id(world, 'globex')}{suffix}"))
    assert r.status_code == 404
    assert b"Globex" not in r.data


@pytest.mark.parametrize("bad", ["nope", "1", UNKNOWN_ID, "00000000-0000-0000-0000-00000000000g", "%00"])
def test_malformed_or_unknown_ids_are_404_not_500(world, login, bad):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", f"/projects/{bad}")).status_code == 404


def test_viewer_sees_no_edit_archive_or_delete_controls(world, login):
    body = login(world.users["viewer"], "acme").get(url("acme", f"/projects/{project_id(world, 'acme')}")).data
    assert b"/edit" not in body and b"/archive" not in body and b"/delete" not in body


# --------------------------------------------------------------------------- permissions
@pytest.mark.parametrize(
    "role, method, suffix, allowed",
    [
        ("viewer", "get", "/new", False),
        ("viewer", "post", "/", False),
        ("viewer", "get", "/{id}/edit", False),
        ("viewer", "post", "/{id}", False),
        ("viewer", "post", "/{id}/archive", False),
        ("viewer", "post", "/{id}/unarchive", False),
        ("viewer", "get", "/{id}/delete", False),
        ("member", "get", "/{id}/delete", False),
        ("member", "post", "/{id}/delete", False),
        ("manager", "post", "/{id}/delete", False),
        ("member", "get", "/{id}/edit", True),
        ("admin", "get", "/{id}/delete", True),
    ],
)
def test_permissions_per_action(world, login, post, owner_engine, role, method, suffix, allowed):
    pid = project_id(world, "acme")
    before = dict(row(owner_engine, pid))
    c = login(world.users[role], "acme")
    path = "/projects" + suffix.format(id=pid)
    r = (
        c.get(url("acme", path))
        if method == "get"
        else post(c, "acme", path, {"name": "Hacked", "owner_id": str(world.users[role].id)})
    )
    if allowed:
        assert r.status_code == 200
    else:
        assert r.status_code == 403
        assert dict(row(owner_engine, pid)) == before
        assert count_projects(owner_engine, world.acme.id) == 3


def test_anonymous_is_sent_to_log_in_and_htmx_gets_401(world, client):
    r = client.get(url("acme", "/projects/"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = client.get(url("acme", "/projects/"), headers={"HX-Request": "true"})
    assert r.status_code == 401 and "/login" in r.headers["HX-Redirect"]


# --------------------------------------------------------------------------- inline edit
def test_edit_form_is_a_fragment_with_htmx_and_a_page_without(world, login):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    frag = c.get(url("acme", f"/projects/{pid}/edit"), headers={"HX-Request": "true"})
    assert frag.status_code == 200 and b"<html" not in frag.data
    assert f'hx-post="/projects/{pid}"'.encode() in frag.data and b'hx-swap="outerHTML"' in frag.data
    page = c.get(url("acme", f"/projects/{pid}/edit"))
    assert b"<html" in page.data and f'action="/projects/{pid}"'.encode() in page.data
    assert b"hx-post" not in page.data  # the full page posts as a plain form


def test_inline_update_swaps_the_details_back_and_audits_changed_fields(world, login, post, owner_engine, audit_events):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    r = post(
        c,
        "acme",
        f"/projects/{pid}",
        {"name": "Renamed", "description": "", "owner_id": str(world.users["owner"].id), "version": "1"},
        htmx=True,
    )
    assert r.status_code == 200
    assert r.data.strip().startswith(b'<section class="card" id="project-details"')
    assert b'<h1 id="project-title" hx-swap-oob="true">Renamed</h1>' in r.data
    assert row(owner_engine, pid)["name"] == "Renamed"
    assert [a for a, _ in audit_events] == ["project.updated"]
    assert audit_events[0][1]["before"] == {"name": "Acme Project 0"}
    assert audit_events[0][1]["after"] == {"name": "Renamed"}


def test_update_without_htmx_redirects_to_the_project(world, login, post, owner_engine):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    r = post(
        c,
        "acme",
        f"/projects/{pid}",
        {"name": "Plain", "description": "new words", "owner_id": str(world.users["member"].id), "version": "1"},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/projects/{pid}")
    saved = row(owner_engine, pid)
    assert (saved["name"], saved["description"], saved["owner_id"]) == ("Plain", "new words", world.users["member"].id)


def test_update_with_bad_input_is_422_with_the_form_fragment(world, login, post, owner_engine, audit_events):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    before = dict(row(owner_engine, pid))
    r = post(
        c, "acme", f"/projects/{pid}", {"name": "", "owner_id": str(world.users["owner"].id), "version": "1"}, htmx=True
    )
    assert r.status_code == 422
    assert r.data.strip().startswith(b'<section class="card" id="project-details"')
    assert b"Give the project a name." in r.data
    r = post(
        c, "acme", f"/projects/{pid}", {"name": "ok", "owner_id": str(world.users["globex_owner"].id), "version": "1"}
    )
    assert r.status_code == 422 and b"<html" in r.data and b"Choose a member of this organization." in r.data
    assert dict(row(owner_engine, pid)) == before
    assert audit_events == []


def test_update_that_changes_nothing_records_nothing(world, login, post, audit_events):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    r = post(
        c,
        "acme",
        f"/projects/{pid}",
        {"name": "Acme Project 0", "description": "", "owner_id": str(world.users["owner"].id), "version": "1"},
    )
    assert r.status_code == 302
    assert audit_events == []


# --------------------------------------------------------------------------- archive / delete
def test_archive_and_restore(world, login, post, owner_engine, audit_events):
    c = login(world.users["member"], "acme")
    pid = project_id(world, "acme")
    r = post(c, "acme", f"/projects/{pid}/archive")
    assert r.status_code == 302 and row(owner_engine, pid)["status"] == "archived"
    listed = c.get(url("acme", "/projects/"), headers={"HX-Request": "true"}).data
    assert b"Acme Project 1" in listed and b"Acme Project 0" not in listed
    post(c, "acme", f"/projects/{pid}/archive")  # again: nothing to do, nothing recorded
    r = post(c, "acme", f"/projects/{pid}/unarchive")
    assert r.status_code == 302 and row(owner_engine, pid)["status"] == "active"
    assert [a for a, _ in audit_events] == ["project.archived", "project.restored"]


def test_delete_asks_first_then_deletes(world, login, post, owner_engine, audit_events):
    c = login(world.users["admin"], "acme")
    pid = project_id(world, "acme")
    confirm = c.get(url("acme", f"/projects/{pid}/delete"))
    assert confirm.status_code == 200 and b"Delete project" in confirm.data
    assert row(owner_engine, pid) is not None  # asking deletes nothing
    r = post(c, "acme", f"/projects/{pid}/delete")
    assert r.status_code == 302 and r.headers["Location"].endswith("/projects/")
    assert row(owner_engine, pid) is None
    assert [a for a, _ in audit_events] == ["project.deleted"]
    assert audit_events[0][1]["before"]["name"] == "Acme Project 0"
    assert c.get(url("acme", f"/projects/{pid}")).status_code == 404


@pytest.mark.parametrize(
    "suffix, data",
    [
        ("", {"name": "Pwned", "owner_id": "OWNER"}),
        ("/archive", {}),
        ("/unarchive", {}),
        ("/delete", {}),
    ],
)
def test_writes_aimed_at_another_organization_change_nothing(world, login, post, owner_engine, suffix, data):
    gid = project_id(world, "globex")
    before = dict(row(owner_engine, gid))
    c = login(world.users["owner"], "acme")
    data = {k: str(world.users["owner"].id) if v == "OWNER" else v for k, v in data.items()}
    for htmx in (False, True):
        r = post(c, "acme", f"/projects/{gid}{suffix}", data, htmx=htmx)
        assert r.status_code == 404
        assert b"Globex" not in r.data
    assert dict(row(owner_engine, gid)) == before

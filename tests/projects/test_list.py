"""The projects list: search, status filter, sort, pagination, HTMX fragment,
empty states, and how many queries a page costs."""

from __future__ import annotations

import re

from app.projects.services import COUNT_CAP, PAGE_SIZE
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import url


def names(body: bytes) -> list[str]:
    """Project names in the order the table lists them."""
    return re.findall(r'<a href="/projects/[0-9a-f-]{36}">([^<]+)</a>', body.decode())


def test_member_sees_only_own_organization_projects(world, login):
    r = login(world.users["member"], "acme").get(url("acme", "/projects/"))
    assert r.status_code == 200
    assert names(r.data) == ["Acme Project 0", "Acme Project 1", "Acme Project 2"]
    assert b"Globex" not in r.data


def test_full_page_without_htmx_and_fragment_with_it(world, login):
    c = login(world.users["viewer"], "acme")
    full = c.get(url("acme", "/projects/"))
    assert full.status_code == 200
    assert b"<html" in full.data and b'id="projects-filter"' in full.data and b'id="projects-table"' in full.data
    assert "HX-Request" in full.headers["Vary"]
    frag = c.get(url("acme", "/projects/"), headers={"HX-Request": "true"})
    assert frag.status_code == 200
    assert b"<html" not in frag.data and b'id="projects-filter"' not in frag.data
    assert frag.data.strip().startswith(b'<div id="projects-table">')
    assert "HX-Request" in frag.headers["Vary"]
    assert names(frag.data) == names(full.data)


def test_history_restore_gets_the_full_page(world, login):
    c = login(world.users["viewer"], "acme")
    r = c.get(url("acme", "/projects/?q=1"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<html" in r.data


def test_search_form_is_active_search_with_url_push(world, login):
    body = login(world.users["viewer"], "acme").get(url("acme", "/projects/")).data.decode()
    search = re.search(r'<input[^>]*name="q"[^>]*>', body).group(0)
    assert 'hx-trigger="input changed delay:300ms, search"' in search
    form = re.search(r'<form id="projects-filter"[^>]*>', body).group(0)
    assert 'method="get"' in form and 'hx-push-url="true"' in form and 'hx-target="#projects-table"' in form


def test_search_matches_name_or_description_case_insensitively(world, login):
    f.make_project(world.acme, "Launch plan", description="The ROCKET goes up")
    f.make_project(world.acme, "Rocketry", description="")
    f.make_project(world.globex, "Globex rocket", description="")
    c = login(world.users["viewer"], "acme")
    assert names(c.get(url("acme", "/projects/?q=rocket")).data) == ["Launch plan", "Rocketry"]
    assert names(c.get(url("acme", "/projects/?q=ROCKETRY")).data) == ["Rocketry"]


def test_search_treats_wildcards_as_plain_characters(world, login):
    f.make_project(world.acme, "100% done")
    f.make_project(world.acme, "snake_case")
    f.make_project(world.acme, "back\\slash")
    c = login(world.users["viewer"], "acme")
    assert names(c.get(url("acme", "/projects/?q=%25")).data) == ["100% done"]
    assert names(c.get(url("acme", "/projects/?q=_")).data) == ["snake_case"]
    assert names(c.get(url("acme", "/projects/?q=%5C")).data) == ["back\\slash"]


def test_status_filter_active_archived_all(world, login):
    f.make_project(world.acme, "Old thing", status="archived")
    c = login(world.users["viewer"], "acme")
    assert "Old thing" not in names(c.get(url("acme", "/projects/")).data)
    assert names(c.get(url("acme", "/projects/?status=archived")).data) == ["Old thing"]
    assert len(names(c.get(url("acme", "/projects/?status=all")).data)) == 4


def test_sort_by_name_and_by_last_update(world, login):
    from datetime import timedelta

    from app.util import utcnow

    now = utcnow()
    f.make_project(world.acme, "zeta", updated_at=now - timedelta(days=3))
    f.make_project(world.acme, "Alpha", updated_at=now - timedelta(days=1))
    f.make_project(world.acme, "beta", updated_at=now - timedelta(days=2))
    c = login(world.users["viewer"], "acme")
    by_name = names(c.get(url("acme", "/projects/?sort=name")).data)
    assert by_name[:2] == ["Acme Project 0", "Acme Project 1"] and by_name[-3:] == ["Alpha", "beta", "zeta"]
    assert names(c.get(url("acme", "/projects/?sort=-name")).data)[:3] == ["zeta", "beta", "Alpha"]
    assert names(c.get(url("acme", "/projects/?sort=updated")).data)[:3] == ["zeta", "beta", "Alpha"]
    assert names(c.get(url("acme", "/projects/?sort=-updated")).data)[-3:] == ["Alpha", "beta", "zeta"]


def test_sort_links_keep_the_filters_and_toggle_direction(world, login):
    body = login(world.users["viewer"], "acme").get(url("acme", "/projects/?q=Acme&status=all")).data.decode()
    assert 'href="/projects/?q=Acme&amp;status=all&amp;sort=-name"' in body  # name is ascending: next click flips
    assert 'href="/projects/?q=Acme&amp;status=all&amp;sort=-updated"' in body  # dates: newest first
    assert '<input type="hidden" name="sort" value="name" form="projects-filter">' in body


def test_pages_hold_thirty_rows_with_a_count(world, login):
    with tenant_context(world.acme.id):
        for i in range(3, 40):
            f.make_project(world.acme, f"Acme Project {i:02d}")
    c = login(world.users["viewer"], "acme")
    first = c.get(url("acme", "/projects/"))
    assert len(names(first.data)) == PAGE_SIZE
    assert "1–30 of 40" in first.data.decode()
    assert b'rel="next"' in first.data and b'rel="prev"' not in first.data
    second = c.get(url("acme", "/projects/?page=2"))
    assert len(names(second.data)) == 10
    assert "31–40 of 40" in second.data.decode()
    assert not set(names(first.data)) & set(names(second.data))
    assert b'rel="prev"' in second.data and b'rel="next"' not in second.data


def test_count_is_capped_for_huge_organizations(world, login, owner_engine):
    from sqlalchemy import text

    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (organization_id, id, name) "
                "SELECT :org, gen_random_uuid(), 'Bulk ' || g FROM generate_series(1, :n) g"
            ),
            {"org": world.acme.id, "n": COUNT_CAP + 5},
        )
    body = login(world.users["viewer"], "acme").get(url("acme", "/projects/")).data.decode()
    assert "1–30 of 1,000+" in body


def test_nonsense_filters_fall_back_to_defaults(world, login):
    c = login(world.users["viewer"], "acme")
    # (a NUL is refused with 400 before any view: tests/test_hostile_input.py)
    for qs in (
        "?status=deleted",
        "?sort=drop+table",
        "?page=abc",
        "?page=-4",
        "?page=99999999999999",
        "?q=" + "x" * 5000,
        "?q=%07%1b",
    ):
        r = c.get(url("acme", "/projects/" + qs))
        assert r.status_code == 200, qs


def test_empty_states(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    nothing = c.get(url("acme", "/projects/?q=no-such-thing")).data.decode()
    assert "No projects match" in nothing and "Search all projects" in nothing
    beyond = c.get(url("acme", "/projects/?page=9")).data.decode()
    assert "Nothing on this page" in beyond
    from sqlalchemy import text

    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM projects WHERE organization_id = :o"), {"o": world.acme.id})
    empty = c.get(url("acme", "/projects/")).data.decode()
    assert "No projects yet" in empty and 'href="/projects/new"' in empty


def test_viewer_sees_no_create_button(world, login):
    body = login(world.users["viewer"], "acme").get(url("acme", "/projects/")).data
    assert b'href="/projects/new"' not in body


def test_list_page_costs_two_statements(world, login, count_queries):
    """The organization, session, user and membership with the RLS settings
    (``enter_organization``); the page with its count: 2 statements, whatever
    the number of rows, and no round trip spent on ``set_config`` alone."""
    with tenant_context(world.acme.id):
        for i in range(40):
            f.make_project(world.acme, f"Bulk {i:02d}", owner=world.users["member"])
    c = login(world.users["member"], "acme")
    c.get(url("acme", "/projects/"))  # warm: last_seen refresh, first connection
    for headers in ({}, {"HX-Request": "true"}):
        with count_queries() as q:
            r = c.get(url("acme", "/projects/"), headers=headers)
        assert r.status_code == 200 and len(names(r.data)) == PAGE_SIZE
        assert q.count == 2, q.report()
        assert "enter_organization(" in q.statements[0], q.report()
        assert not any("set_config" in s for s in q.statements), q.report()
        assert q.statements[1].lstrip().startswith("SELECT projects."), q.report()

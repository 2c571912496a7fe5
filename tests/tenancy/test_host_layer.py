"""The request layer: the host decides the organization, and nothing tells an
outsider whether an organization exists."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.conftest import csrf_token, url


def normalised(body: bytes) -> str:
    """A page with its per-request noise (CSRF token, request id) blanked out."""
    out = body.decode()
    out = re.sub(r'"X-CSRFToken": "[^"]+"', '"X-CSRFToken": "…"', out)
    out = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token" value="…"', out)
    return re.sub(r"[0-9a-f]{32}", "<id>", out)


def set_org(owner_engine, slug, **values):
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with owner_engine.begin() as c:
        c.execute(text(f"UPDATE organizations SET {sets} WHERE slug = :slug"), {**values, "slug": slug})


def test_unknown_slug_is_404(world, login, client):
    # Anonymous visitors are sent to log in on any organization host, real or
    # not (see the next tests); a page that does not exist is 404 for them.
    assert client.get(url("nope", "/no-such-page")).status_code == 404
    assert client.get(url("acme", "/no-such-page")).status_code == 404
    signed_in = login(world.users["owner"], "nope")
    assert signed_in.get(url("nope", "/projects/")).status_code == 404
    assert signed_in.get(url("nope", "/dashboard")).status_code == 404


def test_malformed_hosts_are_404(world, client):
    for host in ("a.b.tenantry.localhost", "-bad.tenantry.localhost", "x_y.tenantry.localhost"):
        assert client.get(f"http://{host}/projects/").status_code == 404, host


def test_deleted_org_is_404_for_its_own_members(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/projects/")).status_code == 200
    set_org(owner_engine, "acme", deleted_at="2026-01-01T00:00:00Z")
    for path in ("/projects/", "/dashboard", "/"):
        r = c.get(url("acme", path))
        assert r.status_code == 404, path
        assert b"Acme Corporation" not in r.data


def test_outsider_gets_the_same_404_as_for_an_unknown_page(world, login):
    """Same status, same body: the outsider cannot tell ``acme`` exists."""
    at_acme = login(world.users["outsider"], "acme")
    at_nope = login(world.users["outsider"], "nope")
    for path in ("/projects/", "/dashboard", "/no-such-page", "/projects/new"):
        reference = at_nope.get(url("nope", path))
        assert reference.status_code == 404
        r = at_acme.get(url("acme", path))
        assert r.status_code == 404, path
        assert normalised(r.data) == normalised(reference.data), path
        assert b"Acme Corporation" not in r.data
    frag_acme = at_acme.get(url("acme", "/projects/"), headers={"HX-Request": "true"})
    frag_nope = at_nope.get(url("nope", "/projects/"), headers={"HX-Request": "true"})
    assert frag_acme.status_code == frag_nope.status_code == 404
    assert normalised(frag_acme.data) == normalised(frag_nope.data)


def test_outsider_posts_are_404_and_change_nothing(world, login, owner_engine):
    c = login(world.users["outsider"], "acme")
    r = c.post(
        url("acme", "/projects/"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "x", "owner_id": str(world.users["outsider"].id)},
    )
    assert r.status_code == 404
    with owner_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM projects WHERE organization_id = :o"), {"o": world.acme.id}
            ).scalar()
            == 3
        )


def test_anonymous_gets_the_same_redirect_whether_the_org_exists_or_not(world, client):
    for path in ("/", "/projects/", "/dashboard", "/projects/00000000-0000-0000-0000-000000000000"):
        real = client.get(url("acme", path))
        fake = client.get(url("nope", path))
        assert real.status_code == fake.status_code == 302, path
        assert real.headers["Location"].replace("acme.", "nope.") == fake.headers["Location"], path
        assert normalised(real.data).replace("acme.", "nope.") == normalised(fake.data)
        hx_real = client.get(url("acme", path), headers={"HX-Request": "true"})
        hx_fake = client.get(url("nope", path), headers={"HX-Request": "true"})
        assert hx_real.status_code == hx_fake.status_code == 401
        assert hx_real.headers["HX-Redirect"].replace("acme.", "nope.") == hx_fake.headers["HX-Redirect"]


def test_anonymous_on_a_deleted_org_gets_the_same_redirect_as_on_a_live_one(world, client, owner_engine):
    live = client.get(url("acme", "/projects/"))
    set_org(owner_engine, "acme", deleted_at="2026-01-01T00:00:00Z")
    gone = client.get(url("acme", "/projects/"))
    assert (live.status_code, live.headers["Location"]) == (gone.status_code, gone.headers["Location"])


def test_suspended_org_shows_members_the_suspension_page(world, login, owner_engine):
    c = login(world.users["member"], "acme")
    set_org(owner_engine, "acme", status="suspended")
    for path in ("/projects/", "/dashboard"):
        r = c.get(url("acme", path))
        assert r.status_code == 403, path
        assert b"is suspended" in r.data
        assert b"Acme Project" not in r.data


def test_suspended_org_changes_nothing_on_post(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    with owner_engine.connect() as conn:
        pid = conn.execute(
            text("SELECT id FROM projects WHERE organization_id = :o LIMIT 1"), {"o": world.acme.id}
        ).scalar()
        before = conn.execute(text("SELECT md5(string_agg(p::text, '|' ORDER BY p.id)) FROM projects p")).scalar()
    set_org(owner_engine, "acme", status="suspended")
    token = csrf_token(c, "acme")
    owner = str(world.users["owner"].id)
    for path, data in [
        ("/projects/", {"name": "During suspension", "owner_id": owner}),
        (f"/projects/{pid}", {"name": "Renamed", "owner_id": owner}),
        (f"/projects/{pid}/archive", {}),
        (f"/projects/{pid}/delete", {}),
    ]:
        for headers in ({}, {"HX-Request": "true"}):
            r = c.post(url("acme", path), data={"csrf_token": token, **data}, headers=headers)
            assert r.status_code == 403, path
    with owner_engine.connect() as conn:
        after = conn.execute(text("SELECT md5(string_agg(p::text, '|' ORDER BY p.id)) FROM projects p")).scalar()
    assert after == before


def test_members_are_not_told_about_other_orgs_on_a_404(world, login):
    """A 404 on acme for a member names acme (their own), never globex."""
    r = login(world.users["consultant"], "acme").get(url("acme", "/no-such-page"))
    assert r.status_code == 404
    assert b"Globex Secret" not in r.data

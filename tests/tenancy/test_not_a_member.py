"""A signed-in user on an organization host that is not theirs: one page,
in the same words whether the organization exists or not (issue 12)."""

from __future__ import annotations

from app.extensions import db
from tests.conftest import APEX, csrf_token, url
from tests.tenancy.test_host_layer import normalised, set_org

MESSAGE = b"No such organization, or you are not a member"


def test_not_a_member_and_no_such_organization_answer_the_same_404_page(world, login):
    at_acme = login(world.users["globex_member"], "acme")
    at_nope = login(world.users["globex_member"], "nope")
    for path in ("/", "/dashboard", "/projects/", "/no-such-page"):
        real, unknown = at_acme.get(url("acme", path)), at_nope.get(url("nope", path))
        assert real.status_code == unknown.status_code == 404, path
        assert MESSAGE in real.data
        assert normalised(real.data) == normalised(unknown.data), path
        assert b"Acme" not in real.data and b"acme" not in real.data
    frags = [
        c.get(url(slug, "/projects/"), headers={"HX-Request": "true"})
        for c, slug in ((at_acme, "acme"), (at_nope, "nope"))
    ]
    assert [f.status_code for f in frags] == [404, 404]
    assert MESSAGE in frags[0].data and b"<html" not in frags[0].data
    assert normalised(frags[0].data) == normalised(frags[1].data)


def test_not_a_member_page_links_to_your_organizations_on_their_hosts_and_to_sign_out(world, login):
    html = login(world.users["globex_member"], "acme").get(url("acme", "/projects/")).get_data(as_text=True)
    # Through the apex hand-off, onto Globex's own host.
    assert f'<a href="http://{APEX}/go?to=http://globex.tenantry.localhost/">Globex</a>' in html
    assert 'action="/logout"' in html and "Sign in as someone else" in html


def test_member_of_no_organization_is_told_so(world, login):
    html = login(world.users["outsider"], "acme").get(url("acme", "/")).get_data(as_text=True)
    assert "No such organization, or you are not a member" in html
    assert "You are not a member of any organization yet." in html


def test_sign_in_as_someone_else_signs_out_from_a_foreign_host(world, login):
    for slug in ("acme", "nope"):
        c = login(world.users["globex_member"], slug)
        r = c.post(url(slug, "/logout"), data={"csrf_token": csrf_token(c, slug)})
        assert r.status_code == 302 and r.headers["Location"] == f"http://{APEX}/login"
        from app.auth.models import UserSession

        db.session.expire_all()
        assert db.session.get(UserSession, c.user_session_id).revoked_at is not None


def test_deleted_organization_shows_its_members_the_same_page(world, login, owner_engine):
    c = login(world.users["consultant"], "acme")
    set_org(owner_engine, "acme", deleted_at="2026-01-01T00:00:00Z")
    r = c.get(url("acme", "/dashboard"))
    assert r.status_code == 404 and MESSAGE in r.data
    assert b"Acme Corporation" not in r.data and b">Globex</a>" in r.data


def test_anonymous_visitors_are_still_sent_to_log_in_on_any_org_host(world, client):
    for slug in ("acme", "nope"):
        r = client.get(url(slug, "/projects/"))
        assert r.status_code == 302 and "/login" in r.headers["Location"], slug
    assert client.get(url("nope", "/no-such-page")).status_code == 404
    assert MESSAGE not in client.get(url("nope", "/no-such-page")).data


def test_a_member_on_a_missing_page_of_their_organization_gets_the_plain_404(world, login):
    r = login(world.users["member"], "acme").get(url("acme", "/no-such-page"))
    assert r.status_code == 404 and MESSAGE not in r.data and b"Page not found" in r.data

"""Creating organizations, reaching them, switching between them."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select, text

from app.auth.models import AuthHandoff
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Membership, Organization
from app.tenancy.services import slugify
from app.util import utcnow
from tests import factories as f
from tests.conftest import csrf_token, url


def _create(client, **data):
    data = {"csrf_token": csrf_token(client), **data}
    return client.post(url(None, "/organizations/new"), data=data)


def test_slug_is_generated_dns_safe_from_the_name():
    assert slugify("Ünïcode & Co. — Ltd") == "unicode-co-ltd"
    assert slugify("a") == "a-org"
    assert len(slugify("x" * 200)) == 63


def test_creator_becomes_owner_and_lands_in_the_new_org(world, login):
    c = login(world.users["outsider"])
    r = _create(c, name="Initech Global", slug="")
    assert r.status_code == 302
    assert "initech-global.tenantry.localhost" in r.headers["Location"]
    org = db.session.execute(select(Organization).where(Organization.slug == "initech-global")).scalar_one()
    with tenant_context(org.id):
        m = db.session.execute(select(Membership)).scalar_one()
    assert m.user_id == world.users["outsider"].id and m.role == "owner"


@pytest.mark.parametrize(
    "slug,message",
    [
        ("ab", b"3 to 63"),
        ("-acme", b"lower-case letters"),
        ("acme-", b"lower-case letters"),
        ("Ac_me", b"lower-case letters"),
        ("www", b"reserved"),
        ("platform", b"reserved"),
        ("acme", b"already taken"),
    ],
)
def test_bad_slug_is_refused_with_422_and_nothing_created(world, login, slug, message):
    c = login(world.users["outsider"])
    before = db.session.execute(text("SELECT count(*) FROM organizations")).scalar()
    r = _create(c, name="Something", slug=slug)
    assert r.status_code == 422
    assert message in r.data
    assert db.session.execute(text("SELECT count(*) FROM organizations")).scalar() == before


def test_empty_name_is_422(world, login):
    c = login(world.users["outsider"])
    r = _create(c, name="   ", slug="")
    assert r.status_code == 422
    assert b"Give the organization a name" in r.data


def test_unverified_user_cannot_create_an_organization(app):
    from tests.conftest import sign_in

    user = f.make_user(verified=False)
    c = sign_in(app, user)
    r = _create(c, name="Sneaky", slug="sneaky")
    assert r.status_code == 422
    assert db.session.execute(text("SELECT count(*) FROM organizations WHERE slug='sneaky'")).scalar() == 0


def test_deleted_org_slug_is_free_again(world, login):
    from app.tenancy import lifecycle

    lifecycle.delete(world.globex)
    db.session.commit()
    c = login(world.users["outsider"])
    assert _create(c, name="New Globex", slug="globex").status_code == 302


def _login_post(client, email, password=f.PASSWORD, next=None):
    data = {"csrf_token": csrf_token(client), "email": email, "password": password}
    if next:
        data["next"] = next
    return client.post(url(None, "/login"), data=data)


def test_login_with_one_org_goes_straight_to_it(world, client):
    r = _login_post(client, "owner@acme.test")
    assert r.status_code == 302
    r = client.get(urljoin(url(None, "/"), r.headers["Location"]))
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert loc.netloc == "acme.tenantry.localhost" and loc.path == "/auth/handoff/begin"


def test_login_with_several_orgs_shows_the_picker(world, client):
    _login_post(client, "consultant@example.test")
    r = client.get(url(None, "/"))
    assert r.status_code == 200
    assert b"Acme Corporation" in r.data and b"Globex" in r.data


def test_login_never_redirects_off_site(world, client):
    r = _login_post(client, "owner@acme.test", next="https://evil.example/steal")
    assert "evil.example" not in r.headers["Location"]
    r = _login_post(client, "owner@acme.test", next="//evil.example/x")
    assert "evil.example" not in r.headers.get("Location", "")


def _handoff(client, target):
    """Follow /go through the hand-off's begin (target host) and issue (apex)
    steps; returns the ticket's redemption URL, not yet visited."""
    r = client.get(url(None, "/go"), query_string={"to": target})
    assert r.status_code == 302, r.data[:300]
    for step in ("/auth/handoff/begin", "/auth/handoff/issue"):
        assert urlsplit(r.headers["Location"]).path == step, r.headers["Location"]
        r = client.get(r.headers["Location"])
        assert r.status_code == 302, r.data[:300]
    assert urlsplit(r.headers["Location"]).path == "/auth/handoff"
    return r.headers["Location"]


def test_handoff_signs_in_on_the_org_host_without_a_password(world, client):
    _login_post(client, "consultant@example.test")
    loc = _handoff(client, url("globex", "/projects"))
    r = client.get(loc)
    assert r.status_code == 302 and r.headers["Location"] == "/projects", r.data[:400]
    assert client.get(url("globex", "/dashboard")).status_code == 200


def test_handoff_ticket_is_single_use(world, client):
    _login_post(client, "consultant@example.test")
    loc = _handoff(client, url("acme", "/dashboard"))
    assert client.get(loc).status_code == 302
    assert client.get(loc).status_code == 410


def test_handoff_ticket_signs_in_only_the_browser_that_asked_for_it(world, client):
    """Login CSRF: an attacker signs in, stops before redeeming their ticket
    and sends the link to a victim. The victim's browser lacks the nonce
    cookie the ticket is bound to, so it is not signed in as the attacker."""
    attacker, victim = client, client.application.test_client()
    _login_post(attacker, "outsider@example.test")
    f.add_member(world.acme, world.users["outsider"], "viewer")
    loc = _handoff(attacker, url("acme", "/dashboard"))
    assert victim.get(loc).status_code == 410
    assert victim.get(url("acme", "/dashboard")).status_code == 302  # still anonymous: sent to log in
    # The victim's own nonce does not help either: it is not the one in the ticket.
    victim.get(url("acme", "/auth/handoff/begin"))
    assert victim.get(loc).status_code == 410
    assert attacker.get(loc).status_code == 302  # the ticket was not used up by the failed attempts


def test_handoff_issue_refuses_foreign_hosts_and_bad_nonces(world, login):
    c = login(world.users["consultant"])
    good = "a" * 64
    for host, n in (
        ("evil.example", good),
        ("tenantry.localhost", good),
        ("acme.tenantry.localhost", "short"),
        ("acme.tenantry.localhost", ""),
    ):
        r = c.get(url(None, "/auth/handoff/issue"), query_string={"host": host, "n": n, "next": "/"})
        assert r.status_code == 404, (host, n)
    r = c.get(
        url(None, "/auth/handoff/issue"),
        query_string={"host": "acme.tenantry.localhost", "n": good, "next": "https://evil.example/"},
    )
    assert r.status_code == 302 and "next=%2F" in r.headers["Location"]


def test_handoff_ticket_expires(world, client):
    _login_post(client, "consultant@example.test")
    loc = _handoff(client, url("acme", "/dashboard"))
    with all_organizations(reason="test: age the ticket"):
        db.session.execute(text("UPDATE auth_handoffs SET expires_at = now() - interval '1 second'"))
    db.session.commit()
    assert client.get(loc).status_code == 410


def test_handoff_ticket_only_works_on_its_own_host(world, client):
    _login_post(client, "consultant@example.test")
    loc = _handoff(client, url("acme", "/dashboard"))
    stolen = loc.replace("acme.tenantry.localhost", "globex.tenantry.localhost")
    assert client.get(stolen).status_code == 410


def test_handoff_ticket_lives_at_most_60_seconds(world, client):
    _login_post(client, "consultant@example.test")
    _handoff(client, url("acme", "/dashboard"))
    t = db.session.execute(select(AuthHandoff)).scalar_one()
    assert t.expires_at - utcnow() <= timedelta(seconds=60)


def test_go_refuses_foreign_hosts(world, login):
    c = login(world.users["consultant"])
    assert c.get(url(None, "/go"), query_string={"to": "https://evil.example/"}).status_code == 404


def test_logout_on_one_host_ends_the_session_on_every_host(world, client):
    _login_post(client, "consultant@example.test")
    client.get(_handoff(client, url("acme", "/dashboard")))
    client.get(_handoff(client, url("globex", "/dashboard")))
    assert client.get(url("globex", "/dashboard")).status_code == 200
    r = client.post(url("acme", "/logout"), data={"csrf_token": csrf_token(client, "acme")})
    assert r.status_code == 302
    assert client.get(url("globex", "/dashboard")).status_code == 302  # to log in
    assert client.get(url(None, "/organizations/new")).status_code == 302


def test_cookies_are_host_only(world, client):
    r = _login_post(client, "owner@acme.test")
    cookies = r.headers.getlist("Set-Cookie")
    assert cookies and all("Domain=" not in c for c in cookies)
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)


def test_switcher_lists_every_org_with_role_and_keeps_the_section(world, login):
    c = login(world.users["consultant"], "acme")
    r = c.get(url("acme", "/switcher?section=/projects"), headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert b"<html" not in r.data
    assert "HX-Request" in r.headers.get("Vary", "")
    body = r.data.decode()
    assert "Globex" in body and "Admin" in body and "Member" in body
    assert "globex.tenantry.localhost%2Fprojects" in body or "globex.tenantry.localhost/projects" in body


def test_switcher_without_htmx_is_a_full_page(world, login):
    c = login(world.users["consultant"], "acme")
    r = c.get(url("acme", "/switcher"))
    assert r.status_code == 200 and b"<html" in r.data


def test_org_root_sends_a_custom_role_without_dashboard_to_its_first_reachable_area(world, login):
    from app.rbac.models import Role
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        role = Role(organization_id=world.acme.id, name="Project reader", permissions=["projects:view"])
        db.session.add(role)
        db.session.commit()
        role_id = role.id
    user = f.make_user("reader@example.test")
    f.add_member(world.acme, user, custom_role_id=role_id)
    c = login(user, "acme")
    r = c.get(url("acme", "/"))
    assert r.status_code == 302 and r.headers["Location"].startswith("/projects")
    assert c.get(url("acme", "/dashboard")).status_code == 403


def test_switcher_keeps_the_section_only_where_the_role_may_open_it(world, login):
    # In globex the consultant becomes a Viewer, who may not open /roles.
    with tenant_context(world.globex.id):
        m = db.session.get(Membership, (world.globex.id, world.users["consultant"].id))
        m.role = "viewer"
        db.session.commit()
    c = login(world.users["consultant"], "acme")
    body = c.get(url("acme", "/switcher?section=/roles"), headers={"HX-Request": "true"}).data.decode()
    assert 'to=http://globex.tenantry.localhost/"' in body
    body = c.get(url("acme", "/switcher?section=/projects"), headers={"HX-Request": "true"}).data.decode()
    assert 'to=http://globex.tenantry.localhost/projects"' in body

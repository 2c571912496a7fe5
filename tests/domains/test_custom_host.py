"""Custom host: a verified domain's host serves the organization (host-only
cookie, sign-in hand-off, absolute URLs on that host); removing it, or the
domain, stops serving it; bad hosts are 422 beside the field."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domains import services
from app.extensions import db
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import follow, url

HOST = "portal.acme-widgets.com"


@pytest.fixture
def verified(world, dns_zone):
    """acme has verified acme-widgets.com; returns its id."""
    with tenant_context(world.acme.id):
        d = services.add_domain("acme-widgets.com")
        dns_zone.publish("_tenantry.acme-widgets.com", f"tenantry-verification={d.token}")
        assert services.verify_domain(d).found
        db.session.commit()
        return d.id


def org_row(owner_engine, slug="acme"):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM organizations WHERE slug = :s"), {"s": slug}).mappings().one()


def set_host(login, post, world, did, host, owner_engine):
    c = login(world.users["admin"], "acme")
    version = str(org_row(owner_engine)["version"])
    return post(c, "acme", f"/settings/domains/{did}/host", {"host": host, "version": version})


def sign_in_on(client, host_name, path="/dashboard"):
    """Log in on the apex, then go to ``host_name`` through the hand-off, as a browser does."""
    from tests.conftest import csrf_token

    token = csrf_token(client)
    client.post(url(None, "/login"), data={"email": "member@acme.test", "password": f.PASSWORD, "csrf_token": token})
    return follow(client, client.get(url(None, "/go"), query_string={"to": f"http://{host_name}{path}"}))


def test_a_verified_domains_host_serves_the_organization_with_its_own_cookie(
    world, login, post, verified, owner_engine, client
):
    r = set_host(login, post, world, verified, "Portal.Acme-Widgets.com", owner_engine)
    assert r.status_code == 302
    row = org_row(owner_engine)
    assert row["custom_domain"] == HOST and row["custom_domain_verified_at"] is not None
    r = sign_in_on(client, HOST)
    assert r.status_code == 200 and r.request.host == HOST
    assert "Acme Corporation" in r.get_data(as_text=True)
    cookie = client.get_cookie("tenantry_session", domain=HOST)
    assert cookie is not None and not cookie.domain.startswith(".")  # host-only
    assert client.get_cookie("tenantry_session", domain="acme.tenantry.localhost") is None


def test_absolute_urls_made_on_the_custom_host_use_it(app, world, login, post, verified, owner_engine):
    set_host(login, post, world, verified, HOST, owner_engine)
    from flask import url_for

    from app.web import hosts

    with app.test_request_context(base_url=f"http://{HOST}/"):
        assert url_for("projects.index", _external=True) == f"http://{HOST}/projects/"
    db.session.expire_all()
    with tenant_context(world.acme.id):
        from app.tenancy.models import Organization

        org = db.session.get(Organization, world.acme.id)
        with app.test_request_context():
            assert hosts.org_url(org, "/x") == f"http://{HOST}/x"


def test_stopping_the_custom_host_stops_serving_it(world, login, post, verified, owner_engine, client):
    set_host(login, post, world, verified, HOST, owner_engine)
    assert sign_in_on(client, HOST).status_code == 200
    c = login(world.users["admin"], "acme")
    assert post(c, "acme", "/settings/domains/custom-host/clear").status_code == 302
    assert org_row(owner_engine)["custom_domain"] is None
    assert client.get(f"http://{HOST}/dashboard").status_code == 404
    with owner_engine.connect() as conn:
        assert (
            conn.execute(
                text(
                    "SELECT count(*) FROM audit_events WHERE action = 'org.custom_host_changed' AND organization_id = :o"
                ),
                {"o": world.acme.id},
            ).scalar()
            == 2
        )


def test_a_plan_without_custom_domains_sends_the_custom_host_to_the_subdomain(
    world, login, post, verified, owner_engine, client
):
    set_host(login, post, world, verified, HOST, owner_engine)
    assert sign_in_on(client, HOST).status_code == 200
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE organizations SET plan_key = 'free' WHERE id = :o"), {"o": world.acme.id})
    r = client.get(f"http://{HOST}/projects/?q=x")
    assert r.status_code == 302 and r.headers["Location"] == f"http://{url('acme', '/projects/?q=x').split('//', 1)[1]}"
    # Anything else is refused there (the CSRF check, or the 404 behind it).
    assert client.post(f"http://{HOST}/projects/", data={"name": "x"}).status_code in (400, 404)
    # Back on a plan with the feature, the host serves the organization again.
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE organizations SET plan_key = 'pro' WHERE id = :o"), {"o": world.acme.id})
    assert client.get(f"http://{HOST}/dashboard").status_code == 200


def test_removing_the_domain_stops_serving_its_host(world, login, post, verified, owner_engine, client):
    set_host(login, post, world, verified, HOST, owner_engine)
    assert sign_in_on(client, HOST).status_code == 200
    c = login(world.users["admin"], "acme")
    assert post(c, "acme", f"/settings/domains/{verified}/delete").status_code == 302
    assert org_row(owner_engine)["custom_domain"] is None
    assert client.get(f"http://{HOST}/dashboard").status_code == 404


@pytest.mark.parametrize(
    "host, message",
    [
        ("portal.other-corp.com", "a name under it"),
        ("acme-widgets.com.evil.com", "a name under it"),
        ("http://portal.acme-widgets.com", "domain alone"),
        ("portal acme-widgets.com", "no spaces"),
        ("", "Enter a domain"),
    ],
)
def test_a_host_not_at_the_verified_domain_is_422_beside_the_field(
    world, login, post, verified, owner_engine, host, message
):
    r = set_host(login, post, world, verified, host, owner_engine)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'id="host-error"' in page and message in page
    assert org_row(owner_engine)["custom_domain"] is None


def test_a_pending_domain_cannot_serve_a_host(world, login, post, owner_engine, dns_zone):
    with tenant_context(world.acme.id):
        did = services.add_domain("acme-widgets.com").id
        db.session.commit()
    r = set_host(login, post, world, did, HOST, owner_engine)
    assert r.status_code == 422 and org_row(owner_engine)["custom_domain"] is None


def test_a_page_on_the_custom_host_costs_the_statements_it_costs_on_the_subdomain(
    world, login, post, verified, owner_engine, client
):
    """Host resolution stays one statement (the request's entry) on a custom host."""
    from tests.web.test_page_statements import _in_own_thread, statements

    set_host(login, post, world, verified, HOST, owner_engine)
    assert sign_in_on(client, HOST).status_code == 200
    on_subdomain = login(world.users["member"], "acme")
    engines = {db.engine, *db.engines.values()}

    def count(c, base):
        def run():
            c.get(f"{base}/projects/")  # warm: connections, last_seen refresh
            with statements(engines) as seen:
                assert c.get(f"{base}/projects/").status_code == 200
            return seen

        return _in_own_thread(run)

    custom = count(client, f"http://{HOST}")
    sub = count(on_subdomain, "http://acme.tenantry.localhost")
    assert len(custom) == len(sub) == 2, custom
    assert "enter_organization(" in custom[0]

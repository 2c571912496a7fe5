"""The CSP's ``form-action`` names our own hosts only, and still allows every
real form flow that crosses hosts.

Chromium and WebKit hold not only a form's target but every redirect that
answers the submission to the form page's ``form-action``, so each flow is
followed hop by hop and each hop checked against the page the form was on.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import csrf_token, url


def form_action(response) -> list[str]:
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    return directives["form-action"]


def allows(sources: list[str], page_url: str, target_url: str) -> bool:
    """CSP source matching, for the source forms we emit: ``'self'``,
    ``scheme://host[:port]`` and ``scheme://*.host[:port]``."""
    page, target = urlsplit(page_url), urlsplit(target_url)
    for s in sources:
        if s == "'self'":
            if (target.scheme, target.netloc) == (page.scheme, page.netloc):
                return True
            continue
        src = urlsplit(s)
        if src.scheme != target.scheme:
            continue
        if src.netloc.startswith("*."):
            if target.netloc.endswith(src.netloc[1:]):
                return True
        elif target.netloc == src.netloc:
            return True
    return False


def submit_and_follow(client, page_url: str, post_url: str, data: dict):
    """GET the form's page, POST the form, follow the redirects; every hop must
    be allowed by the page's ``form-action``. Returns the last response."""
    sources = form_action(client.get(page_url))
    target = post_url
    response = client.post(target, data=data)
    hops = [target]
    while response.status_code in (301, 302, 303, 307, 308):
        target = urljoin(target, response.headers["Location"])
        hops.append(target)
        response = client.get(target)
    for hop in hops:
        assert allows(sources, page_url, hop), (hop, sources)
    return response, hops


@pytest.mark.parametrize(
    "page",
    [
        url(None, "/login"),
        url("acme", "/login"),
        url("acme", "/nope"),
        url(None, "/nope"),
        "http://elsewhere.test/",
    ],
)
def test_form_action_names_no_bare_scheme_only_our_hosts(world, client, page):
    sources = form_action(client.get(page))
    assert "'self'" in sources
    for s in sources:
        assert s == "'self'" or re.fullmatch(r"http://(\*\.)?tenantry\.localhost", s), sources
    assert not {"http:", "https:", "*", "data:"} & set(sources)


def test_form_action_on_an_org_host_allows_the_apex_not_other_orgs(world, login):
    c = login(world.users["admin"], "acme")
    sources = form_action(c.get(url("acme", "/dashboard")))
    page = url("acme", "/dashboard")
    assert allows(sources, page, url(None, "/login"))
    assert not allows(sources, page, url("globex", "/projects"))
    assert not allows(sources, page, "https://evil.example/")


def test_form_action_allows_log_in_through_the_hand_off(world, client):
    data = {"csrf_token": csrf_token(client), "email": "owner@acme.test", "password": f.PASSWORD}
    response, hops = submit_and_follow(client, url(None, "/login"), url(None, "/login"), data)
    assert response.status_code == 200 and urlsplit(hops[-1]).netloc == "acme.tenantry.localhost"
    assert any(urlsplit(h).path == "/auth/handoff/issue" for h in hops)  # back on the apex mid-way


def test_form_action_allows_creating_an_organization(world, login):
    c = login(world.users["outsider"])
    data = {"csrf_token": csrf_token(c), "name": "Initech", "slug": "initech"}
    response, hops = submit_and_follow(c, url(None, "/organizations/new"), url(None, "/organizations/new"), data)
    assert response.status_code == 200 and urlsplit(hops[-1]).netloc == "initech.tenantry.localhost"


def test_form_action_allows_logging_out_of_an_org_host(world, login):
    c = login(world.users["admin"], "acme")
    data = {"csrf_token": csrf_token(c, "acme")}
    response, hops = submit_and_follow(c, url("acme", "/dashboard"), url("acme", "/logout"), data)
    assert response.status_code == 200 and urlsplit(hops[-1]).netloc == "tenantry.localhost"


def test_form_action_allows_deleting_an_organization(world, login):
    c = login(world.users["owner"], "acme")
    data = {"csrf_token": csrf_token(c, "acme"), "confirm": "acme"}
    response, hops = submit_and_follow(c, url("acme", "/settings/"), url("acme", "/settings/delete"), data)
    assert urlsplit(hops[-1]).netloc == "tenantry.localhost"


def test_log_in_to_a_custom_domain_continues_from_a_page_not_a_redirect(world, client, owner_engine):
    """The apex's form-action cannot list custom domains, so the browser gets
    there from a page after the form's answer, never by its redirects."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE organizations SET custom_domain = 'acme-corp.test',"
                " custom_domain_verified_at = now() WHERE slug = 'acme'"
            )
        )
    data = {
        "csrf_token": csrf_token(client),
        "email": "owner@acme.test",
        "password": f.PASSWORD,
        "next": "http://acme-corp.test/projects",
    }
    response, hops = submit_and_follow(client, url(None, "/login"), url(None, "/login"), data)
    assert response.status_code == 200 and len(hops) == 1
    html = response.get_data(as_text=True)
    assert 'http-equiv="refresh" content="0; url=http://acme-corp.test/auth/handoff/begin?next=%2Fprojects"' in html

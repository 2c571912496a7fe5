"""The hand-off's ``host``: normalised once, and the normalised host is the one
checked, bound to the ticket and redirected to."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import func, select, text

from app.auth.models import AuthHandoff
from app.extensions import db
from tests.conftest import url

GOOD_NONCE = "a" * 64


@pytest.fixture
def acme_domain(world, owner_engine):
    """acme also answers on a verified custom domain."""
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE organizations SET custom_domain = 'acme-corp.test',"
                " custom_domain_verified_at = now() WHERE slug = 'acme'"
            )
        )
    return "acme-corp.test"


def tickets() -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(select(AuthHandoff.host)).scalars())


def issue(client, host: str):
    return client.get(url(None, "/auth/handoff/issue"), query_string={"host": host, "n": GOOD_NONCE, "next": "/"})


@pytest.mark.parametrize(
    "raw,normalised",
    [
        ("acme-corp.test:5000.", "acme-corp.test:5000"),  # was a 500 after the ticket was committed
        ("acme-corp.test.:5000", "acme-corp.test:5000"),
        (" acme.tenantry.localhost", "acme.tenantry.localhost"),  # was a ticket and "http:// acme…"
        ("ACME.tenantry.localhost.\t", "acme.tenantry.localhost"),
    ],
)
def test_handoff_redirects_to_the_normalised_host(world, login, acme_domain, raw, normalised):
    c = login(world.users["consultant"])
    r = issue(c, raw)
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert loc.scheme == "http" and loc.netloc == normalised and loc.path == "/auth/handoff"
    assert loc.port in (None, 5000)  # well formed: the port parses
    assert tickets() == [normalised]


@pytest.mark.parametrize(
    "raw",
    [
        "acme.tenantry.localhost:5000.",  # not acme's host (no such custom domain)
        " evil.example.",
        "acme.tenantry.localhost/evil",
        "acme .tenantry.localhost",
        "tenantry.localhost.",  # the apex is not a hand-off target
    ],
)
def test_handoff_refuses_a_foreign_host_and_commits_no_ticket(world, login, acme_domain, raw):
    c = login(world.users["consultant"])
    assert issue(c, raw).status_code == 404
    assert tickets() == []


def test_handoff_with_an_untidy_host_still_signs_in_on_the_org_host(world, login):
    """The whole flow, with the host parameter rewritten on its way to the apex."""
    c = login(world.users["consultant"])
    r = c.get(url("acme", "/auth/handoff/begin"), query_string={"next": "/dashboard"})
    issue_url = urlsplit(r.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(issue_url.query).items()}
    query["host"] = " ACME.tenantry.localhost. "
    r = c.get(url(None, issue_url.path + "?" + urlencode(query)))
    assert r.status_code == 302
    r = c.get(r.headers["Location"])
    assert r.status_code == 302 and r.headers["Location"] == "/dashboard"
    assert c.get(url("acme", "/dashboard")).status_code == 200
    assert db.session.execute(select(func.count()).select_from(AuthHandoff)).scalar() == 1

"""SAML sign-in end to end through the app (test client), against pysaml2's
real IdP (``tests/sso/saml_idp.py``): the flow starts on the apex, the IdP's
signed response is posted to the organization's ACS, the browser finishes
on the apex callback.

Every hostile response (``tests/sso/saml_hostile.py``, real XML signatures)
is refused at the ACS with a 400, recorded as ``sso.sign_in_refused`` with
its reason, and changes nothing: no user, membership, session or answered
request."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import samlp
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import User, UserSession
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.sso import saml, services
from app.sso.saml_models import SamlAssertionSeen, SamlRequest
from app.tenancy.models import Membership
from tests import factories as f
from tests.conftest import follow, url
from tests.sso import saml_hostile as hostile
from tests.sso.saml_idp import IdentityProvider, encode

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SLUG = "samlco"


@pytest.fixture(scope="module")
def idp():
    peer = IdentityProvider().start()
    peer.add_user("alice@samlco.test", "Alice Liddell", ["Engineering"])
    yield peer
    peer.stop()


@pytest.fixture
def saml_org(app, idp):
    """An Enterprise organization (SSO on its plan) with a verified domain,
    an owner, and an enabled SAML connection to the test IdP."""
    from app.domains.models import Domain

    org = f.make_org(SLUG, "Saml Co", plan="enterprise")
    owner = f.make_user("owner@samlco.test", "Saml Owner")
    f.add_member(org, owner, "owner")
    with tenant_context(org.id):
        db.session.add(
            Domain(
                organization_id=org.id,
                name="samlco.test",
                token="t" * 32,
                status="verified",
                verified_at=func.now(),
            )
        )
        conn = services.create_connection("saml", "generic", "Test IdP")
        services.update_connection(
            conn,
            {"name": "Test IdP", "default_role": "member", "idp_metadata": idp.metadata(), "idp_metadata_url": ""},
            conn.version,
        )
        services.record_test(conn, saml.identity_of(conn, {"name_id": "alice@samlco.test", "attributes": {}}))
        services.enable_connection(conn, conn.version)
        db.session.commit()
        conn_id = conn.id
    return org, owner, conn_id


def _conn(org, conn_id):
    with tenant_context(org.id):
        return db.session.get(services.SsoConnection, (org.id, conn_id))


def _start(client, org):
    """Start a sign-in on the apex; returns (AuthnRequest id, RelayState)."""
    resp = client.get(url(None, f"/sso/start/{org.id}"))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    q = parse_qs(urlsplit(resp.headers["Location"]).query)
    return q["SAMLRequest"][0], q.get("RelayState", [""])[0]


def _request_id(idp, saml_request: str) -> str:
    from saml2 import BINDING_HTTP_REDIRECT

    return idp.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message.id


def _acs(org, conn_id) -> str:
    return url(SLUG, f"/sso/saml/{conn_id}/acs")


def _entity(conn_id) -> str:
    return url(SLUG, f"/sso/saml/{conn_id}/metadata")


def _counts(org):
    with all_organizations(reason="test: counts"):
        return {
            "users": db.session.scalar(select(func.count()).select_from(User)),
            "memberships": db.session.scalar(
                select(func.count()).select_from(Membership).where(Membership.organization_id == org.id)
            ),
            "sessions": db.session.scalar(select(func.count()).select_from(UserSession)),
            "answered": db.session.scalar(
                select(func.count()).select_from(SamlRequest).where(SamlRequest.answered_at.is_not(None))
            ),
            "seen": db.session.scalar(select(func.count()).select_from(SamlAssertionSeen)),
        }


def _refusals(org) -> list[dict]:
    with all_organizations(reason="test: audit"):
        rows = db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.organization_id == org.id, AuditEvent.action == "sso.sign_in_refused")
            .order_by(AuditEvent.id)
        ).scalars()
        return [r.meta or {} for r in rows]


def _sign_in(client, idp, org, conn_id, user_email="alice@samlco.test"):
    saml_request, relay = _start(client, org)
    rid = _request_id(idp, saml_request)
    response = idp.response(
        idp.users[user_email], in_response_to=rid, acs_url=_acs(org, conn_id), audience=_entity(conn_id)
    )
    resp = client.post(_acs(org, conn_id), data={"SAMLResponse": response, "RelayState": relay})
    return rid, relay, response, resp


def test_saml_sign_in_creates_the_member_and_lands_in_the_organization(client, idp, saml_org):
    org, _, conn_id = saml_org
    _, _, _, resp = _sign_in(client, idp, org, conn_id)
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith(url(None, "/sso/callback/saml"))
    landed = follow(client, resp)
    assert landed.status_code == 200
    assert urlsplit(landed.request.url).netloc.startswith(SLUG + ".")
    with all_organizations(reason="test"):
        user = db.session.execute(select(User).where(User.email == "alice@samlco.test")).scalar_one()
        m = db.session.execute(
            select(Membership).where(Membership.organization_id == org.id, Membership.user_id == user.id)
        ).scalar_one()
    assert user.name == "Alice Liddell"
    assert m.role == "member" and m.status == "active"
    with all_organizations(reason="test: audit"):
        actions = set(
            db.session.execute(select(AuditEvent.action).where(AuditEvent.organization_id == org.id)).scalars()
        )
    assert {"sso.saml_assertion_accepted", "sso.sign_in"} <= actions


@pytest.mark.parametrize("case", sorted(hostile.CASES))
def test_hostile_response_is_refused_audited_and_changes_nothing(client, idp, saml_org, case):
    org, _, conn_id = saml_org
    build, code = hostile.CASES[case]
    saml_request, relay = _start(client, org)
    rid = _request_id(idp, saml_request)
    target = hostile.Target(idp, idp.users["alice@samlco.test"], rid, _entity(conn_id), _acs(org, conn_id))
    before = _counts(org)
    resp = client.post(_acs(org, conn_id), data={"SAMLResponse": build(target), "RelayState": relay})
    assert resp.status_code == 400
    assert "refused" in resp.get_data(as_text=True)
    assert _counts(org) == before
    assert {"reason": f"saml: {code}"}.items() <= _refusals(org)[-1].items()
    # The browser going on to the callback anyway signs no one in.
    after = client.get(url(None, f"/sso/callback/saml?state={relay}"))
    assert after.status_code in (400, 403)
    assert _counts(org)["sessions"] == before["sessions"]


def test_replayed_response_is_refused(client, idp, saml_org):
    org, _, conn_id = saml_org
    _, relay, response, resp = _sign_in(client, idp, org, conn_id)
    assert resp.status_code == 303
    follow(client, resp)
    before = _counts(org)
    again = client.post(_acs(org, conn_id), data={"SAMLResponse": response, "RelayState": relay})
    assert again.status_code == 400
    assert _counts(org) == before
    assert _refusals(org)[-1]["reason"] == "saml: replayed"


def test_assertion_id_is_refused_when_it_answers_another_request(client, app, idp, saml_org):
    """The assertion-id store, on its own: the same assertion (id and
    signature) re-signed as the answer to a second, genuine request."""
    org, _, conn_id = saml_org
    _, _, response, resp = _sign_in(client, idp, org, conn_id)
    assert resp.status_code == 303
    first = samlp.response_from_string(base64.b64decode(response).decode())
    first_id = (first.assertion[0] if isinstance(first.assertion, list) else first.assertion).id
    browser = app.test_client()
    saml_request, relay = _start(browser, org)
    rid2 = _request_id(idp, saml_request)

    def same_id(resp_obj, a):
        a.id = first_id
        resp_obj.in_response_to = rid2
        for sc in a.subject.subject_confirmation:
            sc.subject_confirmation_data.in_response_to = rid2

    target = hostile.Target(idp, idp.users["alice@samlco.test"], rid2, _entity(conn_id), _acs(org, conn_id))
    forged = encode(idp.sign_assertion_xml(target.genuine_xml(sign_assertion=False), same_id))
    before = _counts(org)
    again = browser.post(_acs(org, conn_id), data={"SAMLResponse": forged, "RelayState": relay})
    assert again.status_code == 400
    assert _counts(org) == before
    assert _refusals(org)[-1]["reason"] == "saml: replayed"


def test_response_finished_in_another_browser_signs_no_one_in(app, idp, saml_org):
    """Login CSRF: an attacker's own valid response, pushed into a victim's
    browser, is refused (the request is bound to the browser that started it)."""
    org, _, conn_id = saml_org
    attacker = app.test_client()
    victim = app.test_client()
    _start(victim, org)  # the victim has a flow of their own in progress
    _, relay, _, resp = _sign_in(attacker, idp, org, conn_id)
    assert resp.status_code == 303
    before = _counts(org)
    landed = victim.get(resp.headers["Location"])
    assert landed.status_code == 400
    assert _counts(org)["sessions"] == before["sessions"]


def test_sp_metadata_is_served_on_the_org_host(client, saml_org):
    org, _, conn_id = saml_org
    resp = client.get(_entity(conn_id))
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert f'entityID="{_entity(conn_id)}"' in body and _acs(org, conn_id) in body
    assert 'WantAssertionsSigned="true"' in body
    assert client.get(url("globex", f"/sso/saml/{conn_id}/metadata")).status_code == 404


def test_sp_metadata_download_needs_settings_sso(app, saml_org, login):
    org, owner, conn_id = saml_org
    path = f"/settings/sso/{conn_id}/saml-metadata.xml"
    resp = login(owner, SLUG).get(url(SLUG, path))
    assert resp.status_code == 200
    assert "attachment" in resp.headers["Content-Disposition"]
    viewer = f.make_user("viewer@samlco.test", "V")
    f.add_member(org, viewer, "viewer")
    assert login(viewer, SLUG).get(url(SLUG, path)).status_code == 403


def _request_rows(org) -> int:
    with all_organizations(reason="test: counts"):
        return db.session.scalar(
            select(func.count()).select_from(SamlRequest).where(SamlRequest.organization_id == org.id)
        )


def test_a_burst_of_saml_starts_is_429_with_a_clear_page_and_writes_nothing(app, client, idp, saml_org, monkeypatch):
    """Each start writes a request row: a burst from one address is cut off
    (``SSO_STARTS_PER_IP``), and another address is not affected."""
    org, _, _ = saml_org
    monkeypatch.setitem(app.config, "SSO_STARTS_PER_IP", "3 per minute")
    for _ in range(3):
        _start(client, org)
    rows = _request_rows(org)
    r = client.get(url(None, f"/sso/start/{org.id}"))
    page = r.get_data(as_text=True)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "Too many single sign-on attempts. Try again in 1 minute." in page
    assert "Single sign-on did not work" in page
    assert _request_rows(org) == rows
    other = app.test_client()
    r = other.get(url(None, f"/sso/start/{org.id}"), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert r.status_code == 302

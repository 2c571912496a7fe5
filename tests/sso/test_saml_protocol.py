"""The SAML service provider's checks, response by response (no database:
``app.sso.saml_protocol`` against pysaml2's real IdP and xmlsec1).

The same hostile responses go through the real ACS in
``test_saml_acs.py``, where the refusal must also be audited and change
nothing."""

from __future__ import annotations

import pytest

from app.errors import UserError
from app.sso import saml_protocol as proto
from tests.sso import saml_hostile as hostile
from tests.sso.saml_idp import IdentityProvider, encode

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def idp():
    peer = IdentityProvider()
    peer.add_user("alice@example.com", "Alice Liddell", ["Engineering", "Admins"])
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def sp():
    key, cert = proto.generate_keypair("test sp")
    return proto.SpSettings(
        "http://acme.localhost/sso/saml/c1/metadata", "http://acme.localhost/sso/saml/c1/acs", key, cert
    )


def _target(idp, sp):
    request_id, _ = proto.authn_request(sp, idp.metadata(), "")
    return hostile.Target(idp, idp.users["alice@example.com"], request_id, sp.entity_id, sp.acs_url)


def test_authn_request_goes_to_the_idp_sign_on_url(idp, sp):
    request_id, url = proto.authn_request(sp, idp.metadata(), "")
    assert url.startswith(f"{idp.base}/sso?SAMLRequest=")
    assert request_id.startswith("id-")


def test_genuine_signed_assertion_is_accepted_with_its_attributes(idp, sp):
    t = _target(idp, sp)
    facts = proto.read_response(sp, idp.metadata(), encode(t.genuine_xml()), {t.request_id: "/"})
    assert facts.name_id == "alice@example.com"
    assert facts.in_response_to == t.request_id
    assert facts.issuer == idp.entity_id
    assert facts.attributes["groups"] == ["Engineering", "Admins"]
    assert facts.attributes["displayName"] == ["Alice Liddell"]


@pytest.mark.parametrize("case", sorted(hostile.CASES))
def test_hostile_response_is_refused(idp, sp, case):
    build, code = hostile.CASES[case]
    t = _target(idp, sp)
    with pytest.raises(proto.Refused) as refused:
        proto.read_response(sp, idp.metadata(), build(t), {t.request_id: "/"})
    assert refused.value.code == code


def test_response_to_no_outstanding_request_is_refused(idp, sp):
    """An IdP-initiated (unsolicited) response has nothing tying it to a browser."""
    t = _target(idp, sp)
    with pytest.raises(proto.Refused) as refused:
        proto.read_response(sp, idp.metadata(), encode(t.genuine_xml()), {})
    assert refused.value.code == "in_response_to"


def test_garbage_is_refused_as_malformed(idp, sp):
    for junk in (
        "",
        "not base64 !!",
        encode("<x/>"),
        encode("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>"),
    ):
        with pytest.raises(proto.Refused) as refused:
            proto.read_response(sp, idp.metadata(), junk, {"id-1": "/"})
        assert refused.value.code in ("malformed", "wrapping")


def test_sp_metadata_names_our_acs_and_wants_signed_assertions(sp):
    xml = proto.sp_metadata(sp)
    assert f'entityID="{sp.entity_id}"' in xml
    assert sp.acs_url in xml
    assert 'WantAssertionsSigned="true"' in xml


def test_idp_metadata_is_checked(idp):
    _, info = proto.parse_idp_metadata(idp.metadata())
    assert info.entity_id == idp.entity_id and info.sso_url == f"{idp.base}/sso" and info.signing_certs == 1


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "Paste"),
        ("<not-xml", "not valid SAML metadata"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "DOCTYPE"),
        (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>',
            "exactly one identity provider",
        ),
    ],
)
def test_bad_idp_metadata_is_refused_with_a_reason(text, words):
    with pytest.raises(UserError) as refused:
        proto.parse_idp_metadata(text)
    assert words in refused.value.message


def test_idp_metadata_without_signing_certificate_is_refused(idp):
    import re

    stripped = re.sub(r"<ns0:KeyDescriptor.*?</ns0:KeyDescriptor>", "", idp.metadata(), flags=re.S)
    assert "KeyDescriptor" not in stripped
    with pytest.raises(UserError) as refused:
        proto.parse_idp_metadata(stripped)
    assert "signing certificate" in refused.value.message


def test_expired_saml_ids_are_purged_and_live_ones_kept(app):
    """The daily job forgets request and assertion ids past their end, in every organization."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from app.extensions import db
    from app.scoping import all_organizations, tenant_context
    from app.sso.models import SsoConnection
    from app.sso.saml_models import SamlAssertionSeen, SamlRequest
    from app.sso.tasks import saml_purge
    from app.util import utcnow
    from tests import factories as f

    now = utcnow()
    for slug in ("one", "two"):
        org = f.make_org(slug)
        with tenant_context(org.id):
            conn = SsoConnection(protocol="saml", provider="generic", name="IdP", config={})
            db.session.add(conn)
            db.session.flush()
            for rid, ends in (("id-old", now - timedelta(days=2)), ("id-live", now + timedelta(minutes=5))):
                db.session.add(
                    SamlRequest(id=rid, connection_id=conn.id, browser="x" * 64, next_url="/", expires_at=ends)
                )
                db.session.add(SamlAssertionSeen(assertion_id=rid, expires_at=ends))
            db.session.commit()
    assert saml_purge.body(0) == {"requests": 2, "assertions": 2}
    with all_organizations(reason="test"):
        assert db.session.scalar(select(func.count()).select_from(SamlRequest)) == 2
        assert set(db.session.scalars(select(SamlAssertionSeen.assertion_id))) == {"id-live"}

"""Hostile SAML responses, made with real XML signatures (xmlsec1 through pysaml2's sigver).

Each builder takes the genuine test IdP, the user, the AuthnRequest id it
answers and our SP's entity id and ACS URL, and returns a base64
``SAMLResponse`` that a correct SP must refuse, with the refusal code it
must give. Nothing here mocks the SP: the responses go through the real
parser and signature check.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from saml2.time_util import a_while_ago, in_a_while

from tests.sso.saml_idp import IdentityProvider, encode

NS = {
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ATTACKER = "mallory@example.com"


@dataclass
class Target:
    """What the hostile response is aimed at."""

    idp: IdentityProvider
    user: object
    request_id: str
    entity_id: str
    acs_url: str

    def genuine_xml(self, **kw) -> str:
        args = {"in_response_to": self.request_id, "acs_url": self.acs_url, "audience": self.entity_id}
        args.update(kw)
        return self.idp.response_xml(self.user, **args)


def unsigned(t: Target) -> str:
    return encode(t.genuine_xml(sign_assertion=False))


def unsigned_assertion_in_signed_response(t: Target) -> str:
    """The whole response signed, the assertion itself not: we want the assertion's own signature."""
    return encode(t.genuine_xml(sign_assertion=False, sign_response=True))


_other_idps: dict[str, IdentityProvider] = {}


def signed_by_another_key(t: Target) -> str:
    """Same issuer, same content, signed by a key that is not in the metadata."""
    other = _other_idps.get(t.idp.entity_id)
    if other is None:
        other = _other_idps[t.idp.entity_id] = IdentityProvider(entity_id=t.idp.entity_id)
    return encode(other.response_xml(t.user, in_response_to=t.request_id, acs_url=t.acs_url, audience=t.entity_id))


def wrong_audience(t: Target) -> str:
    return encode(t.genuine_xml(audience="https://another-service.example/saml/metadata"))


def expired(t: Target) -> str:
    def edit(resp, a):
        a.conditions.not_on_or_after = a_while_ago(minutes=10)
        for sc in a.subject.subject_confirmation:
            sc.subject_confirmation_data.not_on_or_after = a_while_ago(minutes=10)

    return encode(t.idp.sign_assertion_xml(t.genuine_xml(sign_assertion=False), edit))


def not_yet_valid(t: Target) -> str:
    def edit(resp, a):
        a.conditions.not_before = in_a_while(minutes=10)

    return encode(t.idp.sign_assertion_xml(t.genuine_xml(sign_assertion=False), edit))


def wrong_in_response_to(t: Target) -> str:
    return encode(t.genuine_xml(in_response_to="id-never-sent-by-this-sp"))


def _evil_copy(signed):
    evil = copy.deepcopy(signed)
    evil.set("ID", "id-forged")
    for sig in evil.findall("ds:Signature", NS):
        evil.remove(sig)
    evil.find("saml:Subject/saml:NameID", NS).text = ATTACKER
    for value in evil.iter(f"{{{NS['saml']}}}AttributeValue"):
        if value.text and "@" in value.text:
            value.text = ATTACKER
    return evil


def _wrap(t: Target, variant: str) -> str:
    root = SafeET.fromstring(t.genuine_xml())
    signed = root.find("saml:Assertion", NS)
    evil = _evil_copy(signed)
    if variant == "sibling":
        # A forged assertion before the signed one (XSW "sibling" attack).
        root.insert(list(root).index(signed), evil)
    elif variant == "inside":
        # The forged assertion in its place, the signed one hidden inside it.
        root.remove(signed)
        root.append(evil)
        ET.SubElement(evil, f"{{{NS['saml']}}}Advice").append(signed)
    elif variant == "extensions":
        # The signed one moved into the response's Extensions.
        root.remove(signed)
        ext = ET.Element(f"{{{NS['samlp']}}}Extensions")
        ext.append(signed)
        root.insert(1, ext)
        root.append(evil)
    return encode(ET.tostring(root, encoding="unicode"))


def wrapping_sibling(t: Target) -> str:
    return _wrap(t, "sibling")


def wrapping_inside(t: Target) -> str:
    return _wrap(t, "inside")


def wrapping_extensions(t: Target) -> str:
    return _wrap(t, "extensions")


def signed_with_rsa_sha1(t: Target) -> str:
    """A genuine signature by the IdP's own key, made with RSA-SHA1 (SHA-256 digest)."""
    return encode(t.genuine_xml(sign_alg="http://www.w3.org/2000/09/xmldsig#rsa-sha1"))


def sha1_digest(t: Target) -> str:
    """A genuine RSA-SHA256 signature by the IdP's own key over a SHA-1 digest of the assertion."""
    return encode(t.genuine_xml(digest_alg="http://www.w3.org/2000/09/xmldsig#sha1"))


def response_signed_with_sha1(t: Target) -> str:
    """Assertion and response both signed by the IdP's key, with RSA-SHA1 and SHA-1 digests (pysaml2's defaults)."""
    return encode(
        t.genuine_xml(
            sign_response=True,
            sign_alg="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            digest_alg="http://www.w3.org/2000/09/xmldsig#sha1",
        )
    )


# (builder, the refusal code the SP must give)
CASES = {
    "unsigned": (unsigned, "unsigned"),
    "unsigned_assertion_in_signed_response": (unsigned_assertion_in_signed_response, "unsigned"),
    "signed_by_another_key": (signed_by_another_key, "bad_signature"),
    "wrong_audience": (wrong_audience, "audience"),
    "expired": (expired, "expired"),
    "not_yet_valid": (not_yet_valid, "not_yet_valid"),
    "wrong_in_response_to": (wrong_in_response_to, "in_response_to"),
    "wrapping_sibling": (wrapping_sibling, "wrapping"),
    "wrapping_inside": (wrapping_inside, "wrapping"),
    "wrapping_extensions": (wrapping_extensions, "wrapping"),
    "signed_with_rsa_sha1": (signed_with_rsa_sha1, "weak_algorithm"),
    "sha1_digest": (sha1_digest, "weak_algorithm"),
    "response_signed_with_sha1": (response_signed_with_sha1, "weak_algorithm"),
}

"""SAML 2.0 service provider, per organization, on pysaml2 (the protocol only).

This module knows SAML and nothing of the database: it is handed an
organization's SP settings (``SpSettings``: entity id, ACS URL, our key and
certificate) and the identity provider's metadata, and

* ``parse_idp_metadata(xml)`` checks an IdP's metadata (well-formed, one
  IdP with a single sign-on endpoint and a signing certificate) and says
  what it found;
* ``sp_metadata(sp)`` draws our SP metadata (entity id, ACS URL, our
  certificate, ``WantAssertionsSigned="true"``);
* ``authn_request(sp, idp_xml, relay_state)`` makes an AuthnRequest for the
  HTTP-Redirect binding: its id (kept by the caller to check
  ``InResponseTo``) and the URL to send the browser to;
* ``read_response(sp, idp_xml, saml_response, outstanding)`` checks a
  response posted to our ACS and returns the one assertion's facts, or
  raises ``Refused`` with a short code and a sentence.

What a response must be to be accepted (pysaml2 checks the first five, this
module the rest, and the caller the replay store):

1. the assertion signed by a certificate in the IdP's metadata (xmlsec1
   verifies the signature; an unsigned assertion, or one signed by any other
   key, is refused even when the whole response is signed: we set
   ``want_assertions_signed``);
2. its audience is our entity id, its ``Destination``/``Recipient`` our ACS
   URL;
3. within ``NotBefore`` .. ``NotOnOrAfter`` (with ``CLOCK_SKEW_SECONDS`` of
   tolerance for clocks);
4. ``InResponseTo`` names an AuthnRequest we sent that is still
   outstanding (``outstanding`` is the caller's store; unsolicited,
   IdP-initiated responses are refused: nothing would tie them to the
   browser that started the sign-in);
5. issued by the IdP of the metadata;
6. exactly one assertion, and it is **the element the signature covers**:
   we look the signed reference up ourselves and compare it with the
   assertion pysaml2 read, so an XML signature wrapping (a forged assertion
   beside or around a genuinely signed one) is refused whatever the parser
   would have picked;
7. every signature in it made with SHA-2 (``STRONG_SIGNATURE_ALGORITHMS``,
   ``STRONG_DIGEST_ALGORITHMS``): RSA-SHA1, a SHA-1 or MD5 digest, DSA are
   refused (``weak_algorithm``), before the signature is even checked, and
   again on a decrypted assertion. pysaml2 checks no incoming algorithm
   (its allow-lists are for what it signs), so this module does; what we
   would sign ourselves is configured to SHA-256 too.

xmlsec1 needs files: keys and certificates are written to a private
temporary directory for the call and removed after it.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.errors import UserError

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
# Clocks of the IdP and ours may differ a little; a minute is what Okta and
# Entra documentation assume.
CLOCK_SKEW_SECONDS = 60
# An IdP's metadata larger than this is not metadata (Entra's is ~ 20 kB;
# a federation aggregate is not one IdP and is refused anyway).
MAX_METADATA_BYTES = 512 * 1024
# A posted SAMLResponse larger than this is refused before parsing.
MAX_RESPONSE_BYTES = 256 * 1024
# What an accepted signature may be made with: SHA-2 only. SHA-1 is broken
# for collisions (SHAttered, 2017) and every IdP we guide (Okta, Entra,
# Google) signs with RSA-SHA256 by default.
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
STRONG_SIGNATURE_ALGORITHMS = frozenset(
    {
        SIG_RSA_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
STRONG_DIGEST_ALGORITHMS = frozenset(
    {
        DIGEST_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)


class Refused(Exception):
    """A SAML response we do not accept: ``code`` (for the audit log and
    tests: ``unsigned``, ``bad_signature``, ``audience``, ``expired``,
    ``not_yet_valid``, ``in_response_to``, ``wrapping``, ``malformed``,
    ``issuer``, ``replayed``, ``status``) and a sentence for the person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SpSettings:
    """Our side of one organization's SAML connection."""

    entity_id: str
    acs_url: str
    key_pem: str
    cert_pem: str


@dataclass(frozen=True)
class IdpInfo:
    """What an IdP's metadata says: its entity id, where to send the
    browser, and how many signing certificates it lists."""

    entity_id: str
    sso_url: str
    signing_certs: int


@dataclass
class Assertion:
    """The facts of one accepted assertion."""

    assertion_id: str
    in_response_to: str
    name_id: str
    issuer: str
    not_on_or_after: datetime
    attributes: dict[str, list[str]] = field(default_factory=dict)


def generate_keypair(common_name: str, *, years: int = 10) -> tuple[str, str]:
    """A fresh RSA-2048 key and a self-signed certificate for it (PEM
    strings): what an organization's SP signs with and receives encrypted
    assertions for. SAML peers pin the certificate from metadata, so
    self-signed is the norm (no CA is consulted)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _cert_body(pem: str) -> str:
    """The base64 body of a PEM certificate, as metadata carries it."""
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


@contextmanager
def _files(**texts: str) -> Iterator[dict[str, str]]:
    """Write ``texts`` to files in a fresh private directory (xmlsec1 reads
    files), yield their paths, remove them all afterwards."""
    d = tempfile.mkdtemp(prefix="tenantry-saml-")
    try:
        paths = {}
        for name, text in texts.items():
            path = os.path.join(d, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            paths[name] = path
        yield paths
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _config(sp: SpSettings, paths: dict[str, str], idp_xml: str | None):
    from saml2 import config as saml_config
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED

    conf = {
        "entityid": sp.entity_id,
        "key_file": paths["key"],
        "cert_file": paths["cert"],
        # Encrypted assertions are decrypted with the same key pair.
        "encryption_keypairs": [{"key_file": paths["key"], "cert_file": paths["cert"]}],
        "xmlsec_binary": xmlsec_binary(),
        "accepted_time_diff": CLOCK_SKEW_SECONDS,
        # What we would sign with (pysaml2's default is RSA-SHA1).
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(sp.acs_url, BINDING_POST)]},
                "want_assertions_signed": True,
                # Entra signs the assertion only (by default); Okta both. The
                # assertion's signature is the one we require.
                "want_response_signed": False,
                "allow_unsolicited": False,
                "authn_requests_signed": False,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED],
                "name_id_format_allow_create": True,
            }
        },
    }
    if idp_xml is not None:
        conf["metadata"] = {"inline": [idp_xml]}
    c = saml_config.SPConfig()
    c.load(conf)
    return c


def xmlsec_binary() -> str:
    """Path of the ``xmlsec1`` program (Debian: ``apt-get install xmlsec1``)."""
    path = shutil.which("xmlsec1")
    if not path:
        raise RuntimeError("xmlsec1 is not installed: apt-get install xmlsec1")
    return path


def parse_idp_metadata(xml: str | bytes, field_name: str = "metadata") -> tuple[str, IdpInfo]:
    """Check an IdP's metadata and return ``(xml_text, info)``.

    Refuses (``UserError`` on ``field_name``) what is not well-formed XML
    (entities and DTDs are refused by the parser: no XXE), too large, not
    exactly one IdP, or an IdP without an HTTP-Redirect or HTTP-POST single
    sign-on endpoint or without a signing certificate (we could not check
    its signatures).
    """
    if isinstance(xml, bytes):
        if len(xml) > MAX_METADATA_BYTES:
            raise UserError("This file is too large to be an identity provider's metadata.", field_name)
        try:
            xml = xml.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError("This is not an XML metadata document (it is not UTF-8 text).", field_name) from None
    xml = xml.strip().lstrip("\ufeff")
    if not xml:
        raise UserError("Paste the identity provider's metadata, or give its URL.", field_name)
    if len(xml.encode()) > MAX_METADATA_BYTES:
        raise UserError("This is too large to be an identity provider's metadata.", field_name)
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise UserError("Metadata with a DOCTYPE or entities is not accepted.", field_name)
    from saml2.mdstore import InMemoryMetaData

    try:
        store = InMemoryMetaData(None, security=None)
        store.parse(xml)
    except Exception:
        # pysaml2 raises a dozen types (ParseError, XMLSchema errors,
        # defusedxml's); for the person they all mean the same.
        raise UserError("This is not valid SAML metadata (the XML could not be read).", field_name) from None
    idps = [(eid, ent) for eid, ent in store.items() if "idpsso_descriptor" in ent]
    if len(idps) != 1:
        raise UserError(f"The metadata must describe exactly one identity provider (found {len(idps)}).", field_name)
    entity_id, ent = idps[0]
    sso_url = None
    certs = 0
    for desc in ent["idpsso_descriptor"]:
        for svc in desc.get("single_sign_on_service", []):
            if svc["binding"] == BINDING_REDIRECT and sso_url is None:
                sso_url = svc["location"]
        for kd in desc.get("key_descriptor", []):
            if kd.get("use", "signing") == "signing":
                certs += len(kd.get("key_info", {}).get("x509_data", []))
    if not sso_url:
        raise UserError(
            "The identity provider offers no single sign-on endpoint with the HTTP-Redirect binding.", field_name
        )
    if not sso_url.startswith(("https://", "http://")):
        raise UserError("The identity provider's sign-on address is not a web address.", field_name)
    if certs == 0:
        raise UserError("The metadata lists no signing certificate: its assertions could not be checked.", field_name)
    return xml, IdpInfo(entity_id=entity_id, sso_url=sso_url, signing_certs=certs)


def sp_metadata(sp: SpSettings) -> str:
    """Our SP metadata (XML): entity id, ACS URL (HTTP-POST), our
    certificate for signing and encryption, ``WantAssertionsSigned``."""
    from saml2.metadata import create_metadata_string

    with _files(key=sp.key_pem, cert=sp.cert_pem) as paths:
        conf = _config(sp, paths, None)
        out = create_metadata_string(None, config=conf, valid=None, sign=False)
    return out.decode() if isinstance(out, bytes) else out


def authn_request(sp: SpSettings, idp_xml: str, relay_state: str) -> tuple[str, str]:
    """An AuthnRequest to the IdP: ``(request_id, url)``, the URL for the
    browser (HTTP-Redirect binding) carrying ``relay_state``."""
    from saml2.client import Saml2Client

    with _files(key=sp.key_pem, cert=sp.cert_pem) as paths:
        client = Saml2Client(config=_config(sp, paths, idp_xml))
        _, idp = parse_idp_metadata(idp_xml)
        request_id, info = client.prepare_for_authenticate(
            entityid=idp.entity_id, relay_state=relay_state, binding=BINDING_REDIRECT
        )
    url = dict(info["headers"])["Location"]
    return request_id, url


def _signed_reference(root) -> str | None:
    """The id the (single) assertion signature's Reference points at."""
    refs = root.findall(f".//{{{NS_SAML}}}Assertion/{{{NS_DS}}}Signature/{{{NS_DS}}}SignedInfo/{{{NS_DS}}}Reference")
    if len(refs) != 1:
        return None
    uri = refs[0].get("URI") or ""
    return uri[1:] if uri.startswith("#") else None


def _weak_algorithm(methods) -> Refused | None:
    """The refusal for a signature whose ``(signature method, [digest
    methods])`` include one outside the SHA-2 allow-lists, else ``None``."""
    for sig_alg, digest_algs in methods:
        if sig_alg not in STRONG_SIGNATURE_ALGORITHMS or not digest_algs:
            name = (sig_alg or "none").rsplit("#", 1)[-1]
            return Refused(
                "weak_algorithm",
                f"The answer is signed with {name}, which we do not accept: ask your provider to sign with RSA-SHA256.",
            )
        weak = [d for d in digest_algs if d not in STRONG_DIGEST_ALGORITHMS]
        if weak:
            name = (weak[0] or "none").rsplit("#", 1)[-1]
            return Refused(
                "weak_algorithm",
                f"The answer's signature uses the {name} digest, which we do not accept: ask your provider for SHA-256.",
            )
    return None


def _signature_methods(root) -> list[tuple[str | None, list[str | None]]]:
    """``(signature method, [digest methods])`` of every XML signature under ``root``."""
    out = []
    for sig in root.iter(f"{{{NS_DS}}}Signature"):
        info = sig.find(f"{{{NS_DS}}}SignedInfo")
        if info is None:
            out.append((None, []))
            continue
        method = info.find(f"{{{NS_DS}}}SignatureMethod")
        digests = [d.get("Algorithm") for d in info.findall(f"{{{NS_DS}}}Reference/{{{NS_DS}}}DigestMethod")]
        out.append((method.get("Algorithm") if method is not None else None, digests))
    return out


def _shape_check(xml: str) -> None:
    """Refuse a response whose shape invites signature wrapping: anything
    but one Response root holding exactly one Assertion (or one
    EncryptedAssertion), an assertion anywhere else in the tree, or
    duplicate ID attributes."""
    from defusedxml import ElementTree as SafeET

    try:
        root = SafeET.fromstring(xml)
    except Exception:
        raise Refused("malformed", "The identity provider's answer could not be read.") from None
    if root.tag != f"{{{NS_SAMLP}}}Response":
        raise Refused("malformed", "The identity provider's answer is not a SAML response.")
    all_assertions = root.findall(f".//{{{NS_SAML}}}Assertion")
    direct = root.findall(f"{{{NS_SAML}}}Assertion")
    encrypted = root.findall(f"{{{NS_SAML}}}EncryptedAssertion")
    if len(direct) + len(encrypted) != 1 or len(all_assertions) != len(direct):
        raise Refused("wrapping", "The response does not hold exactly one assertion where one belongs.")
    ids = [el.get("ID") for el in root.iter() if el.get("ID") is not None]
    if len(ids) != len(set(ids)):
        raise Refused("wrapping", "The response repeats an element id.")
    if direct:
        ref = _signed_reference(root)
        if ref is not None and ref != direct[0].get("ID"):
            raise Refused("wrapping", "The signature does not cover the assertion.")
    weak = _weak_algorithm(_signature_methods(root))
    if weak is not None:
        raise weak


def _time_refusal(xml: str) -> Refused:
    """Which time condition an assertion fails (pysaml2 says only
    "Condition not OK"): read from the response it refused."""
    from defusedxml import ElementTree as SafeET

    now = datetime.now(UTC)
    root = SafeET.fromstring(xml)
    for el in root.iter():
        nb = el.get("NotBefore")
        if nb and _parse_time(nb) - timedelta(seconds=CLOCK_SKEW_SECONDS) > now:
            return Refused("not_yet_valid", "The assertion is not valid yet (check the clocks).")
    return Refused("expired", "The assertion has expired.")


def _classify(exc: Exception, xml: str) -> Refused:
    """Map pysaml2's exceptions (and their messages) to our refusal codes."""
    from saml2 import response as r
    from saml2 import sigver

    text = str(exc)
    name = type(exc).__name__
    if isinstance(exc, r.StatusError):
        return Refused("status", "The identity provider did not sign you in.")
    if "signature missing" in text.lower() or "not signed" in text.lower():
        return Refused("unsigned", "The assertion is not signed.")
    if isinstance(exc, sigver.SignatureError) or name in ("SignatureError", "BadSignature"):
        return Refused("bad_signature", "The assertion's signature does not match the identity provider's certificate.")
    if "condition not ok" in text.lower():
        return _time_refusal(xml)
    if isinstance(exc, r.UnsolicitedResponse) or name == "UnsolicitedResponse":
        return Refused("in_response_to", "This answer does not match a sign-in started here.")
    if name == "ToEarly" or "too early" in text.lower() or "not yet" in text.lower():
        return Refused("not_yet_valid", "The assertion is not valid yet.")
    if "too old" in text.lower() or name == "ResponseLifetimeExceed" or "lifetime" in text.lower():
        return Refused("expired", "The assertion has expired.")
    if "audience" in text.lower() or "not for me" in text.lower():
        return Refused("audience", "The assertion is meant for another service.")
    if "issuer" in text.lower():
        return Refused("issuer", "The answer comes from another identity provider.")
    if "destination" in text.lower() or "recipient" in text.lower():
        return Refused("audience", "The answer was sent to another address.")
    return Refused("malformed", f"The identity provider's answer was refused ({name}).")


def read_response(sp: SpSettings, idp_xml: str, saml_response: str, outstanding: Mapping[str, str]) -> Assertion:
    """Check a posted ``SAMLResponse`` (base64) and return its assertion's facts.

    ``outstanding`` maps the ids of AuthnRequests we sent (and not yet
    answered) to where they came from; a response to anything else is
    refused. Raises ``Refused``; never returns an assertion that failed a
    check listed in the module docstring (replay excepted: the caller keeps
    the store of assertion ids).
    """
    from saml2.client import Saml2Client

    if not saml_response or len(saml_response) > MAX_RESPONSE_BYTES:
        raise Refused("malformed", "The identity provider's answer is missing or too large.")
    try:
        xml = base64.b64decode(saml_response, validate=False).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise Refused("malformed", "The identity provider's answer could not be read.") from None
    _shape_check(xml)
    with _files(key=sp.key_pem, cert=sp.cert_pem) as paths:
        client = Saml2Client(config=_config(sp, paths, idp_xml))
        try:
            resp = client.parse_authn_request_response(saml_response, BINDING_POST, outstanding=dict(outstanding))
        except Exception as e:  # pysaml2 signals every failed check by an exception
            raise _classify(e, xml) from None
        if resp is None:
            raise Refused("malformed", "The identity provider's answer was empty.")
        try:
            assertion = resp.assertion
            _, idp = parse_idp_metadata(idp_xml)
        except Exception:
            raise Refused("malformed", "The identity provider's answer holds no assertion.") from None
    if assertion is None:
        raise Refused("malformed", "The identity provider's answer holds no assertion.")
    if assertion.signature is None:
        # Covered only by the response's signature is not enough: we ask
        # for the assertion's own (WantAssertionsSigned), as it is what we
        # keep and act on.
        raise Refused("unsigned", "The assertion itself is not signed.")
    # Again on the assertion pysaml2 read: an encrypted one was not in
    # plain sight for ``_shape_check``.
    info = assertion.signature.signed_info
    weak = _weak_algorithm(
        [
            (
                info.signature_method.algorithm if info is not None and info.signature_method is not None else None,
                [r.digest_method.algorithm if r.digest_method is not None else None for r in (info.reference or [])]
                if info is not None
                else [],
            )
        ]
    )
    if weak is not None:
        raise weak
    if resp.in_response_to not in outstanding:
        raise Refused("in_response_to", "This answer does not match a sign-in started here.")
    issuer = (assertion.issuer.text or "").strip() if assertion.issuer is not None else ""
    if issuer != idp.entity_id:
        raise Refused("issuer", "The answer comes from another identity provider.")
    not_on_or_after = None
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        not_on_or_after = _parse_time(assertion.conditions.not_on_or_after)
    for sc in assertion.subject.subject_confirmation or []:
        scd = sc.subject_confirmation_data
        if scd is not None and scd.not_on_or_after:
            t = _parse_time(scd.not_on_or_after)
            not_on_or_after = t if not_on_or_after is None else min(not_on_or_after, t)
    now = datetime.now(UTC)
    if not_on_or_after is None:
        # Without an end we would have to remember its id for ever.
        raise Refused("expired", "The assertion does not say until when it is valid.")
    if not_on_or_after + timedelta(seconds=CLOCK_SKEW_SECONDS) <= now:
        raise Refused("expired", "The assertion has expired.")
    attributes = {k: [str(v) for v in vs] for k, vs in (resp.ava or {}).items()}
    # pysaml2 maps well-known attribute URIs to friendly names; keep the
    # names exactly as sent too, so a mapping may use either.
    for stmt in assertion.attribute_statement or []:
        for attr in stmt.attribute:
            values = [str(v.text or "").strip() for v in attr.attribute_value]
            attributes.setdefault(attr.name, values)
            if attr.friendly_name:
                attributes.setdefault(attr.friendly_name, values)
    return Assertion(
        assertion_id=assertion.id,
        in_response_to=resp.in_response_to,
        name_id=(resp.name_id.text or "").strip() if resp.name_id is not None else "",
        issuer=issuer,
        not_on_or_after=not_on_or_after + timedelta(seconds=CLOCK_SKEW_SECONDS),
        attributes=attributes,
    )


def _parse_time(value: str) -> datetime:
    from saml2.time_util import str_to_time

    t = str_to_time(value)
    return datetime(*t[:6], tzinfo=UTC)

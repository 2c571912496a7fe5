"""SAML 2.0 connections, registered in ``app.sso.registry`` (the protocol seam).

The protocol itself (pysaml2, xmlsec1, every check of a response) is
``app.sso.saml_protocol``; this module ties it to an organization's
connection and to the shared sign-in flow:

* **Our SP, per connection, on the organization's host.** Entity id
  ``https://<org host>/sso/saml/<connection id>/metadata`` (the URL serves
  our metadata), ACS ``https://<org host>/sso/saml/<connection id>/acs``
  (HTTP-POST). The admin downloads the metadata from the portal
  (``settings:sso``) or gives the IdP the URL.
* **Our key and certificate** are generated for each connection when its
  settings are first saved (RSA-2048, self-signed, 10 years: SAML peers pin
  the certificate from metadata) and the key is stored encrypted with
  ``app.crypto`` in the connection's secret column; the certificate is in
  its config. Per connection rather than one deployment-wide key from the
  environment: an organization's IT can be handed its metadata without an
  operator, and one organization's key never signs for another.
* **The IdP's metadata** by URL (fetched through the webhooks' SSRF guard:
  no private address, no redirect, timeouts), as an uploaded file (at most
  ``MAX_METADATA_BYTES``, XML parsed without DTDs or entities), or pasted
  (a metadata file's contents); it must hold a signing certificate
  (assertions must be signed).
* **Sign-in.** ``start_login`` sends an AuthnRequest and remembers its id
  in ``saml_requests``, bound to the browser by a random value kept in the
  flow's ``pending`` (the apex's signed cookie). The IdP posts to our ACS
  (``app.sso.saml_views``), which checks the response
  (``saml_protocol.read_response``), refuses a replayed assertion id, and
  keeps the facts in the request row; the browser is then sent to the
  shared callback, whose ``finish_login`` hands them over only to the
  browser that started that request, once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import url_for
from sqlalchemy import delete, select

from app import audit, crypto
from app.errors import UserError
from app.extensions import db
from app.scoping import tenant_context
from app.sso import registry
from app.sso import saml_protocol as proto
from app.sso.registry import Field, Identity, SsoRefused
from app.sso.saml_models import REQUEST_TTL, SamlAssertionSeen, SamlRequest
from app.tenancy.models import Organization
from app.util import utcnow
from app.web import hosts
from app.webhooks import guard

FETCH_TIMEOUT = 5.0
DEFAULT_ATTRIBUTES = {"email_attribute": "email", "name_attribute": "displayName", "groups_attribute": "groups"}
# What Okta and Entra send by default, tried when the configured name is absent.
FALLBACK_ATTRIBUTES = {
    "email": (
        "email",
        "mail",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    "name": ("displayName", "name", "http://schemas.microsoft.com/identity/claims/displayname", "cn"),
    "groups": ("groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"),
}


def _org(conn) -> Organization:
    org = db.session.get(Organization, conn.organization_id)
    if org is None:  # the connection is read in its organization's scope
        raise SsoRefused("This organization is not available.", "organization")
    return org


def entity_id(org, conn) -> str:
    return hosts.org_url(org, url_for("saml.metadata", connection_id=conn.id))


def acs_url(org, conn) -> str:
    return hosts.org_url(org, url_for("saml.acs", connection_id=conn.id))


def sp_settings(org, conn) -> proto.SpSettings:
    """Our side of ``conn``: entity id, ACS URL, key and certificate.
    Raises ``UserError`` when the connection has no key yet (never saved)."""
    cert = (conn.config or {}).get("sp_cert")
    if not cert or not conn.secret_encrypted:
        raise UserError("Save the connection's settings first: its SAML key is made then.")
    key = crypto.decrypt(conn.secret_encrypted).decode()
    return proto.SpSettings(entity_id(org, conn), acs_url(org, conn), key, cert)


def sp_metadata(org, conn) -> str:
    """Our SP metadata for ``conn`` (XML)."""
    return proto.sp_metadata(sp_settings(org, conn))


def fetch_metadata(url: str, field: str = "idp_metadata_url") -> str:
    """The IdP metadata at ``url``, fetched through the SSRF guard (public
    addresses only, no redirects, ``FETCH_TIMEOUT``, at most
    ``MAX_METADATA_BYTES``). ``UserError`` on ``field`` when it cannot be."""
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")):
        raise UserError("Enter the metadata URL, like https://company.okta.com/app/…/sso/saml/metadata.", field)
    if url.startswith("http://") and not guard.http_allowed():
        raise UserError("Use an https:// metadata URL.", field)
    try:
        guard.check_url(url, field=field)
    except UserError as e:
        raise UserError(e.message.replace("Webhooks cannot be sent to", "We cannot reach"), field) from None
    try:
        resp = guard.session(FETCH_TIMEOUT).get(url, stream=True, headers={"Accept": "application/xml, text/xml"})
        if resp.status_code != 200:
            raise UserError(f"The metadata URL answered {resp.status_code}, not the metadata.", field)
        body = resp.raw.read(proto.MAX_METADATA_BYTES + 1, decode_content=True)
    except UserError:
        raise
    except Exception:
        raise UserError("The metadata URL could not be reached (no answer in time, or refused).", field) from None
    if len(body) > proto.MAX_METADATA_BYTES:
        raise UserError("The document at this URL is too large to be metadata.", field)
    return body.decode("utf-8", "replace")


def _xml_file(body: bytes) -> bytes:
    """``body`` if it looks like an XML document (after a BOM and blank
    space it opens with ``<``) and is within ``MAX_METADATA_BYTES``; else
    ``UserError`` on the file input. The XML itself is read by
    ``proto.parse_idp_metadata`` (no DTD, no entities)."""
    field = "idp_metadata_file"
    if len(body) > proto.MAX_METADATA_BYTES:
        raise UserError(
            f"This file is larger than {proto.MAX_METADATA_BYTES // 1024} KB: too large to be an identity provider's metadata.",
            field,
        )
    if not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise UserError("This file is not XML: upload the metadata file (.xml) your provider gives.", field)
    return body


def _browser_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _pick(attributes: dict, configured: str | None, kind: str) -> list[str]:
    names = ((configured,) if configured else ()) + FALLBACK_ATTRIBUTES[kind]
    for name in names:
        if attributes.get(name):
            return [v for v in attributes[name] if v]
    return []


def identity_of(conn, facts: dict) -> Identity:
    """The person an accepted assertion names, with the connection's
    attribute mapping (e-mail, name, groups) applied; the NameID is the
    subject, the e-mail falls back to it when it looks like an address."""
    cfg = conn.config or {}
    attributes = facts.get("attributes") or {}
    emails = _pick(attributes, cfg.get("email_attribute"), "email")
    email = (emails[0] if emails else facts.get("name_id", "")).strip().lower()
    names = _pick(attributes, cfg.get("name_attribute"), "name")
    groups = tuple(dict.fromkeys(_pick(attributes, cfg.get("groups_attribute"), "groups")))
    return Identity(
        subject=facts.get("name_id") or email,
        email=email,
        name=(names[0] if names else "").strip(),
        groups=groups,
        attributes=attributes,
    )


class SamlProtocol:
    key = "saml"
    label = "SAML 2.0"
    config_fields = (
        Field(
            "idp_metadata_url",
            "Identity provider metadata URL",
            "Okta: the app's “Metadata URL”. Entra: “App Federation Metadata Url”. Or upload the file, or paste the XML, below.",
            required=False,
        ),
        Field(
            "idp_metadata_file",
            "Identity provider metadata file",
            f"Or upload the metadata file your provider gives (XML, at most {proto.MAX_METADATA_BYTES // 1024} KB).",
            required=False,
            upload=True,
            upload_max=proto.MAX_METADATA_BYTES,
        ),
        Field(
            "idp_metadata",
            "Identity provider metadata (XML)",
            "Or paste the metadata document (the contents of the metadata file: Okta's “metadata.xml”, Entra's “Federation Metadata XML”).",
            required=False,
            multiline=True,
        ),
        Field("email_attribute", "E-mail attribute", "The attribute holding the e-mail address.", required=False),
        Field("name_attribute", "Name attribute", "The attribute holding the person's full name.", required=False),
        Field(
            "groups_attribute",
            "Groups attribute",
            "The attribute listing the person's groups (mapped to roles).",
            required=False,
        ),
    )

    # ---------------------------------------------------------------- portal
    def our_values(self, conn) -> list[tuple[str, str]]:
        org = _org(conn)
        return [
            ("ACS URL (Single sign-on URL, Reply URL)", acs_url(org, conn)),
            ("Entity ID (Audience URI, Identifier)", entity_id(org, conn)),
            ("Our metadata URL", entity_id(org, conn)),
        ]

    def clean_config(self, conn, data: dict) -> tuple[dict, str | None]:
        """Validate the IdP metadata (an uploaded file first, else pasted,
        else fetched from the URL) and the attribute names; make our key
        pair the first time. A file that is not XML SAML metadata or is too
        large: ``UserError`` beside the file input, nothing kept.
        Returns ``(config, new key PEM or None)``."""
        old = dict(conn.config or {})
        url = (data.get("idp_metadata_url") or "").strip()
        pasted = data.get("idp_metadata")
        pasted = pasted.strip() if isinstance(pasted, str) else ""
        uploaded = data.get("idp_metadata_file")
        if isinstance(uploaded, bytes) and uploaded:
            xml, info = proto.parse_idp_metadata(_xml_file(uploaded), "idp_metadata_file")
        elif pasted:
            xml, info = proto.parse_idp_metadata(pasted, "idp_metadata")
        elif url and not (url == old.get("idp_metadata_url") and old.get("idp_metadata")):
            xml, info = proto.parse_idp_metadata(fetch_metadata(url), "idp_metadata_url")
        elif old.get("idp_metadata"):
            xml, info = proto.parse_idp_metadata(old["idp_metadata"], "idp_metadata")
        else:
            # Saving without the IdP's metadata is allowed: it makes our key
            # and metadata, which some providers want before they give theirs.
            xml, info = None, None
        config = {"idp_metadata_url": url}
        if info is not None:
            config.update(idp_metadata=xml, idp_entity_id=info.entity_id, idp_sso_url=info.sso_url)
        for name, default in DEFAULT_ATTRIBUTES.items():
            value = (data.get(name) or "").strip() or default
            if len(value) > 255:
                raise UserError("An attribute name is at most 255 characters.", name)
            config[name] = value
        secret = None
        if old.get("sp_cert") and conn.secret_encrypted:
            config["sp_cert"] = old["sp_cert"]
        else:
            key, cert = proto.generate_keypair(f"tenantry-sso-{conn.id}")
            config["sp_cert"] = cert
            secret = key
        return config, secret

    def ready(self, conn) -> str | None:
        cfg = conn.config or {}
        if not cfg.get("idp_metadata") or not conn.secret_encrypted:
            return "Add the identity provider's metadata and save first."
        return None

    # ---------------------------------------------------------------- sign-in
    def start_login(self, conn, pending: dict) -> str:
        """Send an AuthnRequest; remember its id bound to this browser."""
        if self.ready(conn):
            raise SsoRefused("This SAML connection is not set up yet.", "not_ready")
        # The flow starts on the apex, outside any organization: the request
        # row is written in the connection's own organization.
        with tenant_context(conn.organization_id):
            org = _org(conn)
            nonce = secrets.token_urlsafe(32)
            # RelayState is the flow's state: the ACS passes it on to the
            # shared callback, which finds this flow by it in the apex cookie.
            state = secrets.token_urlsafe(24)
            try:
                request_id, url = proto.authn_request(sp_settings(org, conn), conn.config["idp_metadata"], state)
            except (UserError, ValueError) as e:
                raise SsoRefused(
                    getattr(e, "message", "The identity provider's metadata cannot be used."), "config"
                ) from None
            db.session.add(
                SamlRequest(
                    organization_id=org.id,
                    id=request_id,
                    connection_id=conn.id,
                    browser=_browser_hash(nonce),
                    next_url="/",
                    purpose="test" if pending.get("m") == "test" else "sign_in",
                    expires_at=utcnow() + REQUEST_TTL,
                )
            )
            db.session.flush()
        pending["state"] = state
        pending["saml_request_id"] = request_id
        pending["saml_browser"] = nonce
        return url

    def finish_login(self, conn, pending: dict, request) -> Identity:
        """Hand over the identity the ACS accepted for this browser's request, once."""
        rid, nonce = pending.get("saml_request_id"), pending.get("saml_browser")
        if not rid or not nonce:
            raise SsoRefused("This sign-in was not started in this browser.", "in_response_to")
        row = db.session.execute(
            select(SamlRequest).where(SamlRequest.id == rid, SamlRequest.connection_id == conn.id).with_for_update()
        ).scalar_one_or_none()
        if row is None or not secrets.compare_digest(row.browser, _browser_hash(nonce)):
            raise SsoRefused("This sign-in was not started in this browser.", "in_response_to")
        if row.used_at is not None:
            raise SsoRefused("This sign-in was already used.", "replayed")
        if row.answered_at is None or row.identity is None:
            raise SsoRefused("The identity provider has not answered this sign-in.", "no_answer")
        if row.expires_at <= utcnow():
            raise SsoRefused("This sign-in took too long; start again.", "expired")
        row.used_at = utcnow()
        db.session.flush()
        return identity_of(conn, row.identity)


def accept_response(org, conn, saml_response: str) -> SamlRequest:
    """The ACS's work: check ``saml_response`` for ``conn`` and keep its
    facts in the request row it answers. Raises ``proto.Refused`` (nothing
    stored) for any response that fails a check, including a replayed
    assertion (its id already seen) or a second answer to one request."""
    now = utcnow()
    rows = db.session.execute(
        select(SamlRequest).where(SamlRequest.connection_id == conn.id, SamlRequest.expires_at > now)
    ).scalars()
    outstanding = {r.id: r.next_url for r in rows}
    facts = proto.read_response(sp_settings(org, conn), conn.config["idp_metadata"], saml_response, outstanding)
    seen = db.session.execute(
        select(SamlAssertionSeen).where(SamlAssertionSeen.assertion_id == facts.assertion_id)
    ).scalar_one_or_none()
    if seen is not None:
        raise proto.Refused("replayed", "This assertion was already used.")
    row = db.session.execute(
        select(SamlRequest).where(SamlRequest.id == facts.in_response_to).with_for_update()
    ).scalar_one()
    if row.answered_at is not None:
        raise proto.Refused("replayed", "This sign-in was already answered.")
    # Remembered until the assertion is no longer valid (+ skew): past
    # then it is refused as expired anyway.
    db.session.add(
        SamlAssertionSeen(
            organization_id=org.id,
            assertion_id=facts.assertion_id,
            expires_at=max(facts.not_on_or_after, now + timedelta(minutes=1)),
        )
    )
    row.answered_at = now
    row.identity = {"name_id": facts.name_id, "issuer": facts.issuer, "attributes": facts.attributes}
    db.session.flush()
    # Which assertion answered which request, for the log (the sign-in
    # itself is recorded by the shared completion, or the test's result).
    audit.record(
        "sso.saml_assertion_accepted",
        target=("sso_connection", str(conn.id), conn.name),
        metadata={
            "assertion_id": facts.assertion_id,
            "in_response_to": facts.in_response_to,
            "name_id": facts.name_id,
            "purpose": row.purpose,
        },
        actor=None,
    )
    return row


def purge_expired(now=None) -> tuple[int, int]:
    """Delete request rows and seen assertion ids past their end (in the
    current organization's scope). Returns the counts."""
    now = now or utcnow()
    a = db.session.execute(delete(SamlRequest).where(SamlRequest.expires_at < now - timedelta(days=1))).rowcount
    b = db.session.execute(delete(SamlAssertionSeen).where(SamlAssertionSeen.expires_at < now)).rowcount
    return a, b


registry.register(SamlProtocol())

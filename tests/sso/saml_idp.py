"""A real SAML identity provider for the tests: pysaml2's own IdP (``saml2.server.Server``)
behind a small werkzeug server on loopback, with a key and certificate generated for the run.

* ``GET /metadata``: its metadata (entity id, HTTP-Redirect sign-on endpoint,
  signing certificate), what an admin pastes or points the portal at.
* ``GET /sso?SAMLRequest=…&RelayState=…``: reads the AuthnRequest (HTTP-Redirect
  binding) and shows one "Sign in as …" button per known user.
* ``POST /sso/continue``: answers with a page whose form POSTs a signed
  ``SAMLResponse`` to the SP's ACS URL (the HTTP-POST binding; a button a
  browser test clicks, and a tiny script that submits it at once).

``IdentityProvider.response(...)`` makes the same signed response for a
test that posts it itself, and ``resign`` / ``sign_with`` let the hostile
tests change an assertion and sign it again with real XML signatures
(xmlsec1 through pysaml2's ``sigver``).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
import threading
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.sso.saml_protocol import BINDING_POST, BINDING_REDIRECT, generate_keypair, xmlsec_binary
from tests.conftest import free_port

PAGE_HEAD = '<!doctype html><html lang="en"><head><title>Test IdP</title></head><body><main>'
SIGN_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"


@dataclass
class IdpUser:
    email: str
    name: str
    groups: list[str] = field(default_factory=list)


class IdentityProvider:
    """pysaml2's IdP with its own key pair, on ``127.0.0.1:<port>``."""

    def __init__(self, port: int | None = None, *, keypair: tuple[str, str] | None = None, entity_id=None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.entity_id = entity_id or f"{self.base}/idp"
        self.dir = tempfile.mkdtemp(prefix="tenantry-test-idp-")
        key, cert = keypair or generate_keypair("Tenantry test IdP")
        self.key_pem, self.cert_pem = key, cert
        self.key_file = os.path.join(self.dir, "idp.key")
        self.cert_file = os.path.join(self.dir, "idp.crt")
        with open(self.key_file, "w") as f:
            f.write(key)
        with open(self.cert_file, "w") as f:
            f.write(cert)
        self.users: dict[str, IdpUser] = {}
        self.server = self._server()
        self._http = None

    def _server(self):
        from saml2 import config as saml_config
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

        conf = saml_config.IdPConfig()
        conf.load(
            {
                "entityid": self.entity_id,
                "key_file": self.key_file,
                "cert_file": self.cert_file,
                "xmlsec_binary": xmlsec_binary(),
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": [(f"{self.base}/sso", BINDING_REDIRECT)]},
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": None}},
                        "want_authn_requests_signed": False,
                    }
                },
            }
        )
        return _PlainServer(config=conf)

    # ------------------------------------------------------------ metadata
    def metadata(self) -> str:
        from saml2.metadata import create_metadata_string

        out = create_metadata_string(None, config=self.server.config, valid=None, sign=False)
        return out.decode() if isinstance(out, bytes) else out

    # ------------------------------------------------------------ responses
    def response_xml(
        self,
        user: IdpUser,
        *,
        in_response_to: str,
        acs_url: str,
        audience: str,
        sign_assertion: bool = True,
        sign_response: bool = False,
        sign_alg: str = SIGN_ALG,
        digest_alg: str = DIGEST_ALG,
    ) -> str:
        """A SAML Response (XML text) for ``user``, as this IdP signs it."""
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

        identity = {"email": [user.email], "displayName": [user.name], "groups": list(user.groups)}
        resp = self.server.create_authn_response(
            identity,
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=user.email),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
        )
        return str(resp)

    def response(self, user: IdpUser, **kw) -> str:
        """``response_xml`` base64-encoded, as the HTTP-POST binding carries it."""
        return encode(self.response_xml(user, **kw))

    def sign_assertion_xml(self, response_xml: str, edit=None) -> str:
        """Parse ``response_xml``, let ``edit(response)`` change the pysaml2
        objects, then sign its assertion afresh with this IdP's key (xmlsec1):
        a real signature over the changed assertion."""
        from saml2 import samlp
        from saml2.s_utils import sid  # noqa: F401
        from saml2.sigver import pre_signature_part

        resp = samlp.response_from_string(response_xml)
        assertion = resp.assertion[0] if isinstance(resp.assertion, list) else resp.assertion
        assertion.signature = None
        if edit is not None:
            edit(resp, assertion)
        assertion.signature = pre_signature_part(
            assertion.id, self.server.sec.my_cert, 1, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG
        )
        return self.server.sec.sign_statement(
            str(resp), "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", node_id=assertion.id
        )

    # ------------------------------------------------------------ HTTP
    def add_user(self, email: str, name: str, groups=()) -> IdpUser:
        self.users[email] = IdpUser(email, name, list(groups))
        return self.users[email]

    def __call__(self, environ, start_response):
        req = Request(environ)
        if req.path == "/metadata":
            resp = Response(self.metadata(), content_type="application/samlmetadata+xml")
        elif req.path == "/sso" and req.method == "GET":
            resp = self._login_page(req)
        elif req.path == "/sso/continue" and req.method == "POST":
            resp = self._continue(req)
        else:
            resp = Response("not found", status=404)
        return resp(environ, start_response)

    def _login_page(self, req) -> Response:
        parsed = self.server.parse_authn_request(req.args["SAMLRequest"], BINDING_REDIRECT)
        ar = parsed.message
        rows = "".join(
            f'<button name="user" value="{html.escape(u.email)}">Sign in as {html.escape(u.email)}</button>'
            for u in self.users.values()
        )
        body = (
            f"{PAGE_HEAD}<h1>Test identity provider</h1>"
            '<form method="post" action="/sso/continue">'
            f'<input type="hidden" name="request_id" value="{html.escape(ar.id)}">'
            f'<input type="hidden" name="acs" value="{html.escape(ar.assertion_consumer_service_url or "")}">'
            f'<input type="hidden" name="audience" value="{html.escape(ar.issuer.text)}">'
            f'<input type="hidden" name="relay" value="{html.escape(req.args.get("RelayState", ""))}">'
            f"{rows}</form></main></body></html>"
        )
        return Response(body, content_type="text/html")

    def _continue(self, req) -> Response:
        user = self.users[req.form["user"]]
        acs = req.form["acs"]
        saml = self.response(user, in_response_to=req.form["request_id"], acs_url=acs, audience=req.form["audience"])
        body = (
            f"{PAGE_HEAD}<h1>Signed in at the test IdP</h1>"
            f'<form id="f" method="post" action="{html.escape(acs)}">'
            f'<input type="hidden" name="SAMLResponse" value="{saml}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(req.form["relay"])}">'
            '<button id="go">Continue to the service</button></form></main></body></html>'
        )
        return Response(body, content_type="text/html")

    def start(self) -> IdentityProvider:
        self._http = make_server("127.0.0.1", self.port, self, threaded=True)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def _plain_server_class():
    from saml2.server import Server

    class PlainServer(Server):
        """An IdP that never encrypts: it needs no SP metadata (responses
        name their audience and destination explicitly, which lets a test
        aim one at the wrong audience)."""

        def has_encrypt_cert_in_metadata(self, sp_entity_id):
            return False

    return PlainServer


def _PlainServer(config):
    return _plain_server_class()(config=config)


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


__all__ = ["BINDING_POST", "IdentityProvider", "IdpUser", "encode"]

"""Every hostile OpenID Connect answer is refused, over real HTTP: wrong
``state`` at the real provider; for the ID token itself (wrong ``iss``,
``aud``, ``nonce``, expired, ``alg: none``, another key) a local provider
that serves discovery, a JWKS and a token endpoint returning the token the
test signed with a key its JWKS publishes."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import UserSession
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from tests.conftest import APEX
from tests.sso.conftest import make_connection, run_sign_in
from tests.sso.oidc_peer import CLIENT_ID

KEY = RSAKey.generate_key(2048, parameters={"kid": "good"}, private=True)
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "good"}, private=True)


class HostileProvider:
    """Discovery, JWKS and token endpoints on loopback; the token endpoint
    answers with ``make_token(nonce)``'s ID token."""

    def __init__(self):
        self.make_token = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, data, status=200):
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": provider.issuer,
                            "authorization_endpoint": provider.issuer + "/auth",
                            "token_endpoint": provider.issuer + "/token",
                            "jwks_uri": provider.issuer + "/jwks",
                        }
                    )
                elif self.path == "/jwks":
                    self._json({"keys": [KEY.as_dict(private=False)]})
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                assert form.get("code_verifier"), "PKCE verifier sent"
                self._json({"access_token": "at", "token_type": "Bearer", "id_token": provider.make_token()})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def hostile(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    from app.sso import oidc

    oidc._cache.clear()
    p = HostileProvider().start()
    yield p
    p.stop()


def _claims(provider, nonce, **over):
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "hostile-1",
        "email": "alice@acme.test",
        "name": "Alice",
        "nonce": nonce,
        "iat": now,
        "exp": now + 300,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims, key=KEY, alg="RS256"):
    return jwt.encode({"alg": alg, "kid": "good"}, claims, key)


def _unsigned(claims):
    import base64

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _sign_in_with(client, provider, org, token_for):
    """Start a sign-in, capture the nonce the app sent, answer the callback
    with a code; the token endpoint hands out ``token_for(nonce)``."""
    r = client.get(f"http://{APEX}/sso/start/{org.id}")
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    nonce, state = q["nonce"][0], q["state"][0]
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"][0]
    provider.make_token = lambda: token_for(nonce)
    return client.get(f"http://{APEX}/sso/callback/oidc?code=c0de&state={state}")


def _no_session(org):
    with all_organizations(reason="test"):
        assert db.session.execute(select(UserSession)).first() is None or all(
            s.user.email != "alice@acme.test" for s in db.session.execute(select(UserSession)).scalars()
        )


def _refusals(org):
    with tenant_context(org.id):
        return list(
            db.session.execute(select(AuditEvent.meta).where(AuditEvent.action == "sso.sign_in_refused")).scalars()
        )


def test_a_well_formed_token_signs_in(app, client, sso_org, hostile):
    """The control: the same provider with a correct token signs in."""
    make_connection(sso_org, hostile)
    r = _sign_in_with(client, hostile, sso_org, lambda n: _sign(_claims(hostile, n)))
    assert r.status_code == 302, r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("wrong_iss", "iss"),
        ("wrong_aud", "aud"),
        ("wrong_nonce", "nonce"),
        ("expired", "expired"),
        ("alg_none", "signature"),
        ("other_key", "signature"),
        ("hs256_with_public_key", "signature"),
        ("no_sub", "sub"),
    ],
)
def test_a_hostile_id_token_is_refused(app, client, sso_org, hostile, case, expect):
    make_connection(sso_org, hostile)
    makers = {
        "wrong_iss": lambda n: _sign(_claims(hostile, n, iss="http://evil.example")),
        "wrong_aud": lambda n: _sign(_claims(hostile, n, aud="someone-else")),
        "wrong_nonce": lambda n: _sign(_claims(hostile, "not-" + n)),
        "expired": lambda n: _sign(_claims(hostile, n, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "alg_none": lambda n: _unsigned(_claims(hostile, n)),
        "other_key": lambda n: _sign(_claims(hostile, n), key=OTHER_KEY),
        "hs256_with_public_key": lambda n: _hs256_confusion(_claims(hostile, n)),
        "no_sub": lambda n: _sign(_claims(hostile, n, sub=None)),
    }
    r = _sign_in_with(client, hostile, sso_org, makers[case])
    assert r.status_code == 403
    assert "refused" in r.get_data(as_text=True).lower() or "not valid" in r.get_data(as_text=True)
    _no_session(sso_org)
    reasons = [m.get("reason", "") for m in _refusals(sso_org)]
    assert reasons and expect in reasons[-1].lower(), reasons


def _hs256_confusion(claims):
    """The classic key-confusion forgery: HMAC keyed with the RSA public key's PEM."""
    import base64
    import hashlib
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "good"}).encode())
    payload = b64(json.dumps(claims).encode())
    pem = KEY.as_pem(private=False)
    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def test_a_callback_with_a_wrong_state_is_refused_at_the_real_provider(app, client, sso_org, oidc_peer):
    """The real provider redirects back with the state it was given; a
    tampered state matches no sign-in this browser started: 400, nobody in."""
    make_connection(sso_org, oidc_peer)
    r = client.get(f"http://{APEX}/sso/start/{sso_org.id}")
    back = oidc_peer.sign_in(r.headers["Location"], "alice", stop_at=f"http://{APEX}/")
    parts = urlsplit(back)
    q = parse_qs(parts.query)
    tampered = f"http://{APEX}{parts.path}?code={q['code'][0]}&state=forged-{q['state'][0]}"
    r = client.get(tampered)
    assert r.status_code == 400
    _no_session(sso_org)


def test_a_callback_in_another_browser_is_refused(app, client, sso_org, oidc_peer):
    """The state lives in the browser that started the sign-in: the same
    callback URL opened elsewhere (a stolen link) signs nobody in."""
    make_connection(sso_org, oidc_peer)
    r = client.get(f"http://{APEX}/sso/start/{sso_org.id}")
    back = oidc_peer.sign_in(r.headers["Location"], "alice", stop_at=f"http://{APEX}/")
    other = app.test_client()
    assert other.get(back).status_code == 400
    _no_session(sso_org)


def test_a_callback_is_used_once(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer)
    r = run_sign_in(client, oidc_peer, f"http://{APEX}/sso/start/{sso_org.id}", "alice")
    assert r.status_code == 302
    assert client.get(r.request.url).status_code == 400

"""OpenID Connect (authorization code flow with PKCE), registered in ``app.sso.registry``.

* **Discovery**: the issuer's ``/.well-known/openid-configuration`` gives the
  endpoints and the JWKS; the document's ``issuer`` must equal the one
  configured (OpenID Connect Discovery §4.3), so a document cannot speak for
  another issuer. Kept in memory for five minutes per issuer.
* **Start**: Authlib builds the authorization request with ``state`` (ties
  the callback to this browser), ``nonce`` (ties the ID token to this
  request) and a PKCE S256 challenge (ties the code to this request).
* **Finish**: the ``code`` is exchanged at the token endpoint (client secret
  by HTTP Basic, the PKCE verifier); the ID token's signature is checked
  against the issuer's JWKS with an explicit list of asymmetric algorithms
  (``alg: none`` and HMAC are refused), then ``iss``, ``aud`` (our client
  id), ``nonce``, ``exp`` and ``sub``. Userinfo, when offered, adds claims
  (its ``sub`` must be the ID token's).

Every call to the provider goes through the webhooks' SSRF guard (the
issuer is typed by a customer): no private or loopback address (loopback
only in development/test with ``WEBHOOKS_ALLOW_LOOPBACK``), no redirects,
timeouts.
"""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import urlsplit

from authlib.integrations.requests_client import OAuth2Session
from flask import url_for
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.errors import UserError
from app.sso import registry
from app.sso.registry import Field, Identity, SsoRefused
from app.web import hosts
from app.webhooks import guard

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
DISCOVERY_TTL = 300
TIMEOUT = 5.0
LEEWAY = 30  # seconds of clock skew allowed on exp / iat
DEFAULT_SCOPES = "openid email profile"

_cache: dict[str, tuple[float, dict]] = {}
_cache_lock = threading.Lock()


def redirect_uri() -> str:
    """Our one redirect URI for every organization: the apex callback (the
    flow's state names the organization and connection)."""
    return hosts.apex_url(url_for("sso_flow.callback", protocol="oidc"))


def _check_issuer_url(issuer: str, field: str = "issuer") -> str:
    issuer = (issuer or "").strip().rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise UserError("Enter the issuer URL, like https://company.okta.com.", field)
    if parts.scheme == "http" and not guard.http_allowed():
        raise UserError("Use an https:// issuer URL.", field)
    try:
        guard.check_url(issuer, field=field)
    except UserError as e:
        raise UserError(e.message.replace("Webhooks cannot be sent to", "We cannot reach"), field) from None
    return issuer


def _get_json(url: str, **kwargs) -> dict:
    guard.check_url(url)
    resp = guard.session(TIMEOUT).get(url, headers={"Accept": "application/json"}, **kwargs)
    resp.raise_for_status()
    data = resp.json()
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def discover(issuer: str, fresh: bool = False) -> dict:
    """The issuer's discovery document (cached five minutes). Raises
    ``SsoRefused`` when it cannot be read or names another issuer."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(issuer)
    if hit and not fresh and now - hit[0] < DISCOVERY_TTL:
        return hit[1]
    try:
        doc = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    except Exception as e:  # any network, HTTP or JSON failure: the reason is shown, never a 500
        raise SsoRefused(f"Could not read the provider's discovery document: {_short(e)}", "discovery") from None
    if doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise SsoRefused("The provider's discovery document names another issuer.", "discovery")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(key), str):
            raise SsoRefused(f"The provider's discovery document has no {key}.", "discovery")
    with _cache_lock:
        _cache[issuer] = (now, doc)
    return doc


def _short(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "…"


class OidcProtocol:
    key = "oidc"
    label = "OpenID Connect"
    config_fields = (
        Field(
            "issuer",
            "Issuer URL",
            "The provider's issuer, e.g. https://company.okta.com or https://login.microsoftonline.com/<tenant id>/v2.0.",
        ),
        Field("client_id", "Client ID", "The application's client ID at your provider."),
        Field("client_secret", "Client secret", "Stored encrypted; leave empty to keep the one saved.", secret=True),
        Field(
            "scopes",
            "Scopes",
            f"Space-separated; default “{DEFAULT_SCOPES}” (add “groups” if your provider needs it).",
            required=False,
        ),
        Field(
            "groups_claim",
            "Groups claim",
            "The claim that lists the person's groups; default “groups”.",
            required=False,
        ),
    )

    # ------------------------------------------------------------------ portal
    def our_values(self, conn) -> list[tuple[str, str]]:
        return [
            ("Sign-in redirect URI", redirect_uri()),
            ("Grant type", "Authorization code (with PKCE)"),
            ("Scopes to allow", (conn.config or {}).get("scopes") or DEFAULT_SCOPES),
        ]

    def clean_config(self, conn, data: dict) -> tuple[dict, str | None]:
        """Validate what the portal's form sent: the issuer is reachable and
        its discovery document is valid (``UserError`` beside the field)."""
        issuer = _check_issuer_url(data.get("issuer") or "")
        try:
            discover(issuer, fresh=True)
        except SsoRefused as e:
            raise UserError(e.reason, "issuer") from None
        client_id = (data.get("client_id") or "").strip()
        if not client_id or len(client_id) > 255:
            raise UserError("Enter the client ID your provider shows for the application.", "client_id")
        secret = (data.get("client_secret") or "").strip() or None
        if secret is None and not conn.secret_encrypted:
            raise UserError("Enter the client secret your provider shows for the application.", "client_secret")
        if secret is not None and len(secret) > 1000:
            raise UserError("That is too long for a client secret.", "client_secret")
        scopes = " ".join((data.get("scopes") or DEFAULT_SCOPES).split())
        if "openid" not in scopes.split():
            raise UserError("Include the “openid” scope.", "scopes")
        if len(scopes) > 500:
            raise UserError("Use at most 500 characters.", "scopes")
        groups_claim = (data.get("groups_claim") or "groups").strip()
        if (
            len(groups_claim) > 100
            or not groups_claim.replace("_", "")
            .replace("-", "")
            .replace(".", "")
            .replace(":", "")
            .replace("/", "")
            .isalnum()
        ):
            raise UserError("Enter a claim name (letters, digits, _ - . : /).", "groups_claim")
        return {"issuer": issuer, "client_id": client_id, "scopes": scopes, "groups_claim": groups_claim}, secret

    def ready(self, conn) -> str | None:
        cfg = conn.config or {}
        if not cfg.get("issuer") or not cfg.get("client_id") or not conn.secret_encrypted:
            return "Enter the issuer, client ID and client secret, and save, before testing."
        return None

    # ------------------------------------------------------------------ flow
    def _client(self, conn, secret: str | None = None) -> OAuth2Session:
        cfg = conn.config or {}
        return OAuth2Session(
            client_id=cfg.get("client_id"),
            client_secret=secret,
            scope=cfg.get("scopes") or DEFAULT_SCOPES,
            redirect_uri=redirect_uri(),
            code_challenge_method="S256",
        )

    def start_login(self, conn, pending: dict) -> str:
        doc = discover(conn.config["issuer"])
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        extra = {"nonce": nonce}
        if pending.get("login_hint"):
            extra["login_hint"] = pending["login_hint"]
        url, state = self._client(conn).create_authorization_url(
            doc["authorization_endpoint"], state=state, code_verifier=verifier, **extra
        )
        pending.update(state=state, nonce=nonce, verifier=verifier)
        return url

    def finish_login(self, conn, pending: dict, request) -> Identity:
        from app.sso import services  # deferred: services imports the registry this module fills

        args = request.args
        if args.get("state") != pending.get("state"):
            raise SsoRefused("The sign-in's state does not match this browser's.", "state")
        if args.get("error"):
            raise SsoRefused(
                f"The provider refused: {args.get('error')} {args.get('error_description') or ''}".strip(),
                "provider_error",
            )
        code = args.get("code")
        if not code:
            raise SsoRefused("The provider sent no authorization code.", "no_code")
        cfg = conn.config or {}
        issuer = cfg["issuer"]
        doc = discover(issuer)
        try:
            guard.check_url(doc["token_endpoint"])
            resp = guard.session(TIMEOUT).post(
                doc["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri(),
                    "code_verifier": pending.get("verifier"),
                },
                auth=(cfg["client_id"], services.secret_of(conn) or ""),
                headers={"Accept": "application/json"},
            )
            tokens = resp.json()
        except Exception as e:
            raise SsoRefused(f"The token exchange failed: {_short(e)}", "token") from None
        if resp.status_code != 200 or not isinstance(tokens, dict):
            err = tokens.get("error") if isinstance(tokens, dict) else None
            raise SsoRefused(f"The provider refused the token exchange ({err or resp.status_code}).", "token")
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused("The provider sent no ID token.", "token")
        claims = self.verify_id_token(id_token, doc, cfg["client_id"], pending.get("nonce"))
        extra = {}
        if doc.get("userinfo_endpoint") and tokens.get("access_token"):
            try:
                extra = self._userinfo(doc, tokens["access_token"])
            except Exception:
                extra = {}  # optional: the ID token already names the person
            if extra and extra.get("sub") != claims.get("sub"):
                raise SsoRefused("The provider's userinfo names another subject.", "userinfo")
        merged = {**extra, **claims}
        return self.identity(merged, cfg.get("groups_claim") or "groups")

    def _userinfo(self, doc: dict, access_token: str) -> dict:
        guard.check_url(doc["userinfo_endpoint"])
        resp = guard.session(TIMEOUT).get(
            doc["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
        if resp.status_code != 200:
            return {}
        data = resp.json()
        return data if isinstance(data, dict) else {}

    @staticmethod
    def verify_id_token(id_token: str, doc: dict, client_id: str, nonce: str | None) -> dict:
        """The ID token's claims, once its signature (issuer's JWKS, asymmetric
        algorithms only) and its iss, aud, nonce, exp and sub are right;
        ``SsoRefused`` naming the first thing wrong otherwise."""
        try:
            keys = KeySet.import_key_set(_get_json(doc["jwks_uri"]))
        except Exception as e:
            raise SsoRefused(f"Could not read the provider's signing keys: {_short(e)}", "jwks") from None
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except JoseError as e:
            raise SsoRefused(f"The ID token's signature is not valid ({e.error}).", "signature") from None
        except Exception:
            raise SsoRefused("The ID token is malformed or signed with a refused algorithm.", "signature") from None
        claims = token.claims
        checks = jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": doc["issuer"]},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce or ""},
        )
        try:
            checks.validate(claims)
        except JoseError as e:
            raise SsoRefused(f"The ID token was refused: {e.description or e.error}.", e.error or "claims") from None
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
            raise SsoRefused("The ID token is meant for several clients but not authorised for ours.", "azp")
        return claims

    @staticmethod
    def identity(claims: dict, groups_claim: str) -> Identity:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SsoRefused("The provider sent no e-mail address (allow the “email” scope).", "email")
        if claims.get("email_verified") is False:
            raise SsoRefused("The provider says this e-mail address is not verified.", "email")
        groups = claims.get(groups_claim) or ()
        if isinstance(groups, str):
            groups = [groups]
        groups = tuple(str(g) for g in groups if isinstance(g, (str, int)))[:200]
        name = claims.get("name") or " ".join(
            p for p in (claims.get("given_name"), claims.get("family_name")) if isinstance(p, str)
        )
        shown = {k: v for k, v in claims.items() if k not in ("nonce", "at_hash", "c_hash", "sid")}
        return Identity(
            subject=str(claims["sub"])[:255],
            email=email.strip().lower(),
            name=name if isinstance(name, str) else "",
            groups=groups,
            attributes=shown,
        )


registry.register(OidcProtocol())

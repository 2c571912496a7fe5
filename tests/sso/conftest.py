"""SSO fixtures: the real OIDC provider, an enterprise organization with a
verified domain, and helpers to drive a sign-in end to end."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urljoin

import pytest

from tests.conftest import APEX, csrf_token, url
from tests.sso.oidc_peer import CLIENT_ID, CLIENT_SECRET, OidcPeer

CALLBACK = f"http://{APEX}/sso/callback/oidc"


@pytest.fixture(scope="session")
def _oidc_peer():
    peer = OidcPeer([CALLBACK]).start()
    yield peer
    peer.stop()


@pytest.fixture
def oidc_peer(app, _oidc_peer, monkeypatch):
    """The provider, reachable by the app (loopback allowed as in development)."""
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    from app.sso import oidc

    oidc._cache.clear()
    return _oidc_peer


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):
    """Requests run in their own app context and session, as in production."""


from tests.fresh_client import fresh_requests  # noqa: E402,F401  (fixture)


def verify_domain(org, name: str):
    from app.domains.models import Domain
    from app.extensions import db
    from app.scoping import tenant_context
    from app.util import utcnow

    with tenant_context(org.id):
        db.session.add(Domain(name=name, token="t" * 32, status="verified", verified_at=utcnow()))
        db.session.commit()


def make_connection(org, peer, status: str = "enabled", default_role: str = "member", name: str = "Acme IdP"):
    """An OIDC connection of ``org`` at ``peer`` (settings written directly)."""
    from app import crypto
    from app.extensions import db
    from app.scoping import tenant_context
    from app.sso.models import SsoConnection

    with tenant_context(org.id):
        conn = SsoConnection(
            protocol="oidc",
            provider="generic",
            name=name,
            status=status,
            config={
                "issuer": peer.issuer,
                "client_id": CLIENT_ID,
                "scopes": "openid email profile groups",
                "groups_claim": "groups",
                "default_role": default_role,
            },
            secret_encrypted=crypto.encrypt(CLIENT_SECRET),
            last_test={
                "ok": True,
                "identity": {
                    "subject": "s",
                    "email": "alice@acme.test",
                    "name": "Alice",
                    "groups": [],
                    "attributes": {},
                },
            }
            if status != "draft"
            else None,
        )
        db.session.add(conn)
        db.session.commit()
        # Plain values: a committed tenant row cannot reload outside its organization.
        return SimpleNamespace(id=conn.id, name=conn.name, version=conn.version, status=conn.status)


@pytest.fixture
def sso_org(world):
    """Acme on the enterprise plan, acme.test verified."""
    from app.extensions import db
    from app.scoping import all_organizations

    with all_organizations(reason="test: enterprise plan"):
        world.acme.plan_key = "enterprise"
        db.session.commit()
    verify_domain(world.acme, "acme.test")
    return world.acme


def run_sign_in(client, peer, start_url: str, login: str):
    """Start at ``start_url`` (on the apex), sign in at the provider as ``login``,
    deliver the callback to the app; returns the callback's response."""
    r = client.get(start_url)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    back = peer.sign_in(r.headers["Location"], login, stop_at=f"http://{APEX}/")
    return client.get(back)


def post_form(client, slug, path, data=None):
    payload = dict(data or {})
    payload["csrf_token"] = csrf_token(client, slug)
    return client.post(url(slug, path), data=payload)


__all__ = ["urljoin"]


def continued(response) -> str:
    """Where a response sends the browser: its redirect, or the page that
    moves on by itself (``auth/continue.html``: a form's answer that leaves
    for the identity provider)."""
    import html
    import re

    if response.status_code in (302, 303):
        return response.headers["Location"]
    assert response.status_code == 200, response.status_code
    found = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', response.get_data(as_text=True))
    assert found, "no redirect and no continue page"
    return html.unescape(found.group(1))

"""Demo data: Globex (trialling SSO) has two draft connections, once each —
an Okta OpenID Connect one and an Entra ID SAML one whose key is made (our
SP metadata downloads) and whose IdP metadata is still to come — that its
owner can open in the portal; nobody's sign-in changes."""

from __future__ import annotations

from sqlalchemy import delete, select

from app.demo import load_demo
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.sso.models import SsoConnection
from app.tenancy.models import Organization
from tests.conftest import sign_in, url


def _globex():
    from app.auth.models import User

    with all_organizations(reason="test"):
        globex = db.session.execute(select(Organization).where(Organization.slug == "globex")).scalar_one()
        owner = db.session.execute(select(User).where(User.email == "owner@globex.test")).scalar_one()
    return globex, owner


def _connections(globex) -> dict:
    """Globex's connections by protocol, read inside its scope (plain values)."""
    from types import SimpleNamespace

    with tenant_context(globex.id):
        db.session.expire_all()
        return {
            c.protocol: SimpleNamespace(
                id=c.id,
                status=c.status,
                provider=c.provider,
                config=dict(c.config or {}),
                secret_encrypted=c.secret_encrypted,
            )
            for c in db.session.execute(select(SsoConnection)).scalars()
        }


def test_demo_has_a_draft_oidc_and_a_draft_saml_connection_in_globex(app):
    assert "2 SSO connections" in load_demo()
    assert "Demo data: already loaded" in load_demo()  # idempotent
    globex, owner = _globex()
    conns = _connections(globex)
    assert set(conns) == {"oidc", "saml"}
    assert all(c.status == "draft" for c in conns.values())
    oidc, saml = conns["oidc"], conns["saml"]
    assert oidc.provider == "okta" and saml.provider == "entra"
    assert saml.config["sp_cert"] and saml.secret_encrypted and not saml.config.get("idp_metadata")
    c = sign_in(app, owner, "globex")
    page = c.get(url("globex", f"/settings/sso/{oidc.id}")).get_data(as_text=True)
    assert "Globex Okta (example)" in page and "/sso/callback/oidc" in page
    page = c.get(url("globex", f"/settings/sso/{saml.id}")).get_data(as_text=True)
    assert "Globex Entra ID SAML (example)" in page and f"/sso/saml/{saml.id}/acs" in page
    assert "Add the identity provider&#39;s metadata" in page or "Add the identity provider's metadata" in page
    r = c.get(url("globex", f"/settings/sso/{saml.id}/saml-metadata.xml"))
    assert r.status_code == 200 and b"WantAssertionsSigned" in r.data


def test_a_demo_loaded_before_saml_gets_its_saml_connection_once(app):
    load_demo()
    globex, _ = _globex()
    with tenant_context(globex.id):
        db.session.execute(delete(SsoConnection).where(SsoConnection.protocol == "saml"))
        db.session.commit()
    assert "1 SSO connection created" in load_demo()
    assert set(_connections(globex)) == {"oidc", "saml"}

"""Demo data: Globex (trialling SSO) has one draft Okta connection, once, that
its owner can open in the portal; nobody's sign-in changes."""

from __future__ import annotations

from sqlalchemy import select

from app.demo import load_demo
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.sso.models import SsoConnection
from app.tenancy.models import Organization
from tests.conftest import sign_in, url


def test_demo_has_one_draft_sso_connection_in_globex(app):
    assert "1 SSO connection" in load_demo()
    assert "Demo data: already loaded" in load_demo()  # idempotent
    with all_organizations(reason="test"):
        globex = db.session.execute(select(Organization).where(Organization.slug == "globex")).scalar_one()
        from app.auth.models import User

        owner = db.session.execute(select(User).where(User.email == "owner@globex.test")).scalar_one()
    with tenant_context(globex.id):
        [conn] = db.session.execute(select(SsoConnection)).scalars().all()
        assert conn.status == "draft" and conn.provider == "okta"
        cid = conn.id
    c = sign_in(app, owner, "globex")
    page = c.get(url("globex", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert "Globex Okta (example)" in page and "/sso/callback/oidc" in page

"""Demo data: acme (Pro) is branded (colour, logo, time zone), once."""

from __future__ import annotations

from sqlalchemy import select

from app.demo import DEMO_BRAND_COLOUR, load_demo
from app.extensions import db
from app.scoping import tenant_context
from app.settings.models import OrganizationLogo
from app.settings.services import check_logo, contrast_with_white
from app.tenancy.models import Organization


def test_demo_brands_acme_once_with_an_aa_colour_and_a_valid_logo(app):
    load_demo()
    assert "Demo data: already loaded" in load_demo()  # idempotent
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    assert acme.settings["brand_color"] == DEMO_BRAND_COLOUR and contrast_with_white(DEMO_BRAND_COLOUR) >= 4.5
    assert acme.settings["timezone"] == "Europe/Paris"
    with tenant_context(acme.id):
        [logo] = db.session.execute(select(OrganizationLogo)).scalars().all()
    assert check_logo(logo.data) == ("image/png", 96, 48)
    assert acme.settings["logo"]["sha256"] == logo.sha256


def test_demo_globex_requires_2fa_with_a_grace_period_its_members_see(app, login):
    from datetime import timedelta

    from app.auth.models import User
    from app.tenancy import policy
    from app.util import utcnow
    from tests.conftest import url

    load_demo()
    globex = db.session.execute(select(Organization).where(Organization.slug == "globex")).scalar_one()
    deadline = policy.for_org(globex).two_factor_deadline()
    assert timedelta(days=29) < deadline - utcnow() <= timedelta(days=30)
    member = db.session.execute(select(User).where(User.email == "member@globex.test")).scalar_one()
    page = login(member, "globex").get(url("globex", "/dashboard"))
    assert page.status_code == 200 and b'data-testid="two-factor-grace"' in page.data

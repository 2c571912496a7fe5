"""Demo data: acme has one API key row with a week of usage, loaded once; no secret is printed."""

from __future__ import annotations

from sqlalchemy import func, select

from app.api.models import ApiKey, ApiUsageDaily
from app.demo import DEMO_API_KEY_NAME, load_demo
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Organization


def test_demo_gives_acme_one_key_with_usage_once(app, capsys):
    load_demo()
    load_demo()  # idempotent
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    with tenant_context(acme.id):
        [key] = db.session.execute(select(ApiKey)).scalars().all()
        days = db.session.execute(select(func.count()).select_from(ApiUsageDaily)).scalar_one()
    assert key.name == DEMO_API_KEY_NAME and key.scopes == ["members:view", "projects:view"] and days == 7
    assert "tnt_" + key.key_id + "_" not in capsys.readouterr().out

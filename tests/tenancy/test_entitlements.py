"""Entitlements: limits are asked by name, from one place, in Python and in SQL alike."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.scoping import all_organizations
from app.tenancy import entitlements
from app.tenancy.models import Organization
from tests.factories import make_org


def _org(org_id) -> Organization:
    with all_organizations(reason="test: read an organization and its plan"):
        return db.session.get(Organization, org_id)


def test_limits_come_from_the_plan_today(world):
    pro, free = _org(world.acme.id), _org(world.globex.id)
    assert entitlements.limit(pro, "seats") == 250
    assert entitlements.limit(free, "seats") == 10
    assert entitlements.limit(free, "audit_retention_days") == 30
    assert entitlements.limit(free, "api_requests_per_minute") == 60


def test_no_seat_limit_reads_as_none(app):
    assert entitlements.limit(_org(make_org(plan="enterprise").id), "seats") is None


def test_an_unknown_limit_or_feature_fails_loudly(world):
    org = _org(world.acme.id)
    with pytest.raises(KeyError, match="unknown limit"):
        entitlements.limit(org, "max_seats")
    with pytest.raises(KeyError, match="unknown feature"):
        entitlements.entitled(org, "teleport")


@pytest.mark.parametrize(
    ("plan", "features"),
    [
        ("free", {"api", "custom_roles"}),
        ("pro", {"api", "custom_roles", "branding", "custom_domains", "ip_allowlist"}),
        ("enterprise", set(entitlements.feature_names())),
    ],
)
def test_features_come_from_the_plan(app, plan, features):
    org = _org(make_org(plan=plan).id)
    assert {f for f in entitlements.feature_names() if entitlements.entitled(org, f)} == features
    kinds = {(kind, name) for kind, name, _value, _source in entitlements.effective(org)}
    assert {("feature", f) for f in entitlements.feature_names()} <= kinds


@pytest.mark.parametrize("name", ["seats", "audit_retention_days", "api_requests_per_minute"])
def test_the_sql_form_answers_like_the_python_one_on_a_bare_connection(world, owner_engine, name):
    """The audit purge runs on the owner's connection: it must read the same limit."""
    for org_id in (world.acme.id, world.globex.id):
        with owner_engine.connect() as conn:
            assert conn.execute(entitlements.limit_query(name, org_id)).scalar() == entitlements.limit(
                _org(org_id), name
            )

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


# --------------------------------------------------------------------------- overrides
def _override(org_id, name, *, limit_value=None, enabled=None, until=None):
    from app.tenancy.models import EntitlementOverride

    kind = entitlements.kind_of(name)
    with all_organizations(reason="test: an override"):
        db.session.merge(
            EntitlementOverride(
                organization_id=org_id,
                name=name,
                kind=kind,
                limit_value=limit_value,
                enabled=enabled,
                until=until,
                reason="test",
            )
        )
    db.session.commit()
    db.session.expire_all()


def _sql_limit(owner_engine, name, org_id):
    with owner_engine.connect() as conn:
        return conn.execute(entitlements.limit_query(name, org_id)).scalar()


def test_a_limit_override_beats_the_plan_in_python_and_sql(world, owner_engine):
    from datetime import timedelta

    from app.util import utcnow

    _override(world.globex.id, "seats", limit_value=40, until=utcnow() + timedelta(days=3))
    org = _org(world.globex.id)
    assert entitlements.limit(org, "seats") == 40 == _sql_limit(owner_engine, "seats", world.globex.id)
    source = {n: s for _k, n, _v, s in entitlements.effective(org)}["seats"]
    assert source.startswith("override until ")
    # Another organization on the same plan is untouched.
    assert entitlements.limit(_org(make_org(plan="free").id), "seats") == 10


def test_an_unlimited_override_reads_as_none_in_python_and_sql(world, owner_engine):
    _override(world.globex.id, "seats", limit_value=None)
    assert entitlements.limit(_org(world.globex.id), "seats") is None
    assert _sql_limit(owner_engine, "seats", world.globex.id) is None


def test_an_expired_override_stops_counting_when_read(world, owner_engine):
    from datetime import timedelta

    from app.util import utcnow

    _override(world.globex.id, "audit_retention_days", limit_value=400, until=utcnow() - timedelta(seconds=1))
    org = _org(world.globex.id)
    assert entitlements.limit(org, "audit_retention_days") == 30
    assert _sql_limit(owner_engine, "audit_retention_days", world.globex.id) == 30
    assert {n: s for _k, n, _v, s in entitlements.effective(org)}["audit_retention_days"] == "plan free"


def test_a_feature_override_switches_a_feature_on_or_off(world):
    _override(world.globex.id, "sso", enabled=True)
    _override(world.globex.id, "api", enabled=False)
    org = _org(world.globex.id)
    assert entitlements.entitled(org, "sso") and not entitlements.entitled(org, "api")
    assert {n: s for _k, n, _v, s in entitlements.effective(org)}["sso"] == "override"


def test_removing_an_override_brings_the_plan_back(world):
    from sqlalchemy import delete

    from app.tenancy.models import EntitlementOverride

    _override(world.globex.id, "seats", limit_value=99)
    with all_organizations(reason="test: remove an override"):
        db.session.execute(delete(EntitlementOverride).where(EntitlementOverride.organization_id == world.globex.id))
    db.session.commit()
    db.session.expire_all()
    assert entitlements.limit(_org(world.globex.id), "seats") == 10


def test_the_runtime_role_cannot_grant_its_organization_an_override(world, runtime_connect):
    """Only the platform (cross-organization role) writes overrides: a
    request of the organization, in its own scope, can neither add a row nor
    edit the copy on its organization; it may read its own."""
    import psycopg

    statements = [
        "INSERT INTO entitlement_overrides (organization_id, name, kind, limit_value, reason)"
        " VALUES (%(o)s, 'seats', 'limit', 100000, 'me')",
        """UPDATE organizations SET entitlement_overrides = '{"sso": {"value": true}}' WHERE id = %(o)s""",
    ]
    for sql in statements:
        with runtime_connect() as conn:
            conn.execute("SELECT set_config('app.org_id', %s, false)", (str(world.acme.id),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql, {"o": world.acme.id})
    with runtime_connect() as conn:
        conn.execute("SELECT set_config('app.org_id', %s, false)", (str(world.acme.id),))
        assert conn.execute("SELECT count(*) FROM entitlement_overrides").fetchone() == (0,)

"""Plans and overrides in the console: plans are data a super-admin edits,
an organization may get its own value for a limit or a feature; every change
needs a reason, is recorded (plans: the platform log; overrides: the
organization's log and the platform's), and bad input is 422 beside the
field with nothing changed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from app.audit import PLATFORM_ORG_ID
from app.extensions import db
from app.scoping import all_organizations
from app.tenancy import entitlements
from app.tenancy.models import Organization
from tests.conftest import url


@pytest.fixture(autouse=True)
def _plans_restored(owner_engine):
    """Plans are reference data every test shares (the per-test truncation
    keeps them): put back what these tests edit."""
    with owner_engine.connect() as c:
        saved = [dict(r) for r in c.execute(text("SELECT * FROM plans")).mappings()]
    yield
    with owner_engine.begin() as c:
        for row in saved:
            cols = [k for k in row if k != "key"]
            c.execute(
                text(f"UPDATE plans SET {', '.join(f'{k} = :{k}' for k in cols)} WHERE key = :key"),
                row,
            )


def _plan_row(owner_engine, key):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM plans WHERE key = :k"), {"k": key}).mappings().one()


def _plan_form(owner_engine, key, **changes):
    """The plan form as the page sends it, with ``changes`` (names without prefix)."""
    row = _plan_row(owner_engine, key)
    data = {"plan-version": str(row["version"]), "plan-reason": "Pricing review"}
    for name in entitlements.limit_names():
        value = row[entitlements.plan_attribute(name)]
        data[f"plan-limit_{name}"] = "" if value is None else str(value)
    for name in entitlements.feature_names():
        if row[entitlements.plan_attribute(name)]:
            data[f"plan-feature_{name}"] = "y"
    for k, v in changes.items():
        if v is None:
            data.pop(f"plan-{k}", None)
        else:
            data[f"plan-{k}"] = v
    return data


def _org(org_id) -> Organization:
    db.session.expire_all()
    with all_organizations(reason="test: read an organization"):
        return db.session.get(Organization, org_id)


# --------------------------------------------------------------------------- plans
def test_plans_page_lists_every_plan_with_its_limits_and_organizations(console, world):
    body = console.get(url(None, "/platform/plans")).get_data(as_text=True)
    for name in ("Free", "Pro", "Enterprise"):
        assert name in body
    assert 'id="plan-pro"' in body


def test_editing_a_plan_changes_the_limits_of_its_organizations(console, world, post, owner_engine, events):
    r = post(console, "/platform/plans/pro", _plan_form(owner_engine, "pro", limit_seats="300", feature_sso="y"))
    assert r.status_code == 302, r.get_data(as_text=True)
    acme = _org(world.acme.id)
    assert entitlements.limit(acme, "seats") == 300 and entitlements.entitled(acme, "sso")
    assert _plan_row(owner_engine, "pro")["version"] == 2
    logged = [(a, m) for a, _t, m in events(PLATFORM_ORG_ID) if a == "platform.plan_updated"]
    assert logged and logged[-1][1]["reason"] == "Pricing review" and logged[-1][1]["plan"] == "pro"


def test_seats_below_an_organizations_members_ask_to_confirm_and_change_nothing(console, world, post, owner_engine):
    form = _plan_form(owner_engine, "free", limit_seats="2")
    r = post(console, "/platform/plans/free", form)
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "globex (3)" in body and "cannot add more" in body and "Save the plan anyway" in body
    assert _plan_row(owner_engine, "free")["max_members"] == 10
    r = post(console, "/platform/plans/free", {**form, "plan-confirm": "y"})
    assert r.status_code == 302
    assert _plan_row(owner_engine, "free")["max_members"] == 2


def test_a_limit_that_is_not_a_whole_number_is_422_beside_the_field(console, world, post, owner_engine):
    for field, value, message in [
        ("limit_seats", "lots", "Give a whole number"),
        ("limit_api_requests_per_minute", "", "cannot be unlimited"),
        ("limit_max_webhooks", "-3", "Give a whole number"),
        ("limit_seats", "99999999999", "Use at most"),
    ]:
        r = post(console, "/platform/plans/pro", _plan_form(owner_engine, "pro", **{field: value}))
        body = r.get_data(as_text=True)
        assert r.status_code == 422 and message in body, (field, value)
        assert f'id="plan-{field}-error"' in body
    assert _plan_row(owner_engine, "pro")["version"] == 1


def test_a_plan_edit_needs_a_reason_and_an_unknown_plan_is_404(console, world, post, owner_engine):
    r = post(console, "/platform/plans/pro", _plan_form(owner_engine, "pro", limit_seats="5", reason=""))
    assert r.status_code == 422 and "Give a reason" in r.get_data(as_text=True)
    assert _plan_row(owner_engine, "pro")["max_members"] == 250
    assert console.get(url(None, "/platform/plans/platinum")).status_code == 404
    assert post(console, "/platform/plans/platinum", _plan_form(owner_engine, "pro")).status_code == 404


def test_a_plan_edit_from_a_stale_page_is_409(console, world, post, owner_engine):
    stale = _plan_form(owner_engine, "pro", limit_seats="260")
    assert post(console, "/platform/plans/pro", _plan_form(owner_engine, "pro", limit_seats="270")).status_code == 302
    r = post(console, "/platform/plans/pro", stale)
    assert r.status_code == 409
    assert _plan_row(owner_engine, "pro")["max_members"] == 270


# --------------------------------------------------------------------------- overrides
def _override(console, post, org, **fields):
    data = {"override-reason": "Trial for the Q3 deal"}
    data.update({f"override-{k}": v for k, v in fields.items()})
    return post(console, f"/platform/organizations/{org.id}/overrides", data)


def test_an_override_applies_shows_its_source_and_is_recorded_in_both_logs(console, world, post, events):
    until = (date.today() + timedelta(days=30)).isoformat()
    r = _override(console, post, world.globex, name="sso", enabled="on", until=until)
    assert r.status_code == 302, r.get_data(as_text=True)
    assert entitlements.entitled(_org(world.globex.id), "sso")
    body = console.get(url(None, f"/platform/organizations/{world.globex.id}")).get_data(as_text=True)
    assert f"override until {until}" in body and 'id="override-sso"' in body
    org_log = [(a, m) for a, _t, m in events(world.globex.id) if a == "org.entitlement_overridden"]
    platform_log = [(a, m) for a, _t, m in events(PLATFORM_ORG_ID) if a == "platform.entitlement_overridden"]
    assert org_log and org_log[0][1]["reason"] == "Trial for the Q3 deal"
    assert platform_log and platform_log[0][1]["organization"] == "globex"


def test_a_limit_override_and_its_removal(console, world, post, events):
    assert _override(console, post, world.globex, name="seats", value="unlimited").status_code == 302
    assert entitlements.limit(_org(world.globex.id), "seats") is None
    r = post(
        console,
        f"/platform/organizations/{world.globex.id}/overrides/remove",
        {"remove-name": "seats", "remove-reason": "Trial over"},
    )
    assert r.status_code == 302
    assert entitlements.limit(_org(world.globex.id), "seats") == 10
    assert "org.entitlement_override_removed" in [a for a, _t, _m in events(world.globex.id)]
    assert "platform.entitlement_override_removed" in [a for a, _t, _m in events(PLATFORM_ORG_ID)]


def test_removing_an_override_needs_a_reason(console, world, post):
    _override(console, post, world.globex, name="seats", value="50")
    r = post(
        console,
        f"/platform/organizations/{world.globex.id}/overrides/remove",
        {"remove-name": "seats", "remove-reason": " "},
    )
    assert r.status_code == 422 and "Give a reason" in r.get_data(as_text=True)
    assert entitlements.limit(_org(world.globex.id), "seats") == 50


def test_bad_override_input_is_422_beside_the_field_and_changes_nothing(console, world, post, owner_engine):
    past = (date.today() - timedelta(days=1)).isoformat()
    for fields, message in [
        ({"name": "teleport", "value": "3"}, "Choose one of the limits or features"),
        ({"name": "seats", "value": "many"}, "Give a whole number"),
        ({"name": "sso", "enabled": ""}, "Choose on or off"),
        ({"name": "seats", "value": "20", "until": past}, "Give a date after today"),
        ({"name": "seats", "value": "20", "until": "next week"}, "YYYY-MM-DD"),
        ({"name": "seats", "value": "20", "reason": ""}, "Give a reason"),
    ]:
        r = _override(console, post, world.globex, **fields)
        assert r.status_code == 422 and message in r.get_data(as_text=True), fields
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM entitlement_overrides")).scalar() == 0


def test_an_override_below_usage_asks_to_confirm(console, world, post):
    r = _override(console, post, world.globex, name="seats", value="1")
    body = r.get_data(as_text=True)
    assert r.status_code == 422 and "uses 3 seats" in body and "Set it anyway" in body
    assert entitlements.limit(_org(world.globex.id), "seats") == 10
    assert _override(console, post, world.globex, name="seats", value="1", confirm="y").status_code == 302
    assert entitlements.limit(_org(world.globex.id), "seats") == 1


def test_the_daily_purge_removes_an_organizations_overrides(console, world, post, owner_engine):
    """Overrides are the organization's data: the purge past the restore
    window (a job, outside the console) removes them with the rest."""
    from app.tenancy import lifecycle

    assert _override(console, post, world.globex, name="seats", value="50").status_code == 302
    with all_organizations(reason="test: delete long ago"):
        lifecycle.delete(world.globex)
        world.globex.deleted_at = world.globex.deleted_at - timedelta(days=31)
    db.session.commit()
    assert lifecycle.purge_expired() == ["globex"]
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM entitlement_overrides")).scalar() == 0
        assert c.execute(text("SELECT entitlement_overrides FROM organizations WHERE slug = 'globex'")).scalar() == {}

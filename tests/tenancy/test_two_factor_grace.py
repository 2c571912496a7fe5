"""An organization that requires two-factor authentication, with a grace
period its admin sets: during it a member without a second factor gets in
with a banner naming the deadline; after it they are turned away to enrol,
and the refusal is audited (once per session and hour, not per page)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, text

from app.audit.models import AuditEvent
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy import policy
from app.util import utcnow
from tests import factories as f
from tests.conftest import csrf_token, url


def set_policy(owner_engine, org_id, **security) -> None:
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE organizations SET settings = jsonb_set(coalesce(settings, '{}'::jsonb), '{security}',"
                " CAST(:p AS jsonb)) WHERE id = :o"
            ),
            {"p": json.dumps(security), "o": org_id},
        )


def stored(owner_engine, org_id) -> dict:
    with owner_engine.connect() as c:
        return c.execute(text("SELECT settings FROM organizations WHERE id = :o"), {"o": org_id}).scalar()["security"]


def refusals(org_id) -> list:
    with tenant_context(org_id):
        return db.session.execute(select(AuditEvent).where(AuditEvent.action == "org.access_refused")).scalars().all()


def test_during_the_grace_period_a_member_without_a_factor_gets_in_with_a_banner_naming_the_deadline(
    world, login, owner_engine
):
    since = utcnow() - timedelta(days=2)
    set_policy(
        owner_engine, world.acme.id, require_2fa=True, require_2fa_grace_days=7, require_2fa_since=since.isoformat()
    )
    r = login(world.users["member"], "acme").get(url("acme", "/projects/"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-testid="two-factor-grace"' in html
    assert (since + timedelta(days=7)).strftime("%Y-%m-%d") in html
    assert "/account/security" in html
    assert refusals(world.acme.id) == []
    # A member with a factor sees no banner; nor does anyone in globex.
    f.enrol_totp(world.users["manager"])
    ok = login(world.users["manager"], "acme").get(url("acme", "/projects/")).get_data(as_text=True)
    assert 'data-testid="two-factor-grace"' not in ok
    other = login(world.users["consultant"], "globex").get(url("globex", "/projects/")).get_data(as_text=True)
    assert 'data-testid="two-factor-grace"' not in other


def test_after_the_grace_period_the_member_is_sent_to_enrol_and_the_refusal_is_audited_once(world, login, owner_engine):
    since = utcnow() - timedelta(days=8)
    set_policy(
        owner_engine, world.acme.id, require_2fa=True, require_2fa_grace_days=7, require_2fa_since=since.isoformat()
    )
    member = login(world.users["member"], "acme")
    for path in ("/projects/", "/dashboard"):
        r = member.get(url("acme", path))
        assert r.status_code == 403
        html = r.get_data(as_text=True)
        assert "requires two-factor authentication" in html and "grace period ended" in html
        assert "/account/security" in html and "Acme Project" not in html
    events = refusals(world.acme.id)
    assert len(events) == 1  # once per session, rule and hour
    assert events[0].meta["rule"] == "require_2fa"
    assert refusals(world.globex.id) == []
    f.enrol_totp(world.users["member"])
    assert member.get(url("acme", "/projects/")).status_code == 200


def test_the_admin_sets_the_grace_period_and_it_counts_from_when_2fa_was_turned_on(world, login, owner_engine):
    admin = login(world.users["admin"], "acme")

    def save(**fields):
        with owner_engine.connect() as c:
            version = c.execute(text("SELECT version FROM organizations WHERE id = :o"), {"o": world.acme.id}).scalar()
        data = {"sign_in_methods": "password", "version": str(version), "csrf_token": csrf_token(admin, "acme")}
        r = admin.post(url("acme", "/settings/security"), data={**data, **fields})
        assert r.status_code == 302, r.get_data(as_text=True)

    save(require_2fa="y", require_2fa_grace_days="14")
    first = stored(owner_engine, world.acme.id)
    assert first["require_2fa"] is True and first["require_2fa_grace_days"] == 14
    deadline = policy.from_settings({"security": first}).two_factor_deadline()
    assert timedelta(days=13, hours=23) < deadline - utcnow() <= timedelta(days=14)
    page = admin.get(url("acme", "/settings/security")).get_data(as_text=True)
    assert 'data-testid="two-factor-deadline"' in page and deadline.strftime("%Y-%m-%d") in page
    save(require_2fa="y", require_2fa_grace_days="3")  # shorter: still from the same start
    assert stored(owner_engine, world.acme.id)["require_2fa_since"] == first["require_2fa_since"]
    save()  # off: no start, no grace
    off = stored(owner_engine, world.acme.id)
    assert off["require_2fa"] is False and off["require_2fa_since"] is None and off["require_2fa_grace_days"] is None


def test_without_a_grace_period_the_refusal_is_immediate(world, login, owner_engine):
    set_policy(owner_engine, world.acme.id, require_2fa=True)
    assert login(world.users["member"], "acme").get(url("acme", "/projects/")).status_code == 403


def test_an_ip_allowlist_refusal_is_audited_in_the_organization(world, login, owner_engine):
    set_policy(owner_engine, world.acme.id, ip_allowlist=["127.0.0.1/32"])
    c = login(world.users["member"], "acme")
    for _ in range(2):
        r = c.get(url("acme", "/projects/"), environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert r.status_code == 403
    events = refusals(world.acme.id)
    assert len(events) == 1 and events[0].meta["rule"] == "ip_allowlist"
    assert events[0].meta["address"] == "198.51.100.7"

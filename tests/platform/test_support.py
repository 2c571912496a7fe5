"""Support impersonation: a reason, at most 30 minutes, a banner with "stop",
every action recorded as support with both identities, and what a support
session may not do."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from app.audit import PLATFORM_ORG_ID
from app.auth.models import UserSession
from app.extensions import db
from app.scoping import all_organizations
from app.util import utcnow
from tests import factories as f
from tests.conftest import csrf_token, url


def _start(console, post, user, reason="Customer ticket about exports"):
    return post(
        console, f"/platform/users/{user.id}/impersonate", {"impersonate-reason": reason, "impersonate-ticket": "SUP-7"}
    )


def _support_session(owner_engine, user):
    with owner_engine.connect() as c:
        return c.execute(
            text("SELECT id, impersonator_id FROM user_sessions WHERE user_id = :u AND impersonator_id IS NOT NULL"),
            {"u": user.id},
        ).first()


def test_impersonation_needs_a_reason(console, world, post, owner_engine):
    r = _start(console, post, world.users["member"], reason="")
    assert r.status_code == 422 and "Give a reason" in r.get_data(as_text=True)
    assert _support_session(owner_engine, world.users["member"]) is None


def test_a_super_admin_cannot_be_impersonated(console, world, post, owner_engine):
    other = f.make_user("other.super@tenantry.test", superadmin=True)
    r = _start(console, post, other)
    assert r.status_code == 422 and "cannot be impersonated" in r.get_data(as_text=True)
    assert _support_session(owner_engine, other) is None


def test_a_disabled_user_cannot_be_impersonated(console, world, post, owner_engine):
    member = world.users["member"]
    with all_organizations(reason="test: disable"):
        member.disabled_at = utcnow()
    db.session.commit()
    r = _start(console, post, member)
    assert r.status_code == 422 and "disabled" in r.get_data(as_text=True)


def test_actions_are_recorded_as_support_with_both_identities_and_stop_returns(
    console, world, post, owner_engine, superadmin, events
):
    member = world.users["member"]
    r = _start(console, post, member)
    assert r.status_code == 302
    row = _support_session(owner_engine, member)
    assert row.impersonator_id == superadmin.id
    # The browser now acts as the member, banner on every page.
    home = console.get(url(None, "/account"))
    body = home.get_data(as_text=True)
    assert "Support session" in body and member.email in body
    # The console is closed to a support session (no second impersonation).
    assert console.get(url(None, "/platform/")).status_code == 404
    # Act on acme's host (the hand-off carries the support session there).
    from tests.conftest import bind_cookie

    bind_cookie(console, row.id, "acme")
    r = console.post(
        url("acme", "/projects/"),
        data={
            "name": "Made by support",
            "description": "",
            "owner_id": str(member.id),
            "csrf_token": csrf_token(console, "acme"),
        },
    )
    assert r.status_code == 302, r.status_code
    acme = [(a, t) for a, t, _ in events(world.acme.id)]
    assert ("project.created", "support") in acme
    with owner_engine.connect() as c:
        ev = c.execute(
            text(
                "SELECT actor_id, impersonator_id FROM audit_events WHERE action = 'project.created' AND organization_id = :o"
            ),
            {"o": world.acme.id},
        ).one()
    assert (ev.actor_id, ev.impersonator_id) == (member.id, superadmin.id)
    # Stop from the banner on acme's host: back on the apex as the super-admin.
    r = console.post(url("acme", "/platform/impersonation/stop"), data={"csrf_token": csrf_token(console, "acme")})
    assert r.status_code == 302
    assert console.get(url(None, "/platform/")).status_code == 200
    platform = [(a, t) for a, t, _ in events(PLATFORM_ORG_ID)]
    assert ("platform.impersonation_started", "user") in platform
    assert ("platform.impersonation_ended", "support") in platform
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT revoked_at FROM user_sessions WHERE id = :i"), {"i": row.id}).scalar()


def test_the_users_own_sessions_are_untouched(console, world, post, login, owner_engine):
    member = world.users["member"]
    theirs = login(member)
    _start(console, post, member)
    assert theirs.get(url(None, "/account")).status_code == 200
    assert "Support session" not in theirs.get(url(None, "/account")).get_data(as_text=True)


def test_a_support_session_cannot_change_the_password_or_email(console, world, post, owner_engine):
    member = world.users["member"]
    _start(console, post, member)
    r = post(
        console,
        "/account/password",
        {
            "current_password": f.PASSWORD,
            "new_password": "another-long-passphrase-9",
            "confirm_password": "another-long-passphrase-9",
        },
    )
    assert r.status_code == 403 and "support session cannot" in r.get_data(as_text=True)
    r = post(console, "/account/email", {"new_email": "taken.over@example.test", "email_password": f.PASSWORD})
    assert r.status_code == 403
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT email FROM users WHERE id = :u"), {"u": member.id}).scalar() == member.email


def test_a_support_session_ends_after_30_minutes_and_the_console_returns(console, world, post, owner_engine):
    member = world.users["member"]
    _start(console, post, member)
    row = _support_session(owner_engine, member)
    with owner_engine.begin() as c:
        c.execute(
            text("UPDATE user_sessions SET created_at = :t WHERE id = :i"),
            {"t": utcnow() - timedelta(minutes=31), "i": row.id},
        )
    db.session.expire_all()
    assert db.session.get(UserSession, row.id) is not None
    # The apex cookie falls back to the super-admin's own session.
    assert console.get(url(None, "/platform/")).status_code == 200
    assert "Support session" not in console.get(url(None, "/platform/")).get_data(as_text=True)


def test_what_support_does_in_an_organization_is_also_in_the_platform_log(
    console, world, post, owner_engine, superadmin, events
):
    """An action in a support session lands in the organization's log and,
    as the same support actor with both identities, in the platform log,
    naming the organization."""
    from tests.conftest import bind_cookie

    member = world.users["member"]
    _start(console, post, member)
    bind_cookie(console, _support_session(owner_engine, member).id, "acme")
    r = console.post(
        url("acme", "/projects/"),
        data={
            "name": "Support copy",
            "description": "",
            "owner_id": str(member.id),
            "csrf_token": csrf_token(console, "acme"),
        },
    )
    assert r.status_code == 302
    assert ("project.created", "support") in [(a, t) for a, t, _ in events(world.acme.id)]
    copies = [m for a, t, m in events(PLATFORM_ORG_ID) if (a, t) == ("project.created", "support")]
    assert len(copies) == 1 and copies[0]["support_in_organization"] == "acme"
    with owner_engine.connect() as c:
        ev = c.execute(
            text(
                "SELECT actor_id, impersonator_id FROM audit_events WHERE action = 'project.created' AND organization_id = :o"
            ),
            {"o": PLATFORM_ORG_ID},
        ).one()
    assert (ev.actor_id, ev.impersonator_id) == (member.id, superadmin.id)


def test_a_members_own_actions_stay_out_of_the_platform_log(world, login, events):
    """Only support actions are copied: a member's own change is the organization's business."""
    member = world.users["member"]
    c = login(member, "acme")
    r = c.post(
        url("acme", "/projects/"),
        data={"name": "Mine", "description": "", "owner_id": str(member.id), "csrf_token": csrf_token(c, "acme")},
    )
    assert r.status_code == 302
    assert ("project.created", "user") in [(a, t) for a, t, _ in events(world.acme.id)]
    assert not [a for a, _t, _m in events(PLATFORM_ORG_ID) if a == "project.created"]

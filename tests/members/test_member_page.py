"""A member's page: profile, role, "why can they", active sessions (revocable,
audited), recent audit events; last-seen stamping; demo data."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import AuthHandoff, User, UserSession
from app.extensions import db
from app.util import utcnow
from tests.conftest import csrf_token, url
from tests.members.conftest import membership


def test_member_page_shows_profile_role_and_why_they_can(world, login):
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members/{world.users['manager'].id}"))
    assert r.status_code == 200
    assert b"Acme Manager" in r.data and b"manager@acme.test" in r.data
    assert b'id="why-can-they"' in r.data and b'data-permission="projects:create"' in r.data
    assert b'id="member-role"' in r.data  # the admin may change it


def test_member_page_lists_active_sessions_and_marks_the_ones_that_reached_this_org(world, login):
    uid = world.users["member"].id
    live = UserSession(user_id=uid, ip="203.0.113.7", user_agent="Firefox on Linux")
    old = UserSession(user_id=uid, ip="203.0.113.8", user_agent="Old", revoked_at=utcnow())
    stale = UserSession(
        user_id=uid,
        ip="203.0.113.9",
        user_agent="Stale",
        last_seen_at=utcnow() - timedelta(days=30),
        created_at=utcnow() - timedelta(days=30),
    )
    db.session.add_all([live, old, stale])
    db.session.flush()
    db.session.add(
        AuthHandoff(
            session_id=live.id,
            host="acme.tenantry.localhost",
            nonce_hash="0" * 64,
            expires_at=utcnow(),
            used_at=utcnow(),
        )
    )
    db.session.commit()
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members/{uid}"))
    assert b"203.0.113.7" in r.data and b"Firefox on Linux" in r.data
    assert b"203.0.113.8" not in r.data and b"203.0.113.9" not in r.data
    assert b"reached Acme Corporation" in r.data


def test_revoking_a_member_session_signs_them_out_and_is_audited(world, login, audit_events):
    victim = login(world.users["member"], "acme")
    assert victim.get(url("acme", "/dashboard")).status_code == 200
    c = login(world.users["admin"], "acme")
    sid = victim.user_session_id
    r = c.post(
        url("acme", f"/members/{world.users['member'].id}/sessions/{sid}/revoke"),
        data={"csrf_token": csrf_token(c, "acme")},
    )
    assert r.status_code == 302
    assert db.session.get(UserSession, sid).revoked_at is not None
    assert victim.get(url("acme", "/dashboard")).status_code == 302  # back to log in
    assert [a for a, _ in audit_events] == ["auth.session_revoked"]


def test_session_revoke_needs_members_remove_and_respects_the_owner(world, login):
    owner_session = login(world.users["owner"], "acme").user_session_id
    viewer = login(world.users["viewer"], "acme")
    r = viewer.post(
        url("acme", f"/members/{world.users['owner'].id}/sessions/{owner_session}/revoke"),
        data={"csrf_token": csrf_token(viewer, "acme")},
    )
    assert r.status_code == 403
    admin = login(world.users["admin"], "acme")
    r = admin.post(
        url("acme", f"/members/{world.users['owner'].id}/sessions/{owner_session}/revoke"),
        data={"csrf_token": csrf_token(admin, "acme")},
    )
    assert r.status_code == 422 and b"Owner" in r.data
    assert db.session.get(UserSession, owner_session).revoked_at is None


def test_viewer_sees_no_sessions_of_others(world, login):
    c = login(world.users["viewer"], "acme")
    r = c.get(url("acme", f"/members/{world.users['member'].id}"))
    assert r.status_code == 200 and b'id="member-sessions"' not in r.data and b'id="member-role"' not in r.data


def test_member_page_shows_recent_audit_events_by_and_about_them(world, login):
    c = login(world.users["owner"], "acme")
    uid = world.users["member"].id
    c.post(url("acme", f"/members/{uid}/role"), data={"csrf_token": csrf_token(c, "acme"), "role": "manager"})
    r = c.get(url("acme", f"/members/{uid}"))
    assert b'id="member-activity"' in r.data
    assert b"member.role_changed" in r.data


def test_visiting_stamps_last_seen_at_most_every_few_minutes(world, login):
    uid = world.users["member"].id
    assert membership(world.acme, uid).last_seen_at is None
    c = login(world.users["member"], "acme")
    c.get(url("acme", "/dashboard"))
    first = membership(world.acme, uid).last_seen_at
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    c.get(url("acme", "/dashboard"))
    assert membership(world.acme, uid).last_seen_at == first


def test_demo_adds_200_members_and_5_invitations_to_acme_idempotently(app):
    from app.demo import load_demo
    from app.members.models import Invitation
    from app.scoping import tenant_context
    from app.tenancy.models import Membership, Organization

    first = load_demo()
    assert "200 generated members, 5 invitations" in first
    second = load_demo()
    assert second == "Demo data: already loaded, nothing created."
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    with tenant_context(acme.id):
        roles = dict(db.session.execute(select(Membership.role, func.count()).group_by(Membership.role)).all())
        statuses = dict(db.session.execute(select(Membership.status, func.count()).group_by(Membership.status)).all())
        pending = db.session.execute(
            select(func.count()).select_from(Invitation).where(Invitation.accepted_at.is_(None))
        ).scalar()
    assert sum(roles.values()) >= 206 and roles["member"] > roles["viewer"] > roles.get("manager", 0)
    assert statuses["deactivated"] > 0 and pending == 5
    assert (
        db.session.execute(select(func.count()).select_from(User).where(User.email.like("%.%@acme.test"))).scalar()
        == 200
    )

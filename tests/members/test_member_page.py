"""A member's page: profile, role, "why can they", active sessions (revocable,
audited), recent audit events; last-seen stamping; demo data."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import User, UserSession
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import SessionReach
from app.util import utcnow
from tests import factories as f
from tests.conftest import csrf_token, url
from tests.members.conftest import membership


def test_member_page_shows_profile_role_and_why_they_can(world, login):
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members/{world.users['manager'].id}"))
    assert r.status_code == 200
    assert b"Acme Manager" in r.data and b"manager@acme.test" in r.data
    assert b'id="why-can-they"' in r.data and b'data-permission="projects:create"' in r.data
    assert b'id="member-role"' in r.data  # the admin may change it


def test_member_page_lists_only_live_sessions_that_reached_this_org(world, login):
    uid = world.users["member"].id
    live = UserSession(user_id=uid, ip="203.0.113.7", user_agent="Firefox on Linux")
    apex_only = UserSession(user_id=uid, ip="203.0.113.6", user_agent="Apex only")
    old = UserSession(user_id=uid, ip="203.0.113.8", user_agent="Old", revoked_at=utcnow())
    stale = UserSession(
        user_id=uid,
        ip="203.0.113.9",
        user_agent="Stale",
        last_seen_at=utcnow() - timedelta(days=30),
        created_at=utcnow() - timedelta(days=30),
    )
    db.session.add_all([live, apex_only, old, stale])
    db.session.commit()
    for rec in (live, old, stale):
        f.reached(world.acme, rec.id, world.users["member"])
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members/{uid}"))
    assert b"203.0.113.7" in r.data and b"Firefox on Linux" in r.data
    assert b"203.0.113.6" not in r.data  # never reached acme
    assert b"203.0.113.8" not in r.data and b"203.0.113.9" not in r.data  # not live


def test_a_shared_members_sessions_elsewhere_are_invisible_and_cannot_be_ended_here(world, login, audit_events):
    """The consultant belongs to acme and globex: acme's admin sees and ends
    only the sign-ins that came to acme, never the one used only at globex."""
    consultant = world.users["consultant"]
    at_globex = login(consultant, "globex")
    assert at_globex.get(url("globex", "/dashboard")).status_code == 200  # recorded as reaching globex
    at_acme = login(consultant, "acme")
    assert at_acme.get(url("acme", "/dashboard")).status_code == 200
    admin = login(world.users["admin"], "acme")
    page = admin.get(url("acme", f"/members/{consultant.id}")).get_data(as_text=True)
    assert f"session-{at_acme.user_session_id}" in page
    assert f"session-{at_globex.user_session_id}" not in page
    r = admin.post(
        url("acme", f"/members/{consultant.id}/sessions/{at_globex.user_session_id}/revoke"),
        data={"csrf_token": csrf_token(admin, "acme")},
    )
    assert r.status_code == 404
    assert db.session.get(UserSession, at_globex.user_session_id).revoked_at is None
    assert audit_events == []
    assert at_globex.get(url("globex", "/dashboard")).status_code == 200


def test_a_sessions_first_request_to_an_org_host_records_it_and_later_ones_write_nothing(world, login):
    from tests.web.test_page_statements import statements

    client = login(world.users["member"], "acme")
    rows = lambda: db.session.execute(select(func.count()).select_from(SessionReach)).scalar()  # noqa: E731
    with tenant_context(world.acme.id):
        assert rows() == 0
    client.get(url("acme", "/dashboard"))
    with tenant_context(world.acme.id):
        assert rows() == 1
    engines = {db.engine, *db.engines.values()}
    with statements(engines) as seen:
        client.get(url("acme", "/dashboard"))
    assert not [s for s in seen if "session_organizations" in s]


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
    owner = login(world.users["owner"], "acme")
    owner.get(url("acme", "/dashboard"))
    owner_session = owner.user_session_id
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

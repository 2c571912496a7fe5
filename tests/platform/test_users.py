"""The console's people: search across organizations, a person's page,
disable / re-enable (disabling ends their sessions at once), a reset link."""

from __future__ import annotations

from sqlalchemy import text

from app.audit import PLATFORM_ORG_ID
from tests import factories as f
from tests.conftest import run_due_jobs, url


def test_search_finds_people_of_every_organization(console, world):
    body = console.get(url(None, "/platform/users"), query_string={"q": "globex"}).get_data(as_text=True)
    assert "owner@globex.test" in body and "member@globex.test" in body and "owner@acme.test" not in body


def test_users_page_lists_memberships_and_sessions(console, world, login):
    login(world.users["consultant"], "acme")  # a live session
    body = console.get(url(None, f"/platform/users/{world.users['consultant'].id}")).get_data(as_text=True)
    assert "Acme Corporation" in body and "Globex" in body
    assert "No live session." not in body


def test_disabling_ends_every_session_at_once_and_refuses_sign_in(console, world, login, post, events, owner_engine):
    member = world.users["globex_member"]
    theirs = login(member, "globex")
    assert theirs.get(url("globex", "/projects/")).status_code == 200
    r = post(console, f"/platform/users/{member.id}/disable", {"disable-reason": "Compromised account"})
    assert r.status_code == 302
    assert theirs.get(url("globex", "/projects/")).status_code == 302  # signed out: off to log in
    anon = console.application.test_client()
    from tests.conftest import csrf_token

    r = anon.post(
        url(None, "/login"),
        data={"email": member.email, "password": f.PASSWORD, "csrf_token": csrf_token(anon)},
    )
    assert r.status_code == 422 and "disabled" in r.get_data(as_text=True)
    assert "platform.user_disabled" in [a for a, _, _ in events(PLATFORM_ORG_ID)]

    r = post(console, f"/platform/users/{member.id}/enable", {"enable-reason": "Secured"})
    assert r.status_code == 302
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT disabled_at FROM users WHERE id = :u"), {"u": member.id}).scalar() is None


def test_disable_without_a_reason_is_422_and_changes_nothing(console, world, post, owner_engine):
    member = world.users["member"]
    r = post(console, f"/platform/users/{member.id}/disable", {"disable-reason": ""})
    assert r.status_code == 422 and "Give a reason" in r.get_data(as_text=True)
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT disabled_at FROM users WHERE id = :u"), {"u": member.id}).scalar() is None


def test_a_super_admin_cannot_disable_themselves(console, superadmin, post):
    r = post(console, f"/platform/users/{superadmin.id}/disable", {"disable-reason": "oops"})
    assert r.status_code == 422


def test_password_reset_goes_through_the_ordinary_reset_mail(app, console, world, post, mailbox):
    member = world.users["member"]
    r = post(console, f"/platform/users/{member.id}/password-reset", {"reset-reason": "Locked out"})
    assert r.status_code == 302
    run_due_jobs(app)
    msg = mailbox.last(member.email)
    assert msg is not None and "/reset-password/" in mailbox.text(msg)


def test_a_super_admins_page_lists_what_they_did_as_support(console, world, post, superadmin, owner_engine):
    """Support work is copied into the platform log; the super-admin's own
    page lists it among their recent platform events."""
    from tests.conftest import bind_cookie, csrf_token

    member = world.users["member"]
    post(console, f"/platform/users/{member.id}/impersonate", {"impersonate-reason": "Ticket 9"})
    with owner_engine.connect() as c:
        sid = c.execute(
            text("SELECT id FROM user_sessions WHERE user_id = :u AND impersonator_id IS NOT NULL"), {"u": member.id}
        ).scalar()
    bind_cookie(console, sid, "acme")
    r = console.post(
        url("acme", "/projects/"),
        data={
            "name": "By support",
            "description": "",
            "owner_id": str(member.id),
            "csrf_token": csrf_token(console, "acme"),
        },
    )
    assert r.status_code == 302
    console.post(url("acme", "/platform/impersonation/stop"), data={"csrf_token": csrf_token(console, "acme")})
    body = console.get(url(None, f"/platform/users/{superadmin.id}")).get_data(as_text=True)
    assert "Recent platform events" in body and "project.created" in body

"""Invitations: send → mail through the real SMTP server → accept (new and
existing users), expiry, reuse, revoke, resend, seats, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.auth.models import User
from app.extensions import db
from app.members.models import Invitation
from app.scoping import tenant_context
from app.util import utcnow
from tests.conftest import Mailbox, csrf_token, follow, url
from tests.factories import add_member, make_org, make_user
from tests.members.conftest import (
    HX,
    add_members,
    invitation,
    invitations,
    invite_row,
    link_in,
    membership,
    token_hash_of,
)


def invite(c, emails: str, role: str = "member", slug: str = "acme"):
    return c.post(
        url(slug, "/members/invite"),
        data={
            "csrf_token": csrf_token(c, slug),
            "emails": emails,
            "role": role,
        },
    )


def path_of(link: str) -> str:
    return link.split("tenantry.localhost", 1)[1]


# --------------------------------------------------------------------------- sending
def test_invite_sends_a_mail_with_a_link_on_the_org_host_and_stores_only_a_hash(world, login, mailbox, audit_events):
    c = login(world.users["admin"], "acme")
    r = invite(c, "Newcomer@Example.test", "viewer")
    assert r.status_code == 302 and "status=invited" in r.headers["Location"]
    msg = mailbox.last("newcomer@example.test")
    assert "Acme Corporation" in msg["Subject"]
    link, token = link_in(msg)
    assert link.startswith("http://acme.tenantry.localhost/invitations/")
    [inv] = invitations(world.acme)
    assert inv.email == "newcomer@example.test" and inv.role == "viewer"
    assert inv.token_hash == token_hash_of(token) and token not in inv.token_hash
    assert inv.sent_at is not None and inv.invited_by == world.users["admin"].id
    assert timedelta(days=6, hours=23) < inv.expires_at - utcnow() <= timedelta(days=7)
    assert [a for a, _ in audit_events] == ["member.invited"]


def test_invite_many_at_once_reports_members_duplicates_and_already_invited_individually(world, login, mailbox):
    invite_row(world.acme, "pending@example.test")
    c = login(world.users["admin"], "acme")
    r = invite(c, "a@example.test, b@example.test\nA@example.test; member@acme.test\npending@example.test")
    assert r.status_code == 302
    assert {i.email for i in invitations(world.acme)} == {"a@example.test", "b@example.test", "pending@example.test"}
    assert len(mailbox.to("a@example.test")) == 1 and len(mailbox.to("b@example.test")) == 1
    assert not mailbox.to("member@acme.test") and not mailbox.to("pending@example.test")
    page = c.get(url("acme", "/members?status=invited")).data.decode()
    assert "Invited a@example.test, b@example.test." in page
    assert "a@example.test was listed more than once" in page
    assert "member@acme.test is already a member" in page
    assert "pending@example.test has already been invited" in page


def test_invalid_addresses_are_refused_individually_with_422_and_nothing_is_sent(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    r = invite(c, "good@example.test, not-an-address, also@bad@x")
    assert r.status_code == 422
    assert b"not-an-address is not a valid e-mail address" in r.data
    assert b"also@bad@x is not a valid e-mail address" in r.data
    assert invitations(world.acme) == [] and mailbox.messages == []


@pytest.mark.parametrize(
    "emails,role,message",
    [
        ("", "member", b"Enter at least one e-mail address."),
        ("x@example.test", "owner", b"Choose a role you are allowed to give."),  # admin cannot give Owner
        ("x@example.test", "emperor", b"Choose a role you are allowed to give."),
        ("x@example.test", "", b"Choose a role you are allowed to give."),
    ],
)
def test_bad_invite_input_is_422_beside_the_field(world, login, mailbox, emails, role, message):
    c = login(world.users["admin"], "acme")
    r = invite(c, emails, role)
    assert r.status_code == 422 and message in r.data
    assert invitations(world.acme) == [] and mailbox.messages == []


def test_too_many_addresses_at_once_is_422(world, login, mailbox):
    c = login(world.users["owner"], "acme")
    r = invite(c, ",".join(f"p{i}@example.test" for i in range(101)))
    assert r.status_code == 422 and b"at most 100" in r.data


def test_inviting_only_existing_members_is_422_naming_them(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    r = invite(c, "member@acme.test")
    assert r.status_code == 422 and b"member@acme.test is already a member" in r.data


def test_a_custom_role_of_another_organization_cannot_be_given(world, login, mailbox):
    from tests.rbac.conftest import make_role

    role = make_role(world.globex, "Globex thing", ["org:view"])
    c = login(world.users["owner"], "acme")
    r = invite(c, "x@example.test", f"custom:{role.id}")
    assert r.status_code == 422 and invitations(world.acme) == []


def test_invite_with_a_custom_role(world, login, mailbox):
    from tests.rbac.conftest import make_role

    role = make_role(world.acme, "Helpdesk", ["org:view", "members:view"])
    c = login(world.users["admin"], "acme")
    assert invite(c, "help@example.test", f"custom:{role.id}").status_code == 302
    [inv] = invitations(world.acme)
    assert inv.custom_role_id == role.id and inv.role is None
    assert "as Helpdesk" in Mailbox.text(mailbox.last("help@example.test"))


def test_invite_form_offers_only_roles_the_inviter_may_give(world, login):
    r = login(world.users["admin"], "acme").get(url("acme", "/members/invite"))
    assert r.status_code == 200
    assert b'<option selected value="member">' in r.data or b'value="member" selected' in r.data
    assert b'value="owner"' not in r.data and b'value="admin"' in r.data
    assert b"244 of 250 seats left: 6 of 250 seats used on the Pro plan" in r.data
    r = login(world.users["owner"], "acme").get(url("acme", "/members/invite"))
    assert b'value="owner"' in r.data


def test_viewer_and_manager_cannot_invite(world, login, mailbox):
    for who in ("viewer", "manager", "member"):
        c = login(world.users[who], "acme")
        assert c.get(url("acme", "/members/invite")).status_code == 403
        assert invite(c, "x@example.test").status_code == 403
    assert invitations(world.acme) == []


# --------------------------------------------------------------------------- seats
def test_seat_limit_counts_members_and_pending_invitations_and_names_the_plan(world, login, mailbox):
    small = make_org("tiny", "Tiny Co", plan="free")  # Free: 10 members
    boss = make_user("boss@tiny.test", "Tiny Boss")
    add_member(small, boss, "owner")
    add_members(small, 6, prefix="crew")  # 7 members
    invite_row(small, "one@example.test")  # 8 seats taken
    invite_row(small, "expired@example.test", expires_in=timedelta(days=-1))  # expired: no seat
    add_members(small, 2, prefix="old", status="deactivated")  # deactivated: no seat
    c = login(boss, "tiny")
    r = invite(c, "a@example.test, b@example.test, c@example.test", slug="tiny")
    assert r.status_code == 422
    assert b"The Free plan allows 10 members" in r.data and b"only 2 more" in r.data
    assert mailbox.messages == []
    assert invite(c, "a@example.test, b@example.test", slug="tiny").status_code == 302
    r = invite(c, "c@example.test", slug="tiny")
    assert r.status_code == 422 and b"no more people" in r.data
    # Revoking an invitation frees its seat.
    inv_id = next(i.id for i in invitations(small) if i.email == "one@example.test")
    c.post(url("tiny", f"/members/invitations/{inv_id}/revoke"), data={"csrf_token": csrf_token(c, "tiny")})
    assert invite(c, "c@example.test", slug="tiny").status_code == 302


def test_members_page_shows_seats_used_against_the_plan(world, login):
    invite_row(world.acme, "x@example.test")
    c = login(world.users["admin"], "acme")
    assert b"7 of 250 seats used on the Pro plan" in c.get(url("acme", "/members")).data


def test_reactivating_past_the_seat_limit_is_refused(world, login):
    small = make_org("tiny", "Tiny Co", plan="free")
    boss = make_user("boss@tiny.test", "Tiny Boss")
    add_member(small, boss, "owner")
    add_members(small, 9, prefix="crew")  # 10 active: full
    [gone] = add_members(small, 1, prefix="gone", status="deactivated")
    c = login(boss, "tiny")
    r = c.post(url("tiny", f"/members/{gone}/reactivate"), data={"csrf_token": csrf_token(c, "tiny")}, headers=HX)
    assert r.status_code == 422 and b"The Free plan allows 10 members" in r.data
    assert membership(small, gone).status == "deactivated"


# --------------------------------------------------------------------------- accepting
def test_new_person_signs_up_from_the_mailed_link_and_joins(world, app, login, mailbox, audit_events):
    c = login(world.users["admin"], "acme")
    invite(c, "fresh@example.test", "viewer")
    link, token = link_in(mailbox.last("fresh@example.test"))
    visitor = app.test_client()
    page = visitor.get(link)
    assert page.status_code == 200
    assert b"Create account and join" in page.data and b'value="fresh@example.test" readonly' in page.data
    r = visitor.post(
        link,
        data={"csrf_token": csrf_token(visitor, "acme"), "name": "Fresh Face", "password": "a-long-enough-passphrase"},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
    user = db.session.execute(select(User).where(User.email == "fresh@example.test")).scalar_one()
    assert user.is_verified and user.name == "Fresh Face"
    m = membership(world.acme, user.id)
    assert m.role == "viewer" and m.status == "active"
    assert invitation(world.acme, invitations(world.acme)[0].id).accepted_by == user.id
    # Signed in on the organization's host at once.
    assert visitor.get(url("acme", "/dashboard")).status_code == 200
    assert {"auth.signup", "member.joined"} <= {a for a, _ in audit_events}


def test_sign_up_on_the_accept_page_validates_name_and_password_with_422(world, app, mailbox):
    _id, token = invite_row(world.acme, "fresh@example.test")
    visitor = app.test_client()
    link = url("acme", f"/invitations/{token}")
    visitor.get(link)
    r = visitor.post(link, data={"csrf_token": csrf_token(visitor, "acme"), "name": "", "password": "short"})
    assert r.status_code == 422 and b"Enter your name." in r.data
    r = visitor.post(link, data={"csrf_token": csrf_token(visitor, "acme"), "name": "Fresh", "password": "short"})
    assert r.status_code == 422 and b"at least 8 characters" in r.data
    assert db.session.execute(select(User).where(User.email == "fresh@example.test")).scalar_one_or_none() is None
    assert invitation(world.acme, _id).accepted_at is None


def test_existing_user_signed_in_on_the_org_host_joins_at_once(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    invite(c, "outsider@example.test", "member")
    link, _token = link_in(mailbox.last("outsider@example.test"))
    outsider = login(world.users["outsider"], "acme")  # a cookie on acme's host, not a member yet
    assert outsider.get(url("acme", "/dashboard")).status_code == 404
    r = outsider.get(link)
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
    assert membership(world.acme, world.users["outsider"].id).role == "member"
    assert outsider.get(url("acme", "/dashboard")).status_code == 200


def test_existing_user_not_signed_in_here_is_offered_to_log_in_and_comes_back(world, app, login, mailbox):
    c = login(world.users["admin"], "acme")
    invite(c, "outsider@example.test")
    link, _token = link_in(mailbox.last("outsider@example.test"))
    import html
    import re
    from urllib.parse import parse_qs, urlsplit

    from tests.factories import PASSWORD

    visitor = app.test_client()
    r = visitor.get(link)
    assert r.status_code == 200 and b"Log in to accept" in r.data
    # The button goes to the apex log-in, with this link as `next` …
    href = html.unescape(re.search(r'href="([^"]+)">Log in to accept', r.get_data(as_text=True)).group(1))
    parts = urlsplit(href)
    assert parts.netloc == "tenantry.localhost" and parts.path == "/login"
    assert parse_qs(parts.query)["next"] == [link]
    # … and logging in there hands the sign-in back to the link, which joins.
    r = follow(
        visitor,
        visitor.post(
            href,
            data={
                "csrf_token": csrf_token(visitor, None),
                "email": "outsider@example.test",
                "password": PASSWORD,
                "next": link,
            },
        ),
    )
    assert r.status_code == 200, r.data[:500]
    assert r.request.host == "acme.tenantry.localhost" and r.request.path == "/dashboard"
    assert membership(world.acme, world.users["outsider"].id).role == "member"


def test_signed_in_as_someone_else_is_told_clearly(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    invite(c, "someone.else@example.test")
    link, _ = link_in(mailbox.last("someone.else@example.test"))
    other = login(world.users["consultant"], "acme")
    r = other.get(link)
    assert r.status_code == 403
    assert b"You are signed in as <strong>consultant@example.test</strong>" in r.data
    assert b"this invitation is for" in r.data
    assert invitations(world.acme)[0].accepted_at is None


def test_a_used_link_does_not_work_twice(world, app, login, mailbox):
    c = login(world.users["admin"], "acme")
    invite(c, "outsider@example.test")
    link, _ = link_in(mailbox.last("outsider@example.test"))
    outsider = login(world.users["outsider"], "acme")
    assert outsider.get(link).status_code == 302
    r = app.test_client().get(link)
    assert r.status_code == 410 and b"already used" in r.data


def test_an_expired_link_gets_a_clear_410(world, app):
    inv_id, token = invite_row(world.acme, "late@example.test")
    with tenant_context(world.acme.id):
        db.session.execute(
            update(Invitation).where(Invitation.id == inv_id).values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    r = app.test_client().get(url("acme", f"/invitations/{token}"))
    assert r.status_code == 410 and b"This invitation has expired" in r.data


def test_a_revoked_link_gets_a_clear_410(world, app, login, mailbox, audit_events):
    c = login(world.users["admin"], "acme")
    invite(c, "revokee@example.test")
    link, _ = link_in(mailbox.last("revokee@example.test"))
    inv = invitations(world.acme)[0]
    r = c.post(
        url("acme", f"/members/invitations/{inv.id}/revoke"), data={"csrf_token": csrf_token(c, "acme")}, headers=HX
    )
    assert r.status_code == 200 and b"was revoked" in r.data
    r = app.test_client().get(link)
    assert r.status_code == 410 and b"withdrawn" in r.data
    assert "member.invitation_revoked" in [a for a, _ in audit_events]


def test_an_unknown_link_gets_410_and_a_link_of_another_org_is_unknown_here(world, app):
    _id, token = invite_row(world.globex, "g@example.test")
    assert app.test_client().get(url("acme", "/invitations/nonsense")).status_code == 410
    assert app.test_client().get(url("acme", f"/invitations/{token}")).status_code == 410
    assert app.test_client().get(url("globex", f"/invitations/{token}")).status_code == 200


def test_resend_mails_a_new_link_and_the_old_one_dies(world, app, login, mailbox, audit_events):
    c = login(world.users["admin"], "acme")
    invite(c, "again@example.test")
    old_link, old_token = link_in(mailbox.last("again@example.test"))
    inv = invitations(world.acme)[0]
    r = c.post(
        url("acme", f"/members/invitations/{inv.id}/resend"), data={"csrf_token": csrf_token(c, "acme")}, headers=HX
    )
    assert r.status_code == 200 and b"Sent again to again@example.test" in r.data
    assert len(mailbox.to("again@example.test")) == 2
    new_link, new_token = link_in(mailbox.last("again@example.test"))
    assert new_token != old_token
    assert app.test_client().get(old_link).status_code == 410
    assert app.test_client().get(new_link).status_code == 200
    assert "member.invitation_resent" in [a for a, _ in audit_events]


def test_resend_revives_an_expired_invitation(world, app, login, mailbox):
    inv_id, token = invite_row(world.acme, "late@example.test", expires_in=timedelta(days=-2))
    c = login(world.users["admin"], "acme")
    r = c.post(url("acme", f"/members/invitations/{inv_id}/resend"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302
    assert invitation(world.acme, inv_id).expires_at > utcnow() + timedelta(days=6)
    link, _ = link_in(mailbox.last("late@example.test"))
    assert app.test_client().get(link).status_code == 200


def test_reinviting_an_expired_address_renews_the_invitation(world, login, mailbox):
    inv_id, _ = invite_row(world.acme, "late@example.test", expires_in=timedelta(days=-2))
    c = login(world.users["admin"], "acme")
    assert invite(c, "late@example.test").status_code == 302
    [inv] = invitations(world.acme)
    assert inv.id == inv_id and inv.is_pending
    assert mailbox.last("late@example.test")


def test_accepted_or_revoked_invitations_cannot_be_resent_or_revoked(world, login, mailbox):
    inv_id, _ = invite_row(world.acme, "done@example.test", accepted_at=utcnow())
    c = login(world.users["admin"], "acme")
    for action in ("resend", "revoke"):
        r = c.post(
            url("acme", f"/members/invitations/{inv_id}/{action}"),
            data={"csrf_token": csrf_token(c, "acme")},
            headers=HX,
        )
        assert r.status_code == 422 and b"already accepted" in r.data
    assert mailbox.messages == []


def test_invitation_mailed_while_smtp_is_down_arrives_once_it_is_back(world, login, mailbox, run_jobs, advance_jobs):
    """SMTP down: the invitation is made and its mail waits in the queue,
    retried with backoff; once the server is back, the invitation arrives."""
    mailbox.server.stop()
    c = login(world.users["admin"], "acme")
    r = invite(c, "unlucky@example.test")
    assert r.status_code == 302
    [inv] = invitations(world.acme)
    assert inv.is_pending and inv.sent_at is None
    run_jobs()  # the first attempt fails: connection refused
    assert mailbox.to("unlucky@example.test") == []
    advance_jobs()  # and the next
    mailbox.server.start()
    advance_jobs()
    msg = mailbox.last("unlucky@example.test")
    assert "invited you to join Acme" in msg["Subject"]
    db.session.expire_all()
    [inv] = invitations(world.acme)
    assert inv.sent_at is not None


def test_a_custom_role_offered_in_a_pending_invitation_is_in_use(world, login, mailbox):
    """Members answers rbac's ``role_in_use`` hook; an accepted or revoked
    invitation is history, and the role may go (the invitation falls back to Viewer)."""
    from app import hooks
    from app.rbac.models import Role

    with tenant_context(world.acme.id):
        role = Role(organization_id=world.acme.id, name="Auditor", permissions=["audit:view"])
        db.session.add(role)
        db.session.commit()
        role_id = role.id
    c = login(world.users["owner"], "acme")
    assert invite(c, "aud@example.test", role=f"custom:{role_id}").status_code == 302
    with tenant_context(world.acme.id):
        role = db.session.execute(select(Role).where(Role.id == role_id)).scalar_one()
        assert [r for r in hooks.role_in_use.send(role) if r] == [
            "Auditor is offered in pending invitations. Revoke or resend them with another role first: aud@example.test."
        ]
        inv = db.session.execute(select(Invitation).where(Invitation.email == "aud@example.test")).unique().scalar_one()
        inv.revoked_at = utcnow()
        db.session.flush()
        assert [r for r in hooks.role_in_use.send(role) if r] == []
        hooks.role_deleted.send(role)
        db.session.commit()
        inv = db.session.execute(select(Invitation).where(Invitation.email == "aud@example.test")).unique().scalar_one()
        assert (inv.role, inv.custom_role_id) == ("viewer", None)


def test_the_same_invite_form_sent_twice_invites_and_mails_once(world, login, mailbox, owner_engine):
    from sqlalchemy import text

    c = login(world.users["admin"], "acme")
    page = c.get(url("acme", "/members/invite")).get_data(as_text=True)
    key = page.split('name="submit_key" type="hidden" value="')[1].split('"')[0]
    data = {"csrf_token": csrf_token(c, "acme"), "emails": "twice@example.test", "role": "member", "submit_key": key}
    first, second = (c.post(url("acme", "/members/invite"), data=data) for _ in range(2))
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM invitations WHERE email = 'twice@example.test'")).scalar() == 1
    assert len(mailbox.to("twice@example.test")) == 1

"""Auto-join: a user whose VERIFIED address is at a verified domain joins the
organization with the domain's role (on verifying the address, on signing
in), seats holding; unverified addresses, other modes, other plans: nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domains import services
from app.extensions import db
from app.scoping import tenant_context
from tests import factories as f
from tests.auth.conftest import follow_link, link_in, post
from tests.conftest import url
from tests.members.conftest import add_members

SIGNUP = {
    "name": "Dana Domain",
    "email": "dana@acme-widgets.com",
    "password": "plum-orbit-cactus-42",
    "confirm": "plum-orbit-cactus-42",
}


@pytest.fixture
def domain(world, dns_zone):
    """acme verified acme-widgets.com; ``domain(mode, role)`` sets what it does."""
    with tenant_context(world.acme.id):
        d = services.add_domain("acme-widgets.com")
        dns_zone.publish("_tenantry.acme-widgets.com", f"tenantry-verification={d.token}")
        assert services.verify_domain(d).found
        db.session.commit()
        did = d.id

    def configure(mode="auto", role="viewer"):
        with tenant_context(world.acme.id):
            services.update_settings(services.find_domain(did), mode, role)
            db.session.commit()

    return configure


def membership(owner_engine, org, email):
    with owner_engine.connect() as c:
        return (
            c.execute(
                text(
                    "SELECT m.role, m.status FROM memberships m JOIN users u ON u.id = m.user_id"
                    " WHERE m.organization_id = :o AND u.email = :e"
                ),
                {"o": org.id, "e": email},
            )
            .mappings()
            .first()
        )


def joined_events(owner_engine, org):
    with owner_engine.connect() as c:
        return (
            c.execute(
                text(
                    "SELECT action, metadata FROM audit_events WHERE organization_id = :o AND action LIKE 'member.%' ORDER BY id"
                ),
                {"o": org.id},
            )
            .mappings()
            .all()
        )


def test_a_new_user_joins_with_the_default_role_once_their_address_is_verified(
    world, client, mailbox, domain, owner_engine
):
    domain("auto", "viewer")
    assert post(client, "/signup", SIGNUP).status_code == 302
    assert membership(owner_engine, world.acme, "dana@acme-widgets.com") is None  # not verified yet
    r = follow_link(client, link_in(mailbox.last("dana@acme-widgets.com")))
    assert r.status_code == 200
    assert dict(membership(owner_engine, world.acme, "dana@acme-widgets.com")) == {"role": "viewer", "status": "active"}
    [event] = [e for e in joined_events(owner_engine, world.acme) if e["action"] == "member.joined"]
    assert event["metadata"]["via"] == "domain" and event["metadata"]["domain"] == "acme-widgets.com"
    # Continue: straight into the organization it joined.
    home = client.get(url(None, "/"))
    assert home.status_code == 302 and "acme.tenantry.localhost" in home.headers["Location"]


def test_an_existing_verified_user_joins_when_they_sign_in(world, client, domain, owner_engine):
    f.make_user("erin@acme-widgets.com", "Erin Existing")
    domain("auto", "member")
    r = post(client, "/login", {"email": "erin@acme-widgets.com", "password": f.PASSWORD})
    assert r.status_code == 302
    assert membership(owner_engine, world.acme, "erin@acme-widgets.com")["role"] == "member"


def test_an_unverified_address_never_joins(world, client, domain, owner_engine):
    f.make_user("ursula@acme-widgets.com", "Ursula Unverified", verified=False)
    domain("auto", "member")
    assert post(client, "/login", {"email": "ursula@acme-widgets.com", "password": f.PASSWORD}).status_code == 302
    assert membership(owner_engine, world.acme, "ursula@acme-widgets.com") is None


@pytest.mark.parametrize("mode", ["off", "suggest"])
def test_nobody_joins_automatically_unless_the_domain_says_so(world, client, domain, owner_engine, mode):
    f.make_user("erin@acme-widgets.com", "Erin Existing")
    domain(mode, "member")
    post(client, "/login", {"email": "erin@acme-widgets.com", "password": f.PASSWORD})
    assert membership(owner_engine, world.acme, "erin@acme-widgets.com") is None


def test_a_member_keeps_their_role_and_a_deactivated_one_stays_deactivated(world, client, domain, owner_engine):
    kept = f.make_user("kept@acme-widgets.com", "Kept Role")
    f.add_member(world.acme, kept, "manager")
    gone = f.make_user("gone@acme-widgets.com", "Gone Member")
    f.add_member(world.acme, gone, "member", status="deactivated")
    domain("auto", "viewer")
    for email in ("kept@acme-widgets.com", "gone@acme-widgets.com"):
        post(client.application.test_client(), "/login", {"email": email, "password": f.PASSWORD})
    assert dict(membership(owner_engine, world.acme, "kept@acme-widgets.com")) == {
        "role": "manager",
        "status": "active",
    }
    assert dict(membership(owner_engine, world.acme, "gone@acme-widgets.com")) == {
        "role": "member",
        "status": "deactivated",
    }
    assert not [e for e in joined_events(owner_engine, world.acme) if e["action"] == "member.joined"]


def test_no_seat_left_means_no_join_and_an_audited_refusal(world, client, domain, owner_engine):
    add_members(world.acme, 250 - 6, prefix="filler")  # the Pro plan's 250 seats, all taken
    f.make_user("late@acme-widgets.com", "Late Comer")
    domain("auto", "member")
    assert post(client, "/login", {"email": "late@acme-widgets.com", "password": f.PASSWORD}).status_code == 302
    assert membership(owner_engine, world.acme, "late@acme-widgets.com") is None
    [refused] = [e for e in joined_events(owner_engine, world.acme) if e["action"] == "member.auto_join_refused"]
    assert "250 are taken" in refused["metadata"]["reason"]


def test_a_plan_without_verified_domains_lets_nobody_join(world, client, domain, owner_engine):
    domain("auto", "member")
    with owner_engine.begin() as c:
        c.execute(text("UPDATE organizations SET plan_key = 'free' WHERE id = :o"), {"o": world.acme.id})
    f.make_user("erin@acme-widgets.com", "Erin Existing")
    post(client, "/login", {"email": "erin@acme-widgets.com", "password": f.PASSWORD})
    assert membership(owner_engine, world.acme, "erin@acme-widgets.com") is None


def test_an_address_at_a_subdomain_or_lookalike_does_not_join(world, client, domain, owner_engine):
    domain("auto", "member")
    for email in ("sub@eng.acme-widgets.com", "look@acme-widgets.com.evil.test"):
        f.make_user(email, "Someone")
        post(client.application.test_client(), "/login", {"email": email, "password": f.PASSWORD})
        assert membership(owner_engine, world.acme, email) is None


# --------------------------------------------------------------------------- suggest
def test_suggest_shows_the_organization_and_asking_mails_who_may_invite_once_a_day(
    world, login, domain, owner_engine, mailbox
):
    erin = f.make_user("erin@acme-widgets.com", "Erin Existing")
    domain("suggest", "member")
    c = login(erin)
    page = c.get(url(None, "/?pick=1")).get_data(as_text=True)
    assert "Ask to join Acme Corporation" in page and "acme-widgets.com" in page
    r = post(c, f"/join/{world.acme.id}")
    assert r.status_code == 302
    assert membership(owner_engine, world.acme, "erin@acme-widgets.com") is None  # asked, not joined
    assert [e["action"] for e in joined_events(owner_engine, world.acme)] == ["member.join_requested"]
    for who in ("owner@acme.test", "admin@acme.test"):
        msg = mailbox.last(who)
        assert msg["Subject"] == "Erin Existing asks to join Acme Corporation"
        assert "http://acme.tenantry.localhost/members/invite" in mailbox.text(msg)
    assert not mailbox.to("member@acme.test")
    mailbox.clear()
    assert post(c, f"/join/{world.acme.id}").status_code == 302  # again: heard already
    assert len(joined_events(owner_engine, world.acme)) == 1
    assert not mailbox.messages


@pytest.mark.parametrize("who", ["outsider", "member"])
def test_asking_without_that_suggestion_is_404(world, login, domain, owner_engine, who):
    domain("suggest", "member")
    c = login(world.users[who])  # example.test / already a member: nothing suggested
    assert "Ask to join" not in c.get(url(None, "/?pick=1")).get_data(as_text=True)
    assert post(c, f"/join/{world.acme.id}").status_code == 404
    assert post(c, "/join/not-a-uuid").status_code == 404
    assert joined_events(owner_engine, world.acme) == []


def test_a_suggested_organization_is_not_suggested_to_its_members(world, login, domain, owner_engine):
    erin = f.make_user("erin@acme-widgets.com", "Erin Existing")
    f.add_member(world.acme, erin, "viewer", status="deactivated")
    domain("suggest", "member")
    assert post(login(erin), f"/join/{world.acme.id}").status_code == 404

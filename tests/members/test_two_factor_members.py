"""The members page and two-factor authentication: a filter for members
without a second factor, and reminders by e-mail (one member, or in bulk),
sent as jobs through the mail machinery (the suite's real SMTP server) and
audited."""

from __future__ import annotations

from tests import factories as f
from tests.conftest import csrf_token, url
from tests.members.conftest import HX, invite_row


def post(c, path, data=None, htmx=False, slug="acme"):
    return c.post(url(slug, path), data={"csrf_token": csrf_token(c, slug), **(data or {})}, headers=HX if htmx else {})


def test_the_without_two_factor_filter_lists_only_members_without_a_factor(world, login):
    f.enrol_totp(world.users["manager"])
    invite_row(world.acme, "pending@example.test")
    c = login(world.users["admin"], "acme")
    html = c.get(url("acme", "/members?two_factor=off")).get_data(as_text=True)
    assert "member@acme.test" in html and "viewer@acme.test" in html
    assert "manager@acme.test" not in html
    assert "pending@example.test" not in html  # an invitation has no account to secure
    assert 'value="off" selected' in html
    everyone = c.get(url("acme", "/members")).get_data(as_text=True)
    assert "manager@acme.test" in everyone and "pending@example.test" in everyone
    # HTMX: the table only, the filter kept in its links.
    r = c.get(url("acme", "/members?two_factor=off&per_page=2"), headers=HX)
    assert "<html" not in r.get_data(as_text=True) and "two_factor=off" in r.get_data(as_text=True)


def test_an_unknown_two_factor_filter_is_422_beside_the_control(world, login):
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", "/members?two_factor=maybe"))
    assert r.status_code == 422
    assert "Choose any member or members without two-factor authentication." in r.get_data(as_text=True)


def test_reminding_one_member_mails_them_once_a_day_and_is_audited(world, login, mailbox, audit_events):
    uid = world.users["member"].id
    c = login(world.users["admin"], "acme")
    page = c.get(url("acme", f"/members/{uid}")).get_data(as_text=True)
    assert 'id="member-two-factor"' in page and "Remind by e-mail" in page
    r = post(c, f"/members/{uid}/remind-2fa")
    assert r.status_code == 302
    msg = mailbox.last("member@acme.test")
    assert msg["Subject"] == "Acme Corporation asks you to set up two-factor authentication"
    assert "/account/security" in msg.get_body(("plain",)).get_content()
    assert [a for a, _ in audit_events] == ["member.two_factor_reminded"]
    again = post(c, f"/members/{uid}/remind-2fa")
    assert again.status_code == 422 and "was reminded recently" in again.get_data(as_text=True)
    assert len(mailbox.to("member@acme.test")) == 1
    assert [a for a, _ in audit_events] == ["member.two_factor_reminded"]


def test_a_member_with_a_factor_gets_no_reminder(world, login, mailbox, audit_events):
    f.enrol_totp(world.users["viewer"])
    c = login(world.users["admin"], "acme")
    assert "Remind by e-mail" not in c.get(url("acme", f"/members/{world.users['viewer'].id}")).get_data(as_text=True)
    r = post(c, f"/members/{world.users['viewer'].id}/remind-2fa")
    assert r.status_code == 302
    assert mailbox.to("viewer@acme.test") == [] and audit_events == []


def test_only_those_who_may_change_the_security_policy_may_remind(world, login, mailbox):
    for role in ("manager", "member"):
        c = login(world.users[role], "acme")
        assert post(c, f"/members/{world.users['viewer'].id}/remind-2fa").status_code == 403
        r = post(c, "/members/bulk", {"action": "remind_2fa", "ids": [f"m:{world.users['viewer'].id}"], "confirm": "1"})
        assert r.status_code == 403
    assert mailbox.to("viewer@acme.test") == []


def test_bulk_reminder_of_every_member_without_two_factor(world, login, mailbox, audit_events):
    f.enrol_totp(world.users["manager"])
    c = login(world.users["admin"], "acme")
    keys = [f"m:{world.users[k].id}" for k in ("manager", "member", "viewer")]
    preview = post(c, "/members/bulk", {"action": "remind_2fa", "ids": keys, "confirm": ""})
    assert preview.status_code == 200 and "E-mail a two-factor reminder to 3 members?" in preview.get_data(as_text=True)
    assert audit_events == []
    r = post(c, "/members/bulk", {"action": "remind_2fa", "ids": keys, "confirm": "1"}, htmx=True)
    assert r.status_code == 200
    assert "2 reminded, 1 already using two-factor authentication." in r.get_data(as_text=True)
    assert {m["To"] for m in mailbox.messages} == {"member@acme.test", "viewer@acme.test"}
    assert [a for a, _ in audit_events] == ["member.two_factor_reminded"] * 2

"""Seats: one definition (active members + pending invitations), counted by
one function, shown alike on the dashboard, the members page and the invite
form, and the same number the plan's limit refuses with."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.conftest import csrf_token, url
from tests.factories import add_member, make_org, make_user
from tests.members.conftest import add_members, invite_row


def _tiny_with_eight_seats_taken():
    """Free plan (10 seats): 7 active, 1 pending, plus what takes no seat."""
    small = make_org("tiny", "Tiny Co", plan="free")
    boss = make_user("boss@tiny.test", "Tiny Boss")
    add_member(small, boss, "owner")
    add_members(small, 6, prefix="crew")  # 7 active members
    invite_row(small, "pending@example.test")  # 8 seats
    invite_row(small, "expired@example.test", expires_in=timedelta(days=-1))  # no seat
    add_members(small, 2, prefix="old", status="deactivated")  # no seat
    return small, boss


def _dashboard_figure(c, slug) -> tuple[str, str]:
    html = c.get(url(slug, "/dashboard")).get_data(as_text=True)
    m = re.search(
        r'stat__label">Seats used</div><div class="stat__value">([^<]+)</div>\s*<div class="stat__hint">([^<]+)</div>',
        html,
    )
    assert m, html
    return m.group(1), m.group(2)


def test_dashboard_members_page_and_invite_form_show_the_same_seat_count(world, login):
    small, boss = _tiny_with_eight_seats_taken()
    c = login(boss, "tiny")
    value, hint = _dashboard_figure(c, "tiny")
    assert value == "8" and hint.startswith("of 10 seats")
    members_page = c.get(url("tiny", "/members")).get_data(as_text=True)
    assert "8 of 10 seats used on the Free plan." in members_page
    assert "A seat is an active member or a pending invitation" in members_page
    # The list shows every row (11) and says why that is not the seat count.
    assert re.search(r'id="members-count">11 listed\s*\(8 take a seat', members_page)
    invite_page = c.get(url("tiny", "/members/invite")).get_data(as_text=True)
    assert "2 of 10 seats left: 8 of 10 seats used on the Free plan" in invite_page


def test_the_seat_count_shown_is_the_one_the_limit_refuses_with(world, login):
    small, boss = _tiny_with_eight_seats_taken()
    c = login(boss, "tiny")
    shown, _hint = _dashboard_figure(c, "tiny")
    free = 10 - int(shown)
    emails = ", ".join(f"n{i}@example.test" for i in range(free + 1))
    r = c.post(
        url("tiny", "/members/invite"), data={"csrf_token": csrf_token(c, "tiny"), "emails": emails, "role": "member"}
    )
    assert r.status_code == 422 and f"{shown} are taken, so only {free} more".encode() in r.data
    emails = ", ".join(f"n{i}@example.test" for i in range(free))
    r = c.post(
        url("tiny", "/members/invite"), data={"csrf_token": csrf_token(c, "tiny"), "emails": emails, "role": "member"}
    )
    assert r.status_code == 302
    assert _dashboard_figure(c, "tiny")[0] == "10"
    assert "10 of 10 seats used on the Free plan." in c.get(url("tiny", "/members")).get_data(as_text=True)


def test_an_unlimited_plan_shows_seats_used_on_the_dashboard_without_a_limit(world, login):
    big = make_org("bigco", "Big Co", plan="enterprise")
    boss = make_user("boss@big.test", "Big Boss")
    add_member(big, boss, "owner")
    add_members(big, 3, prefix="crew")
    add_members(big, 1, prefix="old", status="deactivated")
    c = login(boss, "bigco")
    assert _dashboard_figure(c, "bigco") == ("4", "no seat limit · active members and pending invitations")
    assert "The Enterprise plan has no seat limit." in c.get(url("bigco", "/members")).get_data(as_text=True)

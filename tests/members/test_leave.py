"""Leaving an organization: any member may, after a confirmation page, from
the members page or their account; the last Owner may not (told to transfer
ownership or delete the organization); audited; they land on their
organizations on the apex."""

from __future__ import annotations

from tests.conftest import csrf_token, url
from tests.factories import add_member, make_project, make_user
from tests.members.conftest import membership


def leave(c, slug="acme"):
    return c.post(url(slug, "/members/leave"), data={"csrf_token": csrf_token(c, slug)})


def test_a_member_leaves_after_confirming_and_lands_on_their_organizations(world, login, audit_events):
    c = login(world.users["consultant"], "acme")
    page = c.get(url("acme", "/members/leave"))
    assert page.status_code == 200 and b"Leave Acme Corporation?" in page.data
    assert b"You lose access to Acme Corporation at once" in page.data and b'id="leave-error"' not in page.data
    assert membership(world.acme, world.users["consultant"].id) is not None  # the page changes nothing
    r = leave(c)
    assert r.status_code == 302 and r.headers["Location"].endswith("tenantry.localhost/?pick=1&left=1")
    assert membership(world.acme, world.users["consultant"].id) is None
    assert membership(world.globex, world.users["consultant"].id) is not None  # only this organization
    assert [(a, kw["before"]) for a, kw in audit_events] == [("member.left", {"role": "Member", "status": "active"})]
    # They can no longer open the organization.
    assert c.get(url("acme", "/members")).status_code in (403, 404)
    apex = login(world.users["consultant"])
    picker = apex.get(url(None, "/?pick=1&left=1")).get_data(as_text=True)
    assert "You left the organization." in picker and "Acme Corporation" not in picker and "Globex" in picker


def test_the_last_owner_cannot_leave_and_is_told_to_transfer_ownership_or_delete(world, login, audit_events):
    c = login(world.users["owner"], "acme")
    page = c.get(url("acme", "/members/leave")).get_data(as_text=True)
    assert "You are the last Owner, so you cannot leave." in page and "Transfer ownership" in page
    r = leave(c)
    assert r.status_code == 422
    assert b"Transfer ownership to another member, or delete the organization, first." in r.data
    assert membership(world.acme, world.users["owner"].id).role == "owner"
    assert audit_events == []


def test_an_owner_with_another_owner_may_leave_and_their_projects_stay(world, login, audit_events):
    co = make_user("co@acme.test", "Co Owner")
    add_member(world.acme, co, "owner")
    make_project(world.acme, "Co's project", owner=co)
    r = leave(login(co, "acme"))
    assert r.status_code == 302
    assert membership(world.acme, co.id) is None
    [(action, kw)] = audit_events
    assert action == "member.left" and kw["metadata"]["email"] == "co@acme.test"


def test_leaving_without_the_form_token_changes_nothing(world, login):
    c = login(world.users["member"], "acme")
    r = c.post(url("acme", "/members/leave"), data={})
    assert r.status_code in (400, 422)
    assert membership(world.acme, world.users["member"].id) is not None


def test_account_page_and_members_page_offer_leaving(world, login):
    apex = login(world.users["consultant"]).get(url(None, "/account")).get_data(as_text=True)
    assert 'id="organizations"' in apex and "Acme Corporation" in apex and "Globex" in apex
    assert "acme.tenantry.localhost" in apex and "members/leave" in apex
    members = login(world.users["member"], "acme").get(url("acme", "/members")).get_data(as_text=True)
    assert 'href="/members/leave"' in members


def test_leave_on_the_apex_is_not_found(world, login):
    c = login(world.users["member"])
    assert c.get(url(None, "/members/leave")).status_code == 404
    r = c.post(url(None, "/members/leave"), data={"csrf_token": csrf_token(c)})
    assert r.status_code == 404

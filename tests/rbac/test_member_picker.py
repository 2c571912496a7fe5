"""Role assignment picks a member by searching (not a select of every member):
the search endpoint answers matching active members as listbox options; the
picked member gets the role; without JavaScript the typed text is searched
and the matches offered; bad input is 422 beside the field, nothing changed."""

from __future__ import annotations

import re

from tests.conftest import csrf_token, url
from tests.factories import add_member, make_user
from tests.members.conftest import HX, add_members, audit_events  # noqa: F401  (fixture)
from tests.rbac.conftest import membership


def options(c, role_param, q):
    r = c.get(url("acme", f"/roles/{role_param}/member-options?q={q}"), headers=HX)
    assert r.status_code == 200
    return r, re.findall(
        r'role="option" id="pick-[^"]+" class="picker__option"[^>]*data-label="([^"]+)"', r.get_data(as_text=True)
    )


def assign(c, role_param, **data):
    return c.post(url("acme", f"/roles/{role_param}/members"), data={"csrf_token": csrf_token(c, "acme"), **data})


def test_role_page_has_a_search_box_not_a_select_of_every_member(roles_world, login):
    add_members(roles_world.acme, 250, prefix="crowd")
    page = login(roles_world.users["admin"], "acme").get(url("acme", f"/roles/{roles_world.acme_role.id}"))
    html = page.get_data(as_text=True)
    assert 'role="combobox"' in html and f"/roles/{roles_world.acme_role.id}/member-options" in html
    assert "Crowd 0100" not in html  # members are not listed up front
    assert len(html) < 60_000


def test_search_answers_matching_active_members_without_the_role(roles_world, login):
    w = roles_world
    add_members(w.acme, 3, prefix="crowd")
    add_members(w.acme, 1, prefix="crowdgone", status="deactivated")
    c = login(w.users["admin"], "acme")
    _r, found = options(c, w.acme_role.id, "CROWD")
    assert found == [f"Crowd {i:04d} (crowd{i:04d}@acme.test)" for i in range(3)]  # any case, by name, active only
    _r, found = options(c, "member", "acme")  # holders of Member are left out
    assert "Acme Member (member@acme.test)" not in found and "Acme Viewer (viewer@acme.test)" in found
    _r, found = options(c, w.acme_role.id, "globex")  # another organization's members never match
    assert found == []
    r, found = options(c, w.acme_role.id, "%")  # LIKE wildcards are text
    assert found == [] and "Nobody matches" in r.get_data(as_text=True)


def test_search_offers_at_most_twenty_and_says_when_more_match(roles_world, login):
    add_members(roles_world.acme, 25, prefix="crowd")
    r, found = options(login(roles_world.users["admin"], "acme"), roles_world.acme_role.id, "crowd")
    assert len(found) == 20 and "type more to narrow" in r.get_data(as_text=True)


def test_the_picked_member_gets_the_role(roles_world, login, audit_events):
    w = roles_world
    r = assign(login(w.users["admin"], "acme"), w.acme_role.id, q="Acme Viewer", user_id=str(w.users["viewer"].id))
    assert r.status_code == 302
    assert membership(w.acme, w.users["viewer"]).custom_role_id == w.acme_role.id
    assert [a for a, _ in audit_events] == ["member.role_changed"]


def test_without_javascript_the_typed_text_is_searched_and_the_matches_offered(roles_world, login, audit_events):
    w = roles_world
    c = login(w.users["admin"], "acme")
    r = assign(c, w.acme_role.id, q="viewer@acme")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="picker-matches"' in html
    assert f'type="radio" name="user_id" value="{w.users["viewer"].id}"' in html
    assert audit_events == [] and membership(w.acme, w.users["viewer"]).role == "viewer"
    r = assign(c, w.acme_role.id, q="viewer@acme", user_id=str(w.users["viewer"].id))
    assert r.status_code == 302 and membership(w.acme, w.users["viewer"]).custom_role_id == w.acme_role.id


def test_bad_picks_are_422_beside_the_field_and_change_nothing(roles_world, login, audit_events):
    w = roles_world
    gone = make_user("gone@acme.test", "Gone Person")
    add_member(w.acme, gone, "member", status="deactivated")
    c = login(w.users["admin"], "acme")
    for data, message in [
        ({"q": ""}, "Type a name or e-mail address"),
        ({"q": "nobody-like-this"}, "No active member without this role matches"),
        ({"q": "x" * 101}, "at most 100"),
        ({"q": "g", "user_id": str(w.users["globex_member"].id)}, "Choose an active member"),
        ({"q": "g", "user_id": "junk"}, "Choose an active member"),
        ({"q": "g", "user_id": str(gone.id)}, "Choose an active member"),
    ]:
        r = assign(c, w.acme_role.id, **data)
        assert r.status_code == 422, data
        assert re.search(rf'id="picker-error"[^>]*>[^<]*{re.escape(message)}', r.get_data(as_text=True)), data
    assert audit_events == []


def test_searching_needs_the_permission_to_assign_roles(roles_world, login):
    r = login(roles_world.users["viewer"], "acme").get(url("acme", "/roles/member/member-options?q=a"), headers=HX)
    assert r.status_code == 403

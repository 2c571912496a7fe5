"""Changing members: inline role change (with a demotion step), deactivate,
reactivate, remove, bulk actions with partial refusal — guardrails from rbac,
one audit event per change."""

from __future__ import annotations

import re

from app.extensions import db
from tests.conftest import csrf_token, url
from tests.factories import add_member, make_project, make_user
from tests.members.conftest import HX, add_members, invitation, invite_row, membership


def post(c, path, data=None, htmx=True, slug="acme"):
    return c.post(url(slug, path), data={"csrf_token": csrf_token(c, slug), **(data or {})}, headers=HX if htmx else {})


# --------------------------------------------------------------------------- inline role change
def test_promotion_saves_at_once_and_answers_with_the_row(world, login, audit_events):
    c = login(world.users["admin"], "acme")
    uid = world.users["viewer"].id
    r = post(c, f"/members/{uid}/role", {"role": "manager"})
    assert r.status_code == 200
    assert r.data.lstrip().startswith(f'<tr id="row-m-{uid}"'.encode())
    assert b"Role changed to Manager." in r.data
    assert "HX-Request" in r.headers.get("Vary", "")
    assert membership(world.acme, uid).role == "manager"
    assert [a for a, _ in audit_events] == ["member.role_changed"]


def test_demotion_asks_first_and_changes_only_when_confirmed(world, login, audit_events):
    c = login(world.users["admin"], "acme")
    uid = world.users["manager"].id
    r = post(c, f"/members/{uid}/role", {"role": "viewer"})
    assert r.status_code == 200
    assert b"Demote to <strong>Viewer</strong>?" in r.data and b"projects:create" in r.data
    assert b'name="confirm" value="1"' in r.data and f"/members/{uid}/row".encode() in r.data
    assert membership(world.acme, uid).role == "manager" and audit_events == []
    # Cancel brings the row back unchanged.
    back = c.get(url("acme", f"/members/{uid}/row"), headers=HX)
    assert back.status_code == 200 and b'<option value="manager" selected>' in back.data
    r = post(c, f"/members/{uid}/role", {"role": "viewer", "confirm": "1"})
    assert r.status_code == 200 and b"Role changed to Viewer." in r.data
    assert membership(world.acme, uid).role == "viewer"
    assert [a for a, _ in audit_events] == ["member.role_changed"]


def test_demotion_without_javascript_gets_a_confirmation_page(world, login):
    c = login(world.users["admin"], "acme")
    uid = world.users["manager"].id
    r = post(c, f"/members/{uid}/role", {"role": "member", "next": "/members?q=acme"}, htmx=False)
    assert r.status_code == 200 and b"<html" in r.data and b"Demote Acme Manager?" in r.data
    r = post(c, f"/members/{uid}/role", {"role": "member", "confirm": "1", "next": "/members?q=acme"}, htmx=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/members?q=acme")
    assert membership(world.acme, uid).role == "member"


def test_refused_role_change_shows_the_reason_in_the_row_with_422(world, login):
    c = login(world.users["owner"], "acme")
    r = post(c, f"/members/{world.users['owner'].id}/role", {"role": "admin", "confirm": "1"})
    assert r.status_code == 422 and b"last Owner" in r.data
    assert r.data.lstrip().startswith(b"<tr")
    assert membership(world.acme, world.users["owner"].id).role == "owner"


def test_admin_cannot_promote_to_owner_or_touch_an_owner(world, login):
    c = login(world.users["admin"], "acme")
    r = post(c, f"/members/{world.users['member'].id}/role", {"role": "owner"})
    assert r.status_code == 422 and b"Owner" in r.data
    r = post(c, f"/members/{world.users['owner'].id}/role", {"role": "viewer", "confirm": "1"})
    assert r.status_code == 422
    assert membership(world.acme, world.users["owner"].id).role == "owner"
    # The owner's row shows a badge, not a select, to an admin.
    page = c.get(url("acme", "/members?role=owner")).data
    assert f'id="role-{world.users["owner"].id}"'.encode() not in page
    assert f"/members/{world.users['owner'].id}/deactivate".encode() not in page
    assert f"/members/{world.users['owner'].id}/delete".encode() not in page
    # An Owner sees them.
    page = login(world.users["owner"], "acme").get(url("acme", "/members")).data
    assert f"/members/{world.users['admin'].id}/deactivate".encode() in page


def test_unknown_role_is_422(world, login):
    c = login(world.users["admin"], "acme")
    r = post(c, f"/members/{world.users['member'].id}/role", {"role": "emperor"})
    assert r.status_code == 422 and b"Choose one of this organization" in r.data
    r = post(c, f"/members/{world.users['member'].id}/role", {"role": "emperor"}, htmx=False)
    assert r.status_code == 422 and b"<html" in r.data and b'id="member-error"' in r.data


def test_viewer_cannot_change_roles_or_remove(world, login):
    c = login(world.users["viewer"], "acme")
    uid = world.users["member"].id
    assert post(c, f"/members/{uid}/role", {"role": "viewer", "confirm": "1"}).status_code == 403
    for action in ("deactivate", "reactivate", "delete"):
        assert post(c, f"/members/{uid}/{action}").status_code == 403
    assert membership(world.acme, uid).role == "member"


# --------------------------------------------------------------------------- deactivate / remove
def test_deactivate_and_reactivate_a_member(world, login, audit_events):
    c = login(world.users["admin"], "acme")
    uid = world.users["member"].id
    r = post(c, f"/members/{uid}/deactivate")
    assert r.status_code == 200 and b"badge--deactivated" in r.data and b"Reactivate" in r.data
    assert membership(world.acme, uid).status == "deactivated"
    # A deactivated member cannot open the organization any more.
    assert login(world.users["member"], "acme").get(url("acme", "/dashboard")).status_code == 404
    r = post(c, f"/members/{uid}/reactivate")
    assert r.status_code == 200 and b"badge--active" in r.data
    assert membership(world.acme, uid).status == "active"
    assert [a for a, _ in audit_events] == ["member.deactivated", "member.reactivated"]


def test_cannot_deactivate_or_remove_yourself_or_the_last_owner(world, login):
    c = login(world.users["admin"], "acme")
    r = post(c, f"/members/{world.users['admin'].id}/deactivate")
    assert r.status_code == 422 and b"yourself" in r.data
    owner = login(world.users["owner"], "acme")
    r = post(owner, f"/members/{world.users['owner'].id}/delete")
    assert r.status_code == 422 and b"yourself" in r.data
    r = post(c, f"/members/{world.users['owner'].id}/delete")
    assert r.status_code == 422 and b"Owner" in r.data
    assert membership(world.acme, world.users["owner"].id) is not None


def test_remove_deletes_the_membership_keeps_the_account_and_unowns_projects(world, login, audit_events):
    u = make_user("leaver@acme.test", "Lee Leaver")
    add_member(world.acme, u, "member")
    make_project(world.acme, "Leaver's project", owner=u)
    c = login(world.users["admin"], "acme")
    r = post(c, f"/members/{u.id}/delete")
    assert r.status_code == 200 and b"Lee Leaver was removed from Acme Corporation." in r.data
    assert membership(world.acme, u.id) is None
    assert db.session.get(type(u), u.id) is not None
    assert [a for a, kw in audit_events] == ["member.removed"]
    assert audit_events[0][1]["metadata"]["projects_unowned"] == 1


def test_remove_without_javascript_redirects_with_a_flash(world, login):
    c = login(world.users["admin"], "acme")
    uid = world.users["member"].id
    r = post(c, f"/members/{uid}/delete", {"next": f"/members/{uid}"}, htmx=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/members")  # not the gone member's page
    assert b"was removed" in c.get(url("acme", "/members")).data


# --------------------------------------------------------------------------- bulk
def bulk(c, action, keys=(), confirm="1", **extra):
    """The bulk form, confirmed (``confirm=""``: the first step, which changes nothing)."""
    data = {"action": action, "ids": list(keys), "confirm": confirm, **extra}
    return post(c, "/members/bulk", data)


def test_bulk_role_change_is_a_summary_with_partial_refusal(world, login, audit_events):
    ids = add_members(world.acme, 12, prefix="bulk")
    c = login(world.users["admin"], "acme")
    keys = [f"m:{i}" for i in ids] + [f"m:{world.users['owner'].id}"]
    r = bulk(c, "role", keys, new_role="viewer")
    assert r.status_code == 200
    assert b'id="bulk-summary"' in r.data
    assert b"12 changed, 1 refused: Only an Owner can change the role of an Owner." in r.data
    assert b'id="members-table"' in r.data and b"<html" not in r.data  # the table again
    assert all(membership(world.acme, i).role == "viewer" for i in ids)
    assert membership(world.acme, world.users["owner"].id).role == "owner"
    assert [a for a, _ in audit_events] == ["member.role_changed"] * 12


def test_bulk_refusal_of_the_last_owner_names_it(world, login):
    co_owner = make_user("co@acme.test", "Co Owner")
    add_member(world.acme, co_owner, "owner")
    c = login(world.users["owner"], "acme")
    r = bulk(c, "deactivate", [f"m:{co_owner.id}", f"m:{world.users['owner'].id}", f"m:{world.users['viewer'].id}"])
    assert r.status_code == 200
    assert b"2 deactivated, 1 refused: You cannot deactivate yourself here." in r.data
    assert membership(world.acme, co_owner.id).status == "deactivated"


def test_bulk_ids_of_another_organization_are_not_found_and_untouched(world, login):
    c = login(world.users["admin"], "acme")
    g_inv, _ = invite_row(world.globex, "g@example.test")
    keys = [f"m:{world.users['globex_member'].id}", f"m:{world.users['member'].id}", f"i:{g_inv}"]
    r = bulk(c, "deactivate", keys)
    assert b"1 deactivated, 1 not found, 1 skipped: not members." in r.data
    assert membership(world.globex, world.users["globex_member"].id).status == "active"
    r = bulk(c, "revoke", [f"i:{g_inv}"])
    assert b"0 revoked, 1 not found." in r.data
    assert invitation(world.globex, g_inv).revoked_at is None


def test_bulk_select_all_matching_reruns_the_filter_on_the_server(world, login):
    add_members(world.acme, 30, prefix="crowd")
    add_members(world.acme, 3, prefix="other")
    c = login(world.users["admin"], "acme")
    r = bulk(c, "role", [], new_role="viewer", all_matching="1", q="crowd")
    assert b"30 changed." in r.data
    page = c.get(url("acme", "/members?role=viewer&q=crowd&per_page=100")).data
    assert page.count(b'data-row="m:') == 30
    assert c.get(url("acme", "/members?role=member&q=other")).data.count(b'data-row="m:') == 3


def test_bulk_resend_and_revoke_invitations(world, login, mailbox, audit_events):
    a, _ = invite_row(world.acme, "a@example.test")
    b, _ = invite_row(world.acme, "b@example.test")
    c = login(world.users["admin"], "acme")
    r = bulk(c, "resend", [f"i:{a}", f"i:{b}", f"m:{world.users['member'].id}"])
    assert b"2 resent, 1 skipped: not invitations." in r.data
    assert mailbox.last("a@example.test") and mailbox.last("b@example.test")
    r = bulk(c, "revoke", [f"i:{a}"])
    assert b"1 revoked." in r.data
    assert invitation(world.acme, a).revoked_at is not None
    assert [x for x, _ in audit_events] == ["member.invitation_resent"] * 2 + ["member.invitation_revoked"]


def test_bulk_without_javascript_is_a_confirmation_page_then_a_result_page(world, login, audit_events):
    ids = add_members(world.acme, 2, prefix="nojs")
    c = login(world.users["admin"], "acme")
    data = {"action": "deactivate", "ids": [f"m:{i}" for i in ids], "q": "nojs"}
    r = post(c, "/members/bulk", data, htmx=False)
    assert r.status_code == 200 and b"<html" in r.data and b"Deactivate 2 members?" in r.data
    assert b'name="confirm" value="1"' in r.data and b'href="/members?q=nojs"' in r.data  # Cancel keeps the filter
    assert audit_events == [] and all(membership(world.acme, i).status == "active" for i in ids)
    r = post(c, "/members/bulk", {**data, "confirm": "1"}, htmx=False)
    assert r.status_code == 200 and b"<html" in r.data and b"2 deactivated." in r.data
    assert b"Nojs 0000 &lt;nojs0000@acme.test&gt;" in r.data
    assert [a for a, _ in audit_events] == ["member.deactivated"] * 2


def test_bulk_first_step_says_what_will_happen_and_changes_nothing(world, login, audit_events):
    ids = add_members(world.acme, 3, prefix="step")
    c = login(world.users["admin"], "acme")
    keys = [f"m:{i}" for i in ids] + [f"m:{world.users['manager'].id}", f"m:{world.users['viewer'].id}"]
    r = bulk(c, "role", keys, confirm="", new_role="viewer")
    assert r.status_code == 200 and b"<html" not in r.data
    html = r.get_data(as_text=True)
    assert "Change the role of 5 members to Viewer?" in html
    # Per role they hold now: how many, and which permissions they lose.
    assert re.search(r"<th scope=\"row\">Member</th>\s*<td>3</td>", html)
    assert re.search(r"<th scope=\"row\">Manager</th>\s*<td>1</td>", html) and "projects:create" in html
    assert "1 already has the role Viewer" in html
    assert "Step 0000 &lt;step0000@acme.test&gt;" in html
    assert 'name="confirm" value="1"' in html and html.count('name="ids"') == 5
    assert 'data-dismiss="#bulk-confirm"' in html  # Cancel closes the panel, keeps the selection
    assert audit_events == []
    assert membership(world.acme, ids[0]).role == "member"
    assert membership(world.acme, world.users["manager"].id).role == "manager"


def test_bulk_outcome_names_who_changed_and_who_did_not_and_why(world, login, audit_events):
    co_owner = make_user("co@acme.test", "Co Owner")
    add_member(world.acme, co_owner, "owner")
    c = login(world.users["owner"], "acme")
    keys = [f"m:{world.users['viewer'].id}", f"m:{world.users['member'].id}", f"m:{world.users['owner'].id}"]
    r = bulk(c, "role", keys, new_role="viewer")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "1 changed, 1 already in that role, 1 refused" in html
    not_changed = html[html.index('id="bulk-not-changed"') :]
    not_changed = not_changed[: not_changed.index("</table>")]
    assert "Acme Owner &lt;owner@acme.test&gt;</td><td>You cannot change the role of yourself here." in not_changed
    assert "Acme Viewer &lt;viewer@acme.test&gt;</td><td>already has that role" in not_changed
    assert "Acme Member" not in not_changed
    assert "Acme Member &lt;member@acme.test&gt;" in html[html.index('id="bulk-changed"') :]
    assert [a for a, _ in audit_events] == ["member.role_changed"]


def test_bulk_first_step_with_bad_input_is_422_in_the_panel_and_changes_nothing(world, login, audit_events):
    c = login(world.users["admin"], "acme")
    r = bulk(c, "deactivate", [], confirm="")
    assert r.status_code == 422 and b'id="bulk-confirm-error"' in r.data and b"Select at least one row." in r.data
    r = bulk(c, "role", [f"m:{world.users['member'].id}"], confirm="", new_role="owner")
    assert r.status_code == 422 and b"Choose a role you are allowed to give." in r.data
    r = bulk(c, "", [f"m:{world.users['member'].id}"], confirm="")
    assert r.status_code == 422 and b"Choose an action." in r.data
    assert audit_events == []


def test_bulk_bad_input_is_422(world, login):
    c = login(world.users["admin"], "acme")
    assert bulk(c, "deactivate", []).status_code == 422
    r = bulk(c, "deactivate", ["m:not-a-uuid"])
    assert r.status_code == 422 and b"not valid" in r.data
    r = bulk(c, "explode", [f"m:{world.users['member'].id}"])
    assert r.status_code == 422 and b"Choose an action." in r.data
    r = bulk(c, "role", [f"m:{world.users['member'].id}"], new_role="owner")
    assert r.status_code == 422 and b"Choose a role you are allowed to give." in r.data
    r = bulk(c, "role", [f"m:{world.users['member'].id}"], new_role="viewer", status="zombie")
    assert r.status_code == 422
    assert membership(world.acme, world.users["member"].id).role == "member"


def test_bulk_action_needs_its_own_permission(world, login):
    # A custom role that may invite but not remove.
    from tests.rbac.conftest import make_role

    role = make_role(world.acme, "Recruiter", ["org:view", "members:view", "members:invite"])
    u = make_user("rec@acme.test", "Rita Recruiter")
    add_member(world.acme, u, custom_role_id=role.id)
    c = login(u, "acme")
    assert bulk(c, "deactivate", [f"m:{world.users['member'].id}"]).status_code == 403
    assert bulk(c, "role", [f"m:{world.users['member'].id}"], new_role="viewer").status_code == 403
    inv, _ = invite_row(world.acme, "x@example.test")
    assert bulk(c, "revoke", [f"i:{inv}"]).status_code == 200
    assert login(world.users["viewer"], "acme").post(
        url("acme", "/members/bulk"), data={"action": "revoke"}
    ).status_code in (400, 403)


def test_remove_tells_every_area_through_the_hook_and_audits_what_they_report(world, login, audit_events):
    """A future area (API keys, SCIM...) hangs on the same hook as projects."""
    from app import hooks

    seen = []

    def api_keys_receiver(m):
        seen.append(m.user_id)
        return {"api_keys_revoked": 2}

    uid = world.users["viewer"].id
    with hooks.member_removed.connected(api_keys_receiver):
        r = post(login(world.users["admin"], "acme"), f"/members/{uid}/delete")
    assert r.status_code == 200
    assert seen == [uid]
    metadata = audit_events[0][1]["metadata"]
    assert metadata["api_keys_revoked"] == 2 and metadata["projects_unowned"] == 0


def test_a_refusal_from_a_hook_receiver_removes_nothing(world, login):
    from app import hooks
    from app.errors import UserError

    def refuse(_m):
        raise UserError("They still own the billing account.")

    uid = world.users["viewer"].id
    with hooks.member_removed.connected(refuse):
        r = post(login(world.users["admin"], "acme"), f"/members/{uid}/delete")
    assert r.status_code == 422 and b"They still own the billing account." in r.data
    assert membership(world.acme, uid) is not None

"""Every members route stays inside the host's organization: globex ids on
acme's host are 404, outsiders get 404, anonymous visitors are sent to log in,
and malformed ids are 404 (never 500)."""

from __future__ import annotations

import pytest

from app.auth.models import UserSession
from app.extensions import db
from tests.conftest import UNKNOWN_ID, csrf_token, url
from tests.members.conftest import HX, invitation, invite_row, membership


def member_routes(user_id, invitation_id, session_id):
    """(method, path) of every members route that takes an id."""
    return [
        ("GET", f"/members/{user_id}"),
        ("GET", f"/members/{user_id}/row"),
        ("POST", f"/members/{user_id}/role"),
        ("POST", f"/members/{user_id}/deactivate"),
        ("POST", f"/members/{user_id}/reactivate"),
        ("POST", f"/members/{user_id}/delete"),
        ("POST", f"/members/{user_id}/sessions/{session_id}/revoke"),
        ("POST", f"/members/invitations/{invitation_id}/resend"),
        ("POST", f"/members/invitations/{invitation_id}/revoke"),
    ]


def call(c, method, path, slug="acme", **data):
    if method == "GET":
        return c.get(url(slug, path))
    return c.post(
        url(slug, path), data={"csrf_token": csrf_token(c, slug), "role": "viewer", "confirm": "1", **data}, headers=HX
    )


def test_every_member_route_treats_globex_ids_as_missing_on_acme(world, login, mailbox):
    gm = world.users["globex_member"]
    g_inv, _ = invite_row(world.globex, "g@example.test")
    sess = UserSession(user_id=gm.id, ip="10.0.0.1", user_agent="x")
    db.session.add(sess)
    db.session.commit()
    c = login(world.users["owner"], "acme")  # holds every permission in acme
    for method, path in member_routes(gm.id, g_inv, sess.id):
        r = call(c, method, path)
        assert r.status_code == 404, (method, path, r.status_code)
    # Nothing happened in globex.
    m = membership(world.globex, gm.id)
    assert m.role == "member" and m.status == "active"
    inv = invitation(world.globex, g_inv)
    assert inv.revoked_at is None and inv.sent_at is None
    assert db.session.get(UserSession, sess.id).revoked_at is None
    assert mailbox.messages == []


def test_the_consultant_in_both_orgs_is_still_scoped_by_host(world, login):
    """The consultant is a member of both: their acme membership is found on acme only."""
    cid = world.users["consultant"].id
    c = login(world.users["owner"], "acme")
    r = call(c, "POST", f"/members/{cid}/role", role="viewer")
    assert r.status_code == 200
    assert membership(world.acme, cid).role == "viewer"
    assert membership(world.globex, cid).role == "admin"


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", UNKNOWN_ID])
def test_malformed_or_unknown_ids_are_404(world, login, bad):
    c = login(world.users["owner"], "acme")
    for method, path in member_routes(bad, bad, bad):
        assert call(c, method, path).status_code == 404, (method, path)


def test_session_of_another_user_is_404_on_this_member(world, login):
    other = UserSession(user_id=world.users["viewer"].id, ip="10.0.0.2", user_agent="y")
    db.session.add(other)
    db.session.commit()
    c = login(world.users["owner"], "acme")
    r = call(c, "POST", f"/members/{world.users['member'].id}/sessions/{other.id}/revoke")
    assert r.status_code == 404
    assert db.session.get(UserSession, other.id).revoked_at is None


def test_outsiders_get_404_and_anonymous_visitors_are_sent_to_log_in(world, app, login):
    outsider = login(world.users["outsider"], "acme")
    anonymous = app.test_client()
    paths = ["/members", "/members/invite", "/members/export.csv", f"/members/{world.users['member'].id}"]
    for p in paths:
        assert outsider.get(url("acme", p)).status_code == 404, p
        r = anonymous.get(url("acme", p))
        assert r.status_code == 302 and "tenantry.localhost/login" in r.headers["Location"], p
    r = anonymous.get(url("acme", "/members"), headers=HX)
    assert r.status_code == 401 and "HX-Redirect" in r.headers
    # Globex's members never appear to a globex outsider on acme, nor the reverse.
    g = login(world.users["globex_owner"], "acme")
    assert g.get(url("acme", "/members")).status_code == 404


def test_members_pages_do_not_exist_on_the_apex(world, login):
    c = login(world.users["owner"], None)
    assert c.get(url(None, "/members")).status_code == 404
    assert c.get(url(None, "/members/invite")).status_code == 404


def test_posts_without_csrf_are_refused(world, login):
    c = login(world.users["owner"], "acme")
    r = c.post(url("acme", f"/members/{world.users['member'].id}/deactivate"))
    assert r.status_code == 400
    assert membership(world.acme, world.users["member"].id).status == "active"


def test_invitation_list_rows_of_globex_never_show_on_acme(world, login):
    invite_row(world.globex, "secret-globex-hire@example.test")
    c = login(world.users["consultant"], "acme")
    for q in ("", "?status=invited", "?q=secret"):
        assert b"secret-globex-hire" not in c.get(url("acme", f"/members{q}")).data
    c = login(world.users["manager"], "acme")
    assert b"secret-globex-hire" not in c.get(url("acme", "/members/export.csv")).data

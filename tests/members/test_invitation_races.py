"""An admin changing a pending invitation's role at the very instant the
invitee accepts it (race drill, real threads and transactions): whichever
goes first, the member joins with the role the invitation holds when it is
accepted, and the edit either lands before (302) or is refused (409)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from tests.conftest import csrf_token, url
from tests.drills import at_once
from tests.factories import make_user
from tests.members.conftest import invite_row, membership

ROUNDS = 10


def test_role_change_and_accept_at_once_never_disagree(world, login, owner_engine):
    admin = login(world.users["admin"], "acme")
    token = csrf_token(admin, "acme")
    outcomes = set()
    for n in range(ROUNDS):
        user = make_user(f"racer{n}@example.test", f"Racer {n}")
        inv_id, link_token = invite_row(world.acme, user.email, role="member")
        invitee = login(user, "acme")
        edit, accept = at_once(
            lambda inv_id=inv_id: admin.post(
                url("acme", f"/members/invitations/{inv_id}/role"),
                data={"csrf_token": token, "role": "viewer", "version": "1"},
            ),
            lambda c=invitee, t=link_token: c.get(url("acme", f"/invitations/{t}")),
        )
        assert accept.status_code == 302, f"round {n}: accept {accept.status_code}"
        assert edit.status_code in (302, 409), f"round {n}: edit {edit.status_code}"
        joined = membership(world.acme, user.id)
        with owner_engine.connect() as c:
            stored = c.execute(text("SELECT role FROM invitations WHERE id = :id"), {"id": inv_id}).scalar()
            changed = c.execute(
                text(
                    "SELECT count(*) FROM audit_events WHERE action = 'member.invitation_role_changed' AND target_id = :id"
                ),
                {"id": str(inv_id)},
            ).scalar()
        if edit.status_code == 302:  # the edit went first: the member joins with the new role
            assert (joined.role, stored, changed) == ("viewer", "viewer", 1), f"round {n}"
        else:  # the accept went first: the role they joined with stands, nothing recorded
            assert "was accepted meanwhile" in edit.get_data(as_text=True)
            assert (joined.role, stored, changed) == ("member", "member", 0), f"round {n}"
        outcomes.add(edit.status_code)
    print("edit outcomes seen:", sorted(outcomes))  # which orders occur depends on the scheduler


def test_an_accept_waits_for_a_role_edit_in_progress_and_joins_with_the_edited_role(world, login, owner_engine):
    """The other order, made certain: an edit holds the invitation's row (as
    ``lock_for_edit`` does) when the invitee clicks; the accept waits, then
    joins with the role the edit saved, not the one it first read."""
    user = make_user("waiter@example.test", "Wai Ter")
    inv_id, link_token = invite_row(world.acme, user.email, role="member")
    invitee = login(user, "acme")
    answer = []
    with owner_engine.connect() as edit:
        tx = edit.begin()
        edit.execute(text("SELECT 1 FROM invitations WHERE id = :id FOR UPDATE"), {"id": inv_id})
        t = threading.Thread(target=lambda: answer.append(invitee.get(url("acme", f"/invitations/{link_token}"))))
        t.start()
        time.sleep(1.0)
        assert answer == [], "the accept must wait for the edit holding the row"
        edit.execute(
            text("UPDATE invitations SET role = 'viewer', version = version + 1 WHERE id = :id"), {"id": inv_id}
        )
        tx.commit()
    t.join(15)
    assert answer and answer[0].status_code == 302
    assert membership(world.acme, user.id).role == "viewer"

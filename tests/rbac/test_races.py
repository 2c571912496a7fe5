"""Two admins saving the same custom role at the same instant (issue 12).

Before edits carried versions, both saw "Saved" and one change was silently
lost; the second ``role.updated`` event recorded a stale "before". Now the
editor carries the version it was drawn from: exactly one save wins, the
other answers 409 with the role as it now stands, and every event's
"before" is the previous event's "after".
"""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import csrf_token, url
from tests.drills import at_once

HX = {"HX-Request": "true"}
ROUNDS = 20
# Permissions both an Owner and an Admin hold, so either may grant them.
POOL = ["org:view", "members:view", "audit:view", "projects:view", "projects:create"]


def _stored(owner_engine, role_id):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT version, permissions FROM roles WHERE id = :id"), {"id": role_id}).one()


def _save(client, token, role_id, version, permissions):
    data = {
        "csrf_token": token,
        "name": "Support",
        "description": "Answers customers",
        "permissions": permissions,
        "version": str(version),
    }
    return lambda: client.post(url("acme", f"/roles/{role_id}"), headers=HX, data=data)


def test_two_admins_saving_one_role_at_once_one_wins_the_other_409(roles_world, login, owner_engine):
    w = roles_world
    role_id = w.acme_role.id
    owner, admin = login(w.users["owner"], "acme"), login(w.users["admin"], "acme")
    tokens = csrf_token(owner, "acme"), csrf_token(admin, "acme")
    for n in range(ROUNDS):
        version, before = _stored(owner_engine, role_id)
        wants = [sorted({POOL[n % 5], POOL[(n + 1) % 5]}), sorted({POOL[(n + 2) % 5], POOL[(n + 3) % 5]})]
        responses = at_once(
            _save(owner, tokens[0], role_id, version, wants[0]),
            _save(admin, tokens[1], role_id, version, wants[1]),
        )
        assert sorted(r.status_code for r in responses) == [200, 409], f"round {n}"
        won = 0 if responses[0].status_code == 200 else 1
        lost = responses[1 - won].get_data(as_text=True)
        assert "Saved Support" in responses[won].get_data(as_text=True)
        assert "This was changed by someone else" in lost and "<html" not in lost
        stored_version, stored = _stored(owner_engine, role_id)
        assert stored_version == version + 1
        assert sorted(stored) == wants[won], "the winner's change is what is stored"
        # The loser's editor shows the current state, ready to save on top of it.
        assert f'name="version" type="hidden" value="{version + 1}"' in lost

    with owner_engine.connect() as c:
        events = c.execute(
            text("SELECT changes FROM audit_events WHERE action = 'role.updated' AND target_id = :id ORDER BY id"),
            {"id": str(role_id)},
        ).scalars()
        trail = [e["permissions"] for e in events]
    assert len(trail) == ROUNDS
    assert sorted(trail[0][0]) == sorted(w.acme_role.permissions)
    for previous, event in zip(trail, trail[1:], strict=False):
        assert sorted(event[0]) == sorted(previous[1]), "an event's before is the previous event's after"


def test_saving_from_an_old_version_is_409_with_the_current_role_and_saves_nothing(roles_world, login, owner_engine):
    w = roles_world
    c = login(w.users["admin"], "acme")
    version, _ = _stored(owner_engine, w.acme_role.id)
    first = _save(c, csrf_token(c, "acme"), w.acme_role.id, version, ["org:view"])()
    assert first.status_code == 200
    r = _save(c, csrf_token(c, "acme"), w.acme_role.id, version, ["org:view", "projects:view"])()
    assert r.status_code == 409
    html = r.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="role-editor"') and "changed by someone else" in html
    assert _stored(owner_engine, w.acme_role.id) == (version + 1, ["org:view"])
    # Without htmx: the whole editor page, 409 as well.
    r = c.post(
        url("acme", f"/roles/{w.acme_role.id}"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "X", "permissions": ["org:view"], "version": str(version)},
    )
    assert r.status_code == 409 and "<html" in r.get_data(as_text=True)
    assert _stored(owner_engine, w.acme_role.id)[0] == version + 1


def test_the_editor_carries_the_roles_version(roles_world, login, owner_engine):
    w = roles_world
    c = login(w.users["admin"], "acme")
    version, _ = _stored(owner_engine, w.acme_role.id)
    html = c.get(url("acme", f"/roles/{w.acme_role.id}/edit")).get_data(as_text=True)
    assert f'name="version" type="hidden" value="{version}"' in html


def test_submitting_the_new_role_form_twice_creates_one_role(roles_world, login, owner_engine):
    w = roles_world
    c = login(w.users["admin"], "acme")
    page = c.get(url("acme", "/roles/new")).get_data(as_text=True)
    key = page.split('name="submit_key" type="hidden" value="')[1].split('"')[0]
    data = {"csrf_token": csrf_token(c, "acme"), "name": "Twice", "permissions": ["org:view"], "submit_key": key}
    first, second = (c.post(url("acme", "/roles/"), data=data) for _ in range(2))
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM roles WHERE name = 'Twice'")).scalar() == 1

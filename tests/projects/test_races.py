"""No lost updates, no double submits on projects (issue 12).

Edits carry the version they were drawn from (two saves at the same instant:
one wins, the other is 409 with the project as it now stands); the create
form carries a one-time key (the same submit twice, one after the other or
at the same instant, creates one project).
"""

from __future__ import annotations

from sqlalchemy import text

from app.scoping import tenant_context
from tests.conftest import csrf_token, url
from tests.drills import at_once

ROUNDS = 20


def _stored(owner_engine, project_id):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT version, name FROM projects WHERE id = :id"), {"id": project_id}).one()


def _first_project(world) -> tuple[str, str]:
    with tenant_context(world.acme.id):
        project = world.projects["acme"][0]
        return str(project.id), project.name


def _count(owner_engine, name):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM projects WHERE name = :n"), {"n": name}).scalar()


def _key(client):
    page = client.get(url("acme", "/projects/new")).get_data(as_text=True)
    return page.split('name="submit_key" type="hidden" value="')[1].split('"')[0]


def test_two_admins_saving_one_project_at_once_one_wins_the_other_409(world, login, owner_engine):
    pid, original_name = _first_project(world)
    owner_id = str(world.users["owner"].id)
    a, b = login(world.users["owner"], "acme"), login(world.users["admin"], "acme")
    tokens = csrf_token(a, "acme"), csrf_token(b, "acme")
    for n in range(ROUNDS):
        version, _ = _stored(owner_engine, pid)
        names = f"Round {n} by owner", f"Round {n} by admin"

        def save(client, token, name, version=version):
            data = {"csrf_token": token, "name": name, "owner_id": owner_id, "version": str(version)}
            return lambda: client.post(url("acme", f"/projects/{pid}"), data=data, headers={"HX-Request": "true"})

        responses = at_once(save(a, tokens[0], names[0]), save(b, tokens[1], names[1]))
        assert sorted(r.status_code for r in responses) == [200, 409], f"round {n}"
        won = 0 if responses[0].status_code == 200 else 1
        lost = responses[1 - won].get_data(as_text=True)
        assert "This was changed by someone else" in lost and "<html" not in lost
        assert names[won] in lost, "the 409 form shows the current state"
        assert _stored(owner_engine, pid) == (version + 1, names[won])

    with owner_engine.connect() as c:
        trail = [
            e["name"]
            for e in c.execute(
                text(
                    "SELECT changes FROM audit_events WHERE action = 'project.updated' AND target_id = :id ORDER BY id"
                ),
                {"id": pid},
            ).scalars()
        ]
    assert len(trail) == ROUNDS
    assert trail[0][0] == original_name
    for previous, event in zip(trail, trail[1:], strict=False):
        assert event[0] == previous[1], "an event's before is the previous event's after"


def test_an_edit_from_an_old_version_is_409_and_writes_nothing(world, login, owner_engine, post):
    pid, _ = _first_project(world)
    c = login(world.users["admin"], "acme")
    form = c.get(url("acme", f"/projects/{pid}/edit"), headers={"HX-Request": "true"}).get_data(as_text=True)
    version, _ = _stored(owner_engine, pid)
    assert f'name="version" type="hidden" value="{version}"' in form
    owner_id = str(world.users["owner"].id)
    r = post(c, "acme", f"/projects/{pid}", {"name": "First", "owner_id": owner_id, "version": version})
    assert r.status_code == 302
    r = post(c, "acme", f"/projects/{pid}", {"name": "Second", "owner_id": owner_id, "version": version})
    assert r.status_code == 409
    assert "changed by someone else" in r.get_data(as_text=True) and 'value="First"' in r.get_data(as_text=True)
    assert _stored(owner_engine, pid) == (version + 1, "First")
    # The inline edit (htmx): the form fragment, with the current version to save on top of.
    r = post(c, "acme", f"/projects/{pid}", {"name": "Third", "owner_id": owner_id, "version": version}, htmx=True)
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "<html" not in html and f'value="{version + 1}"' in html
    assert _stored(owner_engine, pid) == (version + 1, "First")


def test_archiving_makes_an_open_edit_form_stale(world, login, owner_engine, post):
    pid, _ = _first_project(world)
    c = login(world.users["admin"], "acme")
    version, _ = _stored(owner_engine, pid)
    assert post(c, "acme", f"/projects/{pid}/archive").status_code == 302
    r = post(c, "acme", f"/projects/{pid}", {"name": "x", "owner_id": str(world.users["owner"].id), "version": version})
    assert r.status_code == 409


def test_the_same_create_submitted_twice_creates_one_project(world, login, owner_engine, post):
    c = login(world.users["admin"], "acme")
    data = {"name": "Double", "owner_id": str(world.users["owner"].id), "submit_key": _key(c)}
    first, second = post(c, "acme", "/projects/", data), post(c, "acme", "/projects/", data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] and "/projects/" in first.headers["Location"]
    assert _count(owner_engine, "Double") == 1
    # A new form (a new key) creates again.
    assert post(c, "acme", "/projects/", {**data, "submit_key": _key(c)}).status_code == 302
    assert _count(owner_engine, "Double") == 2


def test_a_double_click_on_create_creates_one_project(world, login, owner_engine):
    c1, c2 = login(world.users["admin"], "acme"), login(world.users["admin"], "acme")
    for n in range(5):
        key = _key(c1)
        name = f"Clicked twice {n}"

        def submit(client, name=name, key=key):
            owner_id = str(world.users["owner"].id)
            data = {"csrf_token": csrf_token(client, "acme"), "name": name, "owner_id": owner_id, "submit_key": key}
            return lambda: client.post(url("acme", "/projects/"), data=data)

        first, second = at_once(submit(c1), submit(c2))
        assert first.status_code == second.status_code == 302
        assert first.headers["Location"] == second.headers["Location"]
        assert _count(owner_engine, name) == 1


def test_a_refused_create_does_not_use_up_its_key(world, login, owner_engine, post):
    c = login(world.users["admin"], "acme")
    key = _key(c)
    owner_id = str(world.users["globex_owner"].id)  # not a member of acme: refused by the service
    assert post(c, "acme", "/projects/", {"name": "Retry", "owner_id": owner_id, "submit_key": key}).status_code == 422
    r = post(c, "acme", "/projects/", {"name": "Retry", "owner_id": str(world.users["owner"].id), "submit_key": key})
    assert r.status_code == 302 and _count(owner_engine, "Retry") == 1


def test_one_time_keys_belong_to_one_organization(world, login, owner_engine, post):
    key = "k" * 32
    a = login(world.users["consultant"], "acme")
    g = login(world.users["consultant"], "globex")
    assert post(a, "acme", "/projects/", {"name": "Key A", "owner_id": str(world.users["owner"].id), "submit_key": key})
    r = post(
        g, "globex", "/projects/", {"name": "Key G", "owner_id": str(world.users["consultant"].id), "submit_key": key}
    )
    assert r.status_code == 302
    assert _count(owner_engine, "Key G") == 1

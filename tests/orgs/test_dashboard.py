"""The dashboard: a getting-started checklist ticked from real data, shown to
those who may act on it, and the organization's recent activity; a fixed
number of statements (issue 12)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from app import audit
from app.extensions import db
from app.rbac.models import Role
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import csrf_token, url
from tests.fresh_client import fresh_requests  # noqa: F401  (fixture)
from tests.members.conftest import invite_row
from tests.web.test_page_statements import _in_own_thread, statements

STEPS = {"Invite your team": "/members/invite", "Review roles": "/roles/", "Create a project": "/projects/new"}


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):  # noqa: F811
    """Requests run in their own app context and session, as in production."""


@pytest.fixture
def initech(world):
    """A new organization: its owner only, nothing else (beside the shared world)."""
    org = f.make_org("initech", "Initech")
    owner = f.make_user("owner@initech.test", "Ivy Initech")
    f.add_member(org, owner, "owner")
    org.owner = owner
    return org


def _steps(html: str) -> dict[str, bool]:
    """Step label -> done, as the checklist shows them (empty: no checklist)."""
    out = {}
    for item in re.findall(r'<li class="checklist__item([^"]*)">(.*?)</li>', html, re.S):
        label = re.search(r'<a href="[^"]+">([^<]+)</a>', item[1]).group(1)
        out[label] = "is-done" in item[0]
    return out


def _dashboard(client, slug="initech") -> str:
    r = client.get(url(slug, "/dashboard"))
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_new_organization_sees_every_step_to_do_with_links_to_the_pages(initech, login):
    html = _dashboard(login(initech.owner, "initech"))
    assert _steps(html) == dict.fromkeys(STEPS, False)
    for label, path in STEPS.items():
        assert f'<a href="{path}">{label}</a>' in html
    assert "0 of 3 done" in html


def test_steps_are_ticked_from_the_organizations_own_data_only(initech, login):
    c = login(initech.owner, "initech")
    # The shared world's acme and globex have projects, roles and members: none counts here.
    assert not any(_steps(_dashboard(c)).values())
    f.make_project(initech, "First", owner=initech.owner)
    assert _steps(_dashboard(c)) == {"Invite your team": False, "Review roles": False, "Create a project": True}
    invite_row(initech, "new@initech.test")
    with tenant_context(initech.id):
        db.session.add(Role(organization_id=initech.id, name="Support", permissions=["org:view"]))
        db.session.commit()
    # Everything done: nothing left to suggest.
    html = _dashboard(c)
    assert _steps(html) == {} and "Getting started" not in html


def test_a_second_member_with_another_role_ticks_invite_and_roles(initech, login):
    f.add_member(initech, f.make_user("admin@initech.test", "Ada Admin"), "admin")
    assert _steps(_dashboard(login(initech.owner, "initech"))) == {
        "Invite your team": True,
        "Review roles": True,
        "Create a project": False,
    }


@pytest.mark.parametrize(
    "role, shown",
    [("admin", set(STEPS)), ("manager", {"Create a project"}), ("member", {"Create a project"}), ("viewer", set())],
)
def test_steps_are_shown_only_to_those_who_may_act_on_them(initech, login, role, shown):
    user = f.make_user(f"{role}@initech.test", role.title())
    f.add_member(initech, user, role)
    html = _dashboard(login(user, "initech"))
    assert set(_steps(html)) == shown
    assert ("Getting started" in html) == bool(shown)


def test_hiding_the_checklist_needs_org_update_hides_it_for_everyone_and_is_audited(initech, login, owner_engine):
    member = f.make_user("m@initech.test", "Max Member")
    f.add_member(initech, member, "member")
    m = login(member, "initech")
    assert (
        m.post(
            url("initech", "/dashboard/getting-started/hide"), data={"csrf_token": csrf_token(m, "initech")}
        ).status_code
        == 403
    )
    c = login(initech.owner, "initech")
    assert "Hide this list" in _dashboard(c) and "Hide this list" not in _dashboard(m)
    for _ in range(2):  # the second time: nothing to do, nothing recorded
        r = c.post(url("initech", "/dashboard/getting-started/hide"), data={"csrf_token": csrf_token(c, "initech")})
        assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
    assert _steps(_dashboard(c)) == {} and _steps(_dashboard(m)) == {}
    with owner_engine.connect() as conn:
        changes = (
            conn.execute(
                text("SELECT changes FROM audit_events WHERE organization_id = :o AND action = 'org.settings_changed'"),
                {"o": initech.id},
            )
            .scalars()
            .all()
        )
    assert changes == [{"getting_started": ["shown", "hidden"]}]


def test_recent_activity_shows_the_last_ten_events_newest_first(initech, login):
    with tenant_context(initech.id):
        for i in range(12):
            audit.record(
                "project.created", ("project", f"p{i}", f"Project {i:02d}"), after={"name": f"Project {i:02d}"}
            )
        db.session.commit()
    html = _dashboard(login(initech.owner, "initech"))
    panel = html[html.index('id="recent-activity"') :]
    shown = re.findall(r"Project (\d\d)", panel)
    assert shown == [f"{i:02d}" for i in range(11, 1, -1)]
    assert panel.count("<time") == 10  # through time_tag, like every date
    assert 'href="/audit/"' in panel


def test_recent_activity_has_an_empty_state_and_only_audit_readers_see_it(initech, login, world):
    html = _dashboard(login(initech.owner, "initech"))
    assert "Recent activity" in html and "Nothing yet" in html
    assert "Recent activity" not in _dashboard(login(world.users["member"], "acme"), "acme")


def _statements(client, slug) -> tuple[int, list[str]]:
    engines = {db.engine, *db.engines.values()}

    def run():
        client.get(url(slug, "/dashboard"))  # warm: connections, last_seen refresh
        with statements(engines) as seen:
            assert client.get(url(slug, "/dashboard")).status_code == 200
        return seen

    seen = _in_own_thread(run)
    return len(seen), seen


@pytest.mark.parametrize(
    "role, expected",
    [
        # entry; the figures (seats, active projects) and the checklist's steps in one
        # statement; recent activity (one page of the log)
        ("owner", 3),
        # entry; the figures: a viewer has no step to act on and may not read the log
        ("viewer", 2),
    ],
)
def test_dashboard_statements_are_pinned(initech, login, role, expected):
    user = initech.owner if role == "owner" else f.make_user(f"{role}2@initech.test", "V")
    if role != "owner":
        f.add_member(initech, user, role)
    with tenant_context(initech.id):
        for i in range(30):
            audit.record("project.created", ("project", f"p{i}", f"P{i}"), after={"name": f"P{i}"})
        db.session.commit()
    n, seen = _statements(login(user, "initech"), "initech")
    report = "\n".join(f"  {i}. {s[:160]}" for i, s in enumerate(seen, 1))
    assert n == expected, report

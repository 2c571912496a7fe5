"""The viewer: access, isolation, filters in the URL, keyset pages, the event
page, the log's state, HTMX fragments, and streamed, audited exports."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, timedelta

import pytest

from app.database import apply_tenant_settings
from tests.conftest import csrf_token, url


@pytest.fixture
def acme_log(world, record_in):
    """A small, varied acme log plus a globex event that must never show up in acme."""
    owner, member = world.users["owner"], world.users["member"]
    from app import audit

    evs = {
        "renamed": record_in(
            world.acme,
            "project.updated",
            target=("project", "p-1", "Rocket Skates"),
            before={"name": "Rocket Skate"},
            after={"name": "Rocket Skates"},
            actor=audit.Actor.of_user(owner),
        ),
        "role": record_in(
            world.acme,
            "member.role_changed",
            target=("member", str(member.id), "Acme Member"),
            before={"role": "Member"},
            after={"role": "Admin"},
            actor=audit.Actor.of_user(owner),
        ),
        "by_member": record_in(
            world.acme,
            "project.created",
            target=("project", "p-2", "Giant Magnet"),
            after={"name": "Giant Magnet"},
            actor=audit.Actor.of_user(member),
        ),
    }
    record_in(
        world.globex, "project.created", target=("project", "g-1", "Globex Secret Doomsday"), after={"name": "Doomsday"}
    )
    return evs


def get(c, slug, path, **kw):
    return c.get(url(slug, path), **kw)


def test_admin_sees_the_log_newest_first(world, login, acme_log):
    c = login(world.users["admin"], "acme")
    r = get(c, "acme", "/audit/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'id="event-(\d+)"', html)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3
    assert "Rocket Skates" in html and "Changed a member&#39;s role" in html
    assert "Doomsday" not in html  # another organization's event


@pytest.mark.parametrize("who", ["manager", "member", "viewer"])
def test_members_without_audit_view_get_403(world, login, acme_log, who):
    c = login(world.users[who], "acme")
    assert get(c, "acme", "/audit/").status_code == 403
    assert get(c, "acme", f"/audit/{acme_log['role'].id}").status_code == 403


def test_non_member_gets_404(world, login, acme_log):
    c = login(world.users["globex_owner"], "acme")
    assert get(c, "acme", "/audit/").status_code == 404


def test_anonymous_is_sent_to_log_in(client, world):
    r = client.get(url("acme", "/audit/"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_other_organizations_event_is_404(world, login, record_in):
    ev = record_in(world.globex, "project.created", target=("project", "g", "Secret"), after={"name": "x"})
    c = login(world.users["admin"], "acme")
    assert get(c, "acme", f"/audit/{ev.id}").status_code == 404
    assert get(c, "acme", "/audit/999999999").status_code == 404
    assert get(c, "acme", "/audit/not-a-number").status_code == 404


@pytest.mark.parametrize(
    "query,expected",
    [
        ("action=member.role_changed", ["role"]),
        ("target_type=project", ["by_member", "renamed"]),
        ("target_type=project&target=p-1", ["renamed"]),
        ("q=magnet", ["by_member"]),
        ("q=rocket%20ska", ["renamed"]),
        ("q=acme.test", ["by_member", "role", "renamed"]),
    ],
)
def test_filters_narrow_the_list(world, login, acme_log, query, expected):
    c = login(world.users["admin"], "acme")
    html = get(c, "acme", "/audit/?" + query).get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'id="event-(\d+)"', html)]
    assert ids == [acme_log[k].id for k in expected]


def test_actor_and_person_filters(world, login, acme_log):
    c = login(world.users["admin"], "acme")
    member = world.users["member"]
    by = get(c, "acme", f"/audit/?actor={member.id}").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'id="event-(\d+)"', by)] == [acme_log["by_member"].id]
    about = get(c, "acme", f"/audit/?person={member.id}").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'id="event-(\d+)"', about)] == [acme_log["by_member"].id, acme_log["role"].id]
    acting = get(c, "acme", f"/audit/?person={member.id}&as=actor").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'id="event-(\d+)"', acting)] == [acme_log["by_member"].id]
    affected = get(c, "acme", f"/audit/?person={member.id}&as=target").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'id="event-(\d+)"', affected)] == [acme_log["role"].id]
    assert get(c, "acme", f"/audit/?person={member.id}&as=bystander").status_code == 422


def test_member_filter_offers_matching_members_as_you_type(world, login):
    """The picker's options: members of this organization only, any status,
    matched on name or e-mail; the page itself lists no member."""
    c = login(world.users["admin"], "acme")
    options = get(c, "acme", "/audit/people?person_q=viewer@").get_data(as_text=True)
    assert f'data-value="{world.users["viewer"].id}"' in options and "viewer@acme.test" in options
    assert "data-value" not in get(c, "acme", "/audit/people?person_q=@globex.test").get_data(as_text=True)
    assert "No member matches" in get(c, "acme", "/audit/people?person_q=nobody-at-all").get_data(as_text=True)
    page = get(c, "acme", "/audit/").get_data(as_text=True)
    assert "viewer@acme.test" not in page.split('id="audit-results"')[0]


def test_member_filter_without_javascript_resolves_the_typed_text(world, login, acme_log):
    """Without JavaScript only the text arrives: one match filters by that
    member, several are offered as links, none is a 422 beside the field."""
    c = login(world.users["admin"], "acme")
    member = world.users["member"]
    one = get(c, "acme", "/audit/?person_q=member@acme.test").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'id="event-(\d+)"', one)] == [acme_log["by_member"].id, acme_log["role"].id]
    several = get(c, "acme", "/audit/?person_q=acme.test").get_data(as_text=True)
    assert "Several members match" in several and f"person={member.id}" in several
    none = get(c, "acme", "/audit/?person_q=nobody-at-all")
    assert none.status_code == 422 and "No member matches" in none.get_data(as_text=True)


def test_filter_labels_never_name_another_organizations_users(world, login, acme_log, record_in):
    """An admin typing another organization's user id into a filter learns
    nothing about that person; this organization's own people keep their labels."""
    from app import audit

    c = login(world.users["admin"], "acme")
    stranger = world.users["globex_member"]
    for name in ("actor", "person"):
        html = get(c, "acme", f"/audit/?{name}={stranger.id}").get_data(as_text=True)
        assert "Globex Member" not in html and "member@globex.test" not in html
    html = get(c, "acme", f"/audit/?actor={world.users['member'].id}").get_data(as_text=True)
    assert "Acme Member &lt;member@acme.test&gt;" in html
    # A former member recorded in acme's log is named as the log recorded them.
    outsider = world.users["outsider"]
    record_in(
        world.acme,
        "project.created",
        target=("project", "p-9", "Nine"),
        after={"name": "Nine"},
        actor=audit.Actor.of_user(outsider),
    )
    html = get(c, "acme", f"/audit/?actor={outsider.id}").get_data(as_text=True)
    assert "Otto Outsider &lt;outsider@example.test&gt;" in html


def test_filter_labels_resolve_members_invitees_and_recorded_people_only(app, world):
    from app.auditlog.services import label_for
    from app.scoping import tenant_context
    from tests.members.conftest import invite_row

    invite_row(world.acme, "OUTSIDER@example.test")
    with tenant_context(world.acme.id):
        assert label_for(world.acme.id, world.users["viewer"].id) == "Acme Viewer <viewer@acme.test>"
        # An invitee is named by the address acme invited, not by their account.
        assert label_for(world.acme.id, world.users["outsider"].id) == "OUTSIDER@example.test"
        assert label_for(world.acme.id, world.users["globex_owner"].id) is None
    with tenant_context(world.globex.id):
        assert label_for(world.globex.id, world.users["outsider"].id) is None


def test_date_range_filter(world, login, acme_log):
    from app.util import utcnow

    c = login(world.users["admin"], "acme")
    today = utcnow().date()
    html = get(c, "acme", f"/audit/?from={today}&to={today}").get_data(as_text=True)
    assert len(re.findall(r'id="event-\d+"', html)) == 3
    html = get(c, "acme", f"/audit/?to={today - timedelta(days=1)}").get_data(as_text=True)
    assert re.findall(r'id="event-\d+"', html) == []
    html = get(c, "acme", f"/audit/?from={today + timedelta(days=1)}").get_data(as_text=True)
    assert re.findall(r'id="event-\d+"', html) == []


@pytest.mark.parametrize(
    "query,field",
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("action=project.teleported", "action"),
        ("actor=nobody", "actor"),
        ("before=abc", "before"),
        ("from=2026-05-02&to=2026-05-01", "to"),
    ],
)
def test_bad_filter_is_422_with_the_reason(world, login, acme_log, query, field):
    c = login(world.users["admin"], "acme")
    r = get(c, "acme", "/audit/?" + query)
    assert r.status_code == 422
    assert "Check the filters" in r.get_data(as_text=True)


def test_keyset_pages_never_use_offset(world, login, record_in, app):
    from sqlalchemy import event

    from app.extensions import db

    created = [
        record_in(
            world.acme, "project.updated", target=("project", f"p{i}", f"P{i}"), before={"n": i}, after={"n": i + 1}
        ).id
        for i in range(120)
    ]
    c = login(world.users["admin"], "acme")
    statements = []
    listener = lambda conn, cur, stmt, *a: statements.append(stmt)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        p1 = get(c, "acme", "/audit/").get_data(as_text=True)
        ids1 = [int(x) for x in re.findall(r'id="event-(\d+)"', p1)]
        older = re.search(r'href="(/audit/\?before=\d+)"', p1).group(1)
        p2 = get(c, "acme", older).get_data(as_text=True)
        ids2 = [int(x) for x in re.findall(r'id="event-(\d+)"', p2)]
        older2 = re.search(r'href="(/audit/\?before=\d+)"', p2).group(1)
        p3 = get(c, "acme", older2).get_data(as_text=True)
        ids3 = [int(x) for x in re.findall(r'id="event-(\d+)"', p3)]
        newer = re.search(r'href="(/audit/\?after=\d+)"', p3).group(1)
        back = [int(x) for x in re.findall(r'id="event-(\d+)"', get(c, "acme", newer).get_data(as_text=True))]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    newest_first = sorted(created, reverse=True)
    assert ids1 == newest_first[:50] and ids2 == newest_first[50:100] and ids3 == newest_first[100:]
    assert back == ids2
    assert 'rel="next"' not in p3.split('class="pagination"')[1].split("</nav>")[0].replace(
        'is-disabled" aria-disabled="true">Older', ""
    )  # no "Older" link on the last page
    assert not [s for s in statements if "OFFSET" in s.upper()]


def test_htmx_gets_the_results_fragment(world, login, acme_log):
    c = login(world.users["admin"], "acme")
    r = get(c, "acme", "/audit/?action=member.role_changed", headers={"HX-Request": "true"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    assert html.lstrip().startswith("{#") is False and 'id="audit-results"' in html
    assert "<html" not in html and 'id="audit-filter"' not in html
    full = get(c, "acme", "/audit/?action=member.role_changed")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_event_page_shows_the_diff_context_and_links(world, login, acme_log):
    c = login(world.users["admin"], "acme")
    ev = acme_log["role"]
    html = get(c, "acme", f"/audit/{ev.id}").get_data(as_text=True)
    assert 'class="diff__before">Member</del>' in html and 'class="diff__after">Admin</ins>' in html
    assert "Changed a member&#39;s role" in html
    assert f"target_type=member&amp;target={world.users['member'].id}" in html  # events for this target
    assert f"actor={world.users['owner'].id}" in html  # events by this actor
    assert "Signature" in html and "valid" in html


def test_event_page_flags_an_edited_event(world, login, acme_log, owner_engine):
    from sqlalchemy import text

    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET target_label = 'x' WHERE id = :e"), {"e": acme_log["role"].id})
    c = login(world.users["admin"], "acme")
    html = get(c, "acme", f"/audit/{acme_log['role'].id}").get_data(as_text=True)
    assert "does not match: edited" in html


def test_log_state_shows_verification_and_retention(world, login, acme_log, verify, owner_engine):
    from sqlalchemy import text

    c = login(world.users["admin"], "acme")
    html = get(c, "acme", "/audit/").get_data(as_text=True)
    assert "Not verified yet" in html and "keeps events for 365 days" in html
    assert verify("acme").ok
    html = get(c, "acme", "/audit/").get_data(as_text=True)
    assert "verified intact" in html
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'org.deleted' WHERE id = :e"), {"e": acme_log["role"].id})
    assert not verify("acme").ok
    html = get(c, "acme", "/audit/").get_data(as_text=True)
    assert "Broken" in html and "edited after it was recorded" in html
    g = login(world.users["globex_owner"], "globex")
    assert "keeps events for 30 days" in get(g, "globex", "/audit/").get_data(as_text=True)


def export(c, fmt, **filters):
    data = {"csrf_token": csrf_token(c, "acme"), "format": fmt, **filters}
    return c.post(url("acme", "/audit/export"), data=data)


def test_csv_export_streams_the_current_filter_and_is_audited(world, login, acme_log, events):
    c = login(world.users["admin"], "acme")
    r = export(c, "csv", target_type="project")
    assert r.status_code == 200 and r.is_streamed
    assert r.headers["Content-Disposition"] == 'attachment; filename="acme-audit.csv"'
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [int(x["id"]) for x in rows] == [acme_log["by_member"].id, acme_log["renamed"].id]
    assert json.loads(rows[1]["changes"]) == {"name": ["Rocket Skate", "Rocket Skates"]}
    (ev,) = events(world.acme, "audit.exported")
    assert ev["metadata"] == {"format": "csv", "filters": {"target_type": "project"}}
    assert ev["actor_id"] == world.users["admin"].id


def test_jsonl_export_holds_only_this_organization(world, login, acme_log):
    c = login(world.users["admin"], "acme")
    r = export(c, "jsonl")
    lines = [json.loads(x) for x in r.get_data(as_text=True).splitlines()]
    assert r.mimetype == "application/x-ndjson"
    assert {x["id"] for x in lines} >= {e.id for e in acme_log.values()}
    assert all("Doomsday" not in json.dumps(x) for x in lines)
    assert {x["action"] for x in lines} >= {"member.role_changed", "audit.exported"}  # its own event, committed first


def test_export_needs_audit_export(world, login, acme_log, events):
    from app.extensions import db
    from app.rbac.models import Role
    from app.scoping import tenant_context
    from tests import factories as f

    with tenant_context(world.acme.id):
        role = Role(organization_id=world.acme.id, name="Auditor", permissions=["org:view", "audit:view"])
        db.session.add(role)
        db.session.commit()
        role_id = role.id
    auditor = f.make_user("auditor@acme.test", "Ann Auditor")
    f.add_member(world.acme, auditor, custom_role_id=role_id)
    c = login(auditor, "acme")
    assert get(c, "acme", "/audit/").status_code == 200
    assert export(c, "csv").status_code == 403
    assert events(world.acme, "audit.exported") == []


def test_export_bad_format_is_422_and_not_audited(world, login, acme_log, events):
    c = login(world.users["admin"], "acme")
    assert export(c, "xlsx").status_code == 422
    assert export(c, "csv", **{"from": "soon"}).status_code == 422
    assert events(world.acme, "audit.exported") == []


def test_export_without_csrf_is_refused(world, login, acme_log, events):
    c = login(world.users["admin"], "acme")
    r = c.post(url("acme", "/audit/export"), data={"format": "csv"})
    assert r.status_code == 400
    assert events(world.acme, "audit.exported") == []


def test_csv_export_defuses_formulas(world, login, record_in):
    record_in(world.acme, "project.created", target=("project", "p", '=HYPERLINK("http://evil")'), after={"n": 1})
    c = login(world.users["admin"], "acme")
    rows = list(csv.DictReader(io.StringIO(export(c, "csv", action="project.created").get_data(as_text=True))))
    assert rows[0]["target_label"].startswith("'=")


def test_platform_log_is_for_super_admins_on_the_apex(world, login, client):
    from tests import factories as f

    client.post(
        url(None, "/login"),
        data={"csrf_token": csrf_token(client), "email": "ghost@nowhere.test", "password": "x-y-z-guess"},
    )
    sup = f.make_user("super@tenantry.test", "Sam Super", superadmin=True)
    s = login(sup, None)
    r = s.get(url(None, "/platform/audit"))
    assert r.status_code == 200 and "Failed log-in attempt" in r.get_data(as_text=True)
    ev_id = re.search(r'id="event-(\d+)"', r.get_data(as_text=True)).group(1)
    assert s.get(url(None, f"/platform/audit/{ev_id}")).status_code == 200
    for path in ("/audit/platform", "/platform/audit"):
        assert login(world.users["owner"], None).get(url(None, path)).status_code == 404
        assert login(world.users["owner"], "acme").get(url("acme", path)).status_code == 404


def test_the_old_platform_log_urls_redirect_super_admins_to_the_console(world, login):
    from tests import factories as f

    s = login(f.make_user("super@tenantry.test", "Sam Super", superadmin=True), None)
    r = s.get(url(None, "/audit/platform?action=auth.login_failed"))
    assert r.status_code == 301 and r.headers["Location"].endswith("/platform/audit?action=auth.login_failed")
    r = s.get(url(None, "/audit/platform/7"))
    assert r.status_code == 301 and r.headers["Location"].endswith("/platform/audit/7")


@pytest.mark.parametrize("sealed", [False, True])
def test_free_text_finds_events_by_actor_and_target_names(world, login, acme_log, seal, sealed, record_in, monkeypatch):
    """Sealed events are found through the names the sealer remembered,
    unsealed ones directly; a word matching many names falls back to a scan."""
    if sealed:
        seal()
    c = login(world.users["admin"], "acme")

    def ids(q, **extra):
        qs = "&".join([f"q={q}"] + [f"{k}={v}" for k, v in extra.items()])
        return [int(x) for x in re.findall(r'id="event-(\d+)"', get(c, "acme", "/audit/?" + qs).get_data(as_text=True))]

    assert ids("magnet") == [acme_log["by_member"].id]
    assert ids("member%40acme") == [acme_log["by_member"].id, acme_log["role"].id]  # actor e-mail or target name
    assert ids("rocket%20skates") == [acme_log["renamed"].id]
    assert ids("doomsday") == []  # globex's
    assert ids("magnet", action="project.updated") == []
    assert ids("acme", person=world.users["member"].id) == [acme_log["by_member"].id, acme_log["role"].id]
    from app.auditlog import services

    monkeypatch.setattr(services, "LABEL_CAP", 1)  # "acme" now matches more names than the cap
    assert ids("acme") == sorted((e.id for e in acme_log.values()), reverse=True)


def test_date_range_is_exact_at_the_edges_despite_reordering(app, world, login):
    """Concurrent writers can take ids and times in slightly different orders:
    the date filter still includes exactly the events inside the range."""
    from datetime import datetime
    from datetime import time as dtime

    from sqlalchemy import create_engine
    from sqlalchemy import text as sql
    from sqlalchemy.pool import NullPool

    from app.audit import Actor, event_row
    from app.audit.models import AuditEvent
    from app.util import utcnow

    day = utcnow().date() - timedelta(days=3)
    midnight = datetime.combine(day, dtime.min, UTC)
    offsets = [  # (seconds from midnight of `day`, inside?) in id order
        (-3600, False),
        (-0.5, False),
        (0.1, True),
        (-0.2, False),
        (1, True),
        (3600, True),
        (86400 - 0.3, True),
        (86400 + 0.2, False),
        (86400 - 0.1, True),
        (86400 + 1.5, False),
        (90000, False),
    ]
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    ids = []
    with engine.begin() as c:
        apply_tenant_settings(c, world.acme.id)
        for secs, _ in offsets:
            eid = c.execute(sql("SELECT nextval('audit_events_id_seq')")).scalar()
            c.execute(
                AuditEvent.__table__.insert(),
                [
                    event_row(
                        world.acme.id,
                        eid,
                        midnight + timedelta(seconds=secs),
                        "project.updated",
                        Actor.system(),
                        ("project", "p", "P"),
                    )
                ],
            )
            ids.append(eid)
    engine.dispose()
    c = login(world.users["admin"], "acme")

    def listed(query):
        html = get(c, "acme", "/audit/?" + query).get_data(as_text=True)
        return [int(x) for x in re.findall(r'id="event-(\d+)"', html)]

    def expected(pred):
        return sorted((i for i, (secs, _) in zip(ids, offsets, strict=False) if pred(secs)), reverse=True)

    assert listed(f"from={day}&to={day}") == expected(lambda s: 0 <= s < 86400)
    assert listed(f"from={day}&to={day}") == sorted(
        (i for i, (_, ok) in zip(ids, offsets, strict=False) if ok), reverse=True
    )
    assert listed(f"from={day}") == expected(lambda s: s >= 0)
    assert listed(f"to={day}") == expected(lambda s: s < 86400)
    assert listed(f"to={day - timedelta(days=1)}") == expected(lambda s: s < 0)
    assert listed(f"from={day + timedelta(days=1)}") == expected(lambda s: s >= 86400)


def test_cached_audit_rows_equal_a_fresh_render(world, login, acme_log):
    """The rows come from ``FragmentCache``: a second page view (all hits)
    and a view after the cache is emptied (all misses) are the same HTML."""
    from app.auditlog import views

    c = login(world.users["admin"], "acme")
    views._ROWS.clear()
    first = _tbody(get(c, "acme", "/audit/").get_data(as_text=True))
    hits = views._ROWS.hits
    again = _tbody(get(c, "acme", "/audit/").get_data(as_text=True))
    assert views._ROWS.hits == hits + 3
    views._ROWS.clear()
    fresh = _tbody(get(c, "acme", "/audit/").get_data(as_text=True))
    assert first == again == fresh and first.count("<tr id=") == 3


def test_cached_audit_rows_follow_the_time_zone_and_the_filters(world, login, acme_log, owner_sql):
    """Every input of a row is in its key: a new time zone or a filter in the
    row links gives new rows, never a kept one."""
    c = login(world.users["admin"], "acme")
    utc = _tbody(get(c, "acme", "/audit/").get_data(as_text=True))
    assert "UTC</time>" in utc
    owner_sql(
        'UPDATE organizations SET settings = settings || \'{"timezone": "Asia/Tokyo"}\'::jsonb WHERE id = :o',
        o=world.acme.id,
    )
    from app.extensions import db

    db.session.expire_all()  # a served request loads the organization afresh; the tests' session kept it
    tokyo = _tbody(get(c, "acme", "/audit/").get_data(as_text=True))
    assert "JST</time>" in tokyo and "UTC</time>" not in tokyo
    filtered = _tbody(get(c, "acme", "/audit/?target_type=project").get_data(as_text=True))
    assert "target_type=project" in filtered.split('title="Events by this actor"')[0]


def _tbody(html: str) -> str:
    return html[html.index("<tbody>") : html.index("</tbody>")]

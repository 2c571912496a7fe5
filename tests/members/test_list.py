"""The members list: search, filters, sort, keyset pages, HTMX fragment, 422s,
the CSV export — always inside one organization."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import update

from app.auth.models import User
from app.extensions import db
from tests.conftest import url
from tests.factories import add_member, make_user
from tests.members.conftest import HX, add_members, invite_row


def names_in(html: bytes) -> list[str]:
    """Member names and invitation e-mails of the rendered rows, in order."""
    out = []
    for m in re.finditer(
        rb'<tr id="row-(m|i)-[^"]+" data-row="[^"]+">.*?<th scope="row">(.*?)</th>\s*<td>([^<]*)</td>', html, re.S
    ):
        kind, cell, email = m.groups()
        if kind == b"m":
            out.append(re.sub(rb"<[^>]+>|\(you\)", b"", cell).strip().decode())
        else:
            out.append(email.decode())
    return out


def next_link(html: bytes, rel: str = "next") -> str | None:
    m = re.search(rb'href="(/members\?[^"]+)" rel="' + rel.encode() + rb'"', html)
    return m.group(1).decode().replace("&amp;", "&") if m else None


def test_members_page_lists_members_and_pending_invitations_of_this_organization_only(world, login):
    invite_row(world.acme, "newbie@example.test")
    invite_row(world.globex, "globex-invitee@example.test")
    c = login(world.users["viewer"], "acme")
    r = c.get(url("acme", "/members"))
    assert r.status_code == 200
    shown = names_in(r.data)
    assert "Acme Owner" in shown and "Casey Consultant" in shown and "newbie@example.test" in shown
    assert "Globex Owner" not in shown and "Globex Member" not in shown
    assert b"globex-invitee" not in r.data
    assert b"badge--invited" in r.data


def test_viewer_sees_the_list_without_any_control_that_changes_it(world, login):
    c = login(world.users["viewer"], "acme")
    r = c.get(url("acme", "/members"))
    assert r.status_code == 200
    assert b'name="role" hx-post' not in r.data and b"/deactivate" not in r.data
    assert b'id="bulk-form"' not in r.data and b"Invite people" not in r.data


def test_without_javascript_a_rows_role_is_changed_on_the_members_page(world, login):
    """The row's role select saves through HTMX; its no-script fallback is a
    link to the member's page, whose form changes the role (no CSRF token
    in any row)."""
    owner = login(world.users["owner"], "acme")
    member = world.users["member"]
    html = owner.get(url("acme", "/members")).get_data(as_text=True)
    assert f'href="/members/{member.id}#member-role">Change' in html
    rows = html[html.index("<tbody") : html.index("</tbody>")]
    assert 'name="csrf_token"' not in rows
    page = owner.get(url("acme", f"/members/{member.id}")).get_data(as_text=True)
    assert 'id="member-role"' in page


def test_a_viewer_sees_each_members_role_as_a_badge(world, login):
    html = login(world.users["viewer"], "acme").get(url("acme", "/members")).get_data(as_text=True)
    assert '<span class="badge badge--' in html and ">Owner</span>" in html and ">Viewer</span>" in html


def test_search_matches_name_or_email_case_insensitively(world, login):
    c = login(world.users["admin"], "acme")
    assert names_in(c.get(url("acme", "/members?q=CONSULT")).data) == ["Casey Consultant"]
    assert names_in(c.get(url("acme", "/members?q=viewer%40acme")).data) == ["Acme Viewer"]
    # LIKE wildcards typed by the user are literal characters.
    assert names_in(c.get(url("acme", "/members?q=%25")).data) == []
    assert names_in(c.get(url("acme", "/members?q=_")).data) == []


def test_search_follows_a_renamed_user(world, login):
    """The search keys are copies kept by a trigger: a rename shows up at once."""
    db.session.execute(update(User).where(User.id == world.users["member"].id).values(name="Zelda Zebra"))
    db.session.commit()
    c = login(world.users["admin"], "acme")
    assert names_in(c.get(url("acme", "/members?q=zebra")).data) == ["Zelda Zebra"]
    assert names_in(c.get(url("acme", "/members?q=acme+member")).data) == []


def test_filters_by_role_and_status_and_reflects_them_in_links(world, login):
    add_members(world.acme, 3, prefix="gone", status="deactivated", role="viewer")
    invite_row(world.acme, "pending@example.test", role="viewer")
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", "/members?role=viewer"))
    assert sorted(names_in(r.data)) == ["Acme Viewer", "Gone 0000", "Gone 0001", "Gone 0002", "pending@example.test"]
    r = c.get(url("acme", "/members?role=viewer&status=deactivated"))
    assert names_in(r.data) == ["Gone 0000", "Gone 0001", "Gone 0002"]
    assert b'value="deactivated" selected' in r.data
    # Sort links keep the filters.
    assert b"/members?role=viewer&amp;status=deactivated&amp;sort=email&amp;dir=asc" in r.data
    r = c.get(url("acme", "/members?status=invited"))
    assert names_in(r.data) == ["pending@example.test"]
    r = c.get(url("acme", "/members?status=active&role=owner"))
    assert names_in(r.data) == ["Acme Owner"]


def test_filter_by_custom_role(world, login):
    from tests.rbac.conftest import make_role

    role = make_role(world.acme, "Support", ["org:view", "members:view"])
    u = make_user("sup@acme.test", "Sue Support")
    add_member(world.acme, u, custom_role_id=role.id)
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members?role=custom:{role.id}"))
    assert names_in(r.data) == ["Sue Support"]
    assert b"badge--custom" in r.data or b"Support</option>" in r.data


@pytest.mark.parametrize(
    "sort,direction,first",
    [
        ("name", "asc", "Acme Admin"),
        ("name", "desc", "Casey Consultant"),
        ("email", "asc", "Acme Admin"),
        ("email", "desc", "Acme Viewer"),
    ],
)
def test_sorts_by_name_and_email(world, login, sort, direction, first):
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members?sort={sort}&dir={direction}"))
    assert r.status_code == 200
    assert names_in(r.data)[0] == first
    assert b'aria-sort="' + (b"ascending" if direction == "asc" else b"descending") + b'"' in r.data


def test_sorts_by_joined_and_last_seen(world, login):
    from datetime import timedelta

    from app.util import utcnow

    ids = add_members(world.acme, 3, prefix="late", start=utcnow() + timedelta(hours=1))  # +60, +59, +58 min
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", "/members?sort=joined&dir=desc"))
    assert names_in(r.data)[:3] == ["Late 0000", "Late 0001", "Late 0002"]
    r = c.get(url("acme", "/members?sort=joined&dir=asc"))
    assert names_in(r.data)[-3:] == ["Late 0002", "Late 0001", "Late 0000"]
    # The admin's own visit just stamped their last-seen: most recent first.
    r = c.get(url("acme", "/members?sort=last_seen&dir=desc"))
    assert names_in(r.data)[0] == "Acme Admin"
    assert ids  # never-seen members sort last, and are shown as "Never"
    assert b"Never" in r.data


def test_keyset_pages_walk_every_row_once_forwards_and_backwards(world, login):
    add_members(world.acme, 23, prefix="pager")
    for i in range(4):
        invite_row(world.acme, f"pager-invite{i}@example.test")
    c = login(world.users["admin"], "acme")
    expected_total = 6 + 23 + 4
    for sort, direction in [("name", "asc"), ("email", "desc"), ("joined", "desc"), ("last_seen", "asc")]:
        path = f"/members?per_page=5&sort={sort}&dir={direction}"
        seen, pages = [], 0
        first = c.get(url("acme", path))
        r = first
        while True:
            assert r.status_code == 200, r.data[:300]
            rows = names_in(r.data)
            assert 0 < len(rows) <= 5
            seen += rows
            pages += 1
            nxt = next_link(r.data)
            if nxt is None:
                break
            r = c.get(url("acme", nxt), headers=HX)
        assert len(seen) == expected_total and len(set(seen)) == expected_total, (sort, direction)
        assert pages == 7
        # And back again from the last page.
        back = []
        r = c.get(url("acme", path + "&last=1"))
        while True:
            back = names_in(r.data) + back
            prev = next_link(r.data, "prev")
            if prev is None:
                break
            r = c.get(url("acme", prev), headers=HX)
        assert back == seen, (sort, direction)


def test_count_is_capped_for_large_results(world, login, monkeypatch):
    from app.members import listing

    monkeypatch.setattr(listing, "COUNT_CAP", 10)
    add_members(world.acme, 30, prefix="many")
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", "/members?per_page=5"))
    assert b"10+ listed" in r.data
    r = c.get(url("acme", "/members?q=many+0001"))
    assert b'id="members-count">1 matching' in r.data


def test_htmx_request_gets_the_table_fragment_with_vary(world, login):
    c = login(world.users["admin"], "acme")
    full = c.get(url("acme", "/members?q=acme"))
    assert full.status_code == 200 and b"<html" in full.data and b'id="members-filter"' in full.data
    assert "HX-Request" in full.headers.get("Vary", "")
    frag = c.get(url("acme", "/members?q=acme"), headers=HX)
    assert frag.status_code == 200
    assert b"<html" not in frag.data and b'id="members-filter"' not in frag.data
    assert b'id="members-table"' in frag.data and b'hx-swap-oob="true"' in frag.data
    assert "HX-Request" in frag.headers.get("Vary", "")
    assert names_in(frag.data) == names_in(full.data)
    # A history restore gets the whole page.
    restore = c.get(url("acme", "/members?q=acme"), headers={**HX, "HX-History-Restore-Request": "true"})
    assert b"<html" in restore.data


def test_search_box_is_a_live_search_that_pushes_the_url(world, login):
    c = login(world.users["admin"], "acme")
    html = c.get(url("acme", "/members")).data.decode()
    box = re.search(r'<input type="search"[^>]*>', html, re.S).group(0)
    assert 'hx-trigger="input changed delay:300ms, search"' in box
    assert 'hx-push-url="true"' in box and 'hx-target="#members-results"' in box
    assert 'method="get"' in html  # works without JavaScript


@pytest.mark.parametrize(
    "query,field",
    [
        ("sort=password", "Sort by"),
        ("dir=sideways", "ascending or descending"),
        ("status=zombie", "active, deactivated or invited"),
        ("role=emperor", "this organization"),
        ("per_page=0", "between 1 and"),
        ("per_page=abc", "between 1 and"),
        ("q=" + "x" * 101, "at most 100"),
        ("after=not-a-cursor", "not valid"),
    ],
)
def test_bad_list_parameters_answer_422_with_the_reason(world, login, query, field):
    c = login(world.users["admin"], "acme")
    r = c.get(url("acme", f"/members?{query}"))
    assert r.status_code == 422
    assert field.encode() in r.data
    assert c.get(url("acme", f"/members?{query}"), headers=HX).status_code == 422


def test_globex_custom_role_is_not_a_valid_filter_in_acme(world, login):
    from tests.rbac.conftest import make_role

    role = make_role(world.globex, "Globex only", ["org:view"])
    c = login(world.users["admin"], "acme")
    assert c.get(url("acme", f"/members?role=custom:{role.id}")).status_code == 422


def test_a_cursor_from_another_sort_is_refused(world, login):
    add_members(world.acme, 8, prefix="cur")
    c = login(world.users["admin"], "acme")
    nxt = next_link(c.get(url("acme", "/members?per_page=3")).data)
    cursor = re.search(r"after=([^&]+)", nxt).group(1)
    r = c.get(url("acme", f"/members?per_page=3&sort=email&after={cursor}"))
    assert r.status_code == 422 and b"another sort order" in r.data


# --------------------------------------------------------------------------- export
def test_export_streams_csv_of_the_filtered_list_and_is_audited(world, login, audit_events):
    add_members(world.acme, 12, prefix="exp")
    invite_row(world.acme, "exp-invite@example.test")
    c = login(world.users["manager"], "acme")  # manager: members:view + data:export
    r = c.get(url("acme", "/members/export.csv?q=exp"), buffered=False)
    assert r.status_code == 200
    assert "Content-Length" not in r.headers  # streamed, not built in memory
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(rows) == 13
    assert {row["email"] for row in rows} >= {"exp0000@acme.test", "exp-invite@example.test"}
    assert {row["status"] for row in rows} == {"active", "invited"}
    assert not any("globex" in row["email"] for row in rows)
    assert [a for a, _ in audit_events] == ["data.exported"]


def test_export_neutralises_spreadsheet_formulas(world, login):
    u = make_user("formula@acme.test", '=HYPERLINK("http://evil")')
    add_member(world.acme, u, "member")
    c = login(world.users["owner"], "acme")
    body = c.get(url("acme", "/members/export.csv?q=formula")).get_data(as_text=True)
    assert "'=HYPERLINK" in body


def test_export_needs_data_export(world, login):
    c = login(world.users["member"], "acme")  # members:view but not data:export
    assert c.get(url("acme", "/members/export.csv")).status_code == 403


def _tbody(data: bytes) -> bytes:
    return data[data.index(b'<tbody hx-target="closest tr"') : data.index(b"</tbody>")]


def test_cached_member_rows_equal_a_fresh_render(world, login):
    """Rows come from ``FragmentCache`` (app/members/blueprint.py rows_html):
    a repeated view (all hits) and a view after emptying it (all misses) give
    the same rows."""
    from app.members import blueprint

    invite_row(world.acme, "cached@example.test")
    c = login(world.users["admin"], "acme")
    blueprint._ROWS.clear()
    first = _tbody(c.get(url("acme", "/members")).data)
    hits = blueprint._ROWS.hits
    again = _tbody(c.get(url("acme", "/members")).data)
    assert blueprint._ROWS.hits > hits
    blueprint._ROWS.clear()
    assert first == again == _tbody(c.get(url("acme", "/members")).data)
    assert b"cached@example.test" in first and b"/deactivate" in first


def test_cached_member_rows_follow_the_viewer_and_the_member(world, login):
    """A row's key holds the viewer's rights and the member's values: an
    admin's rows (with controls) are never served to a viewer, and a renamed
    member shows at once."""
    admin = login(world.users["admin"], "acme")
    assert b"/deactivate" in _tbody(admin.get(url("acme", "/members")).data)
    viewer = login(world.users["viewer"], "acme")
    rows = _tbody(viewer.get(url("acme", "/members")).data)
    assert b"/deactivate" not in rows and b'name="role" hx-post' not in rows
    member = world.users["member"]
    before = _tbody(viewer.get(url("acme", "/members")).data)
    db.session.execute(update(User).where(User.id == member.id).values(name="Renamed Rowena"))
    db.session.commit()
    after = _tbody(viewer.get(url("acme", "/members")).data)
    assert before != after and b"Renamed Rowena" in after

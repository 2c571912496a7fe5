"""Compliance reports: access, changes and security events, as pages and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit import catalogue
from app.reports import services
from tests import factories as f
from tests.conftest import csrf_token, url


def _today() -> date:
    return datetime.now(UTC).date()


def _rows(resp) -> list[dict]:
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def _post(client, path, data):
    token = csrf_token(client, "acme")
    return client.post(url("acme", path), data={"csrf_token": token, **data})


def _record(world, action, **kw):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        audit.record(action, **kw)
        db.session.commit()


def test_every_listed_action_is_in_the_audit_catalogue():
    """A misspelt action would silently drop its events from a report."""
    assert set(services.CHANGE_ACTIONS) <= catalogue.ALL
    assert set(services.SECURITY_ACTIONS) <= catalogue.ALL


def test_access_report_lists_every_member_with_effective_permissions_and_second_factor(app, world, login):
    from app.extensions import db
    from app.scoping import tenant_context
    from app.tenancy.models import Membership

    f.enrol_totp(world.users["admin"])
    with tenant_context(world.acme.id):
        m = db.session.execute(select(Membership).where(Membership.user_id == world.users["viewer"].id)).scalar_one()
        m.status = "deactivated"
        manager = db.session.execute(
            select(Membership).where(Membership.user_id == world.users["manager"].id)
        ).scalar_one()
        manager.role_source = "scim"  # as directory sync leaves it
        db.session.commit()
    c = login(world.users["owner"], "acme")
    r = _post(c, "/reports/access/export", {})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = {row["email"]: row for row in _rows(r)}
    assert set(rows) == {
        "owner@acme.test",
        "admin@acme.test",
        "manager@acme.test",
        "member@acme.test",
        "viewer@acme.test",
        "consultant@example.test",
    }
    assert rows["admin@acme.test"]["second_factor"] == "yes"
    assert rows["admin@acme.test"]["second_factor_kinds"] == "TOTP"
    assert rows["member@acme.test"]["second_factor"] == "no"
    assert "members:invite" in rows["admin@acme.test"]["permissions"].split()
    assert "org:delete" not in rows["admin@acme.test"]["permissions"].split()
    assert rows["viewer@acme.test"]["permissions"] == ""  # deactivated: holds nothing
    assert rows["viewer@acme.test"]["status"] == "deactivated"
    assert rows["owner@acme.test"]["role_source"] == "manual"
    assert rows["manager@acme.test"]["role_source"] == "scim"
    # Globex's members never appear in acme's report.
    assert "owner@globex.test" not in rows


def test_access_report_page_costs_one_statement_for_its_rows(app, world, login, count_queries):
    for i in range(15):
        u = f.make_user(f"extra{i}@acme.test", f"Extra {i}")
        f.add_member(world.acme, u, "member")
        f.enrol_totp(u) if i % 2 else None
    c = login(world.users["owner"], "acme")
    c.get(url("acme", "/reports/access"))  # warm
    with count_queries() as q:
        r = c.get(url("acme", "/reports/access"))
    assert r.status_code == 200
    assert "Extra 14" in r.get_data(as_text=True)
    member_reads = [s for s in q.statements if "FROM memberships" in s and "totp_factors" in s]
    assert len(member_reads) == 1, q.report()
    with count_queries() as q2:
        c.get(url("acme", "/reports/access"))
    assert q2.count == q.count  # no statement per row (21 members now)


def test_changes_report_shows_role_changes_with_before_and_after(app, world, login):
    c = login(world.users["owner"], "acme")
    token = csrf_token(c, "acme")
    r = c.post(
        url("acme", f"/members/{world.users['member'].id}/role"),
        data={"csrf_token": token, "role": "manager"},
    )
    assert r.status_code in (200, 302)
    _record(world, "project.created", target=("project", "x", "Not a change of access"))
    page = c.get(url("acme", "/reports/changes"))
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Changed a member&#39;s role" in body or "Changed a member's role" in body
    assert "Not a change of access" not in body
    rows = _rows(_post(c, "/reports/changes/export", {"from": _today().isoformat(), "to": _today().isoformat()}))
    changed = [row for row in rows if row["action"] == "member.role_changed"]
    assert len(changed) == 1
    assert '"role": "Member"' in changed[0]["before"] and '"role": "Manager"' in changed[0]["after"]
    assert not [row for row in rows if row["action"] == "project.created"]


def test_security_report_lists_failed_sign_ins_impersonation_and_break_glass(app, world, login):
    _record(world, "auth.login_failed", metadata={"email_domain": "acme.test"})
    _record(world, "platform.impersonation_started", target=world.users["member"])
    _record(world, "sso.break_glass_sign_in", target=world.users["owner"])
    _record(world, "project.updated", target=("project", "p", "Changed by hand"))
    c = login(world.users["owner"], "acme")
    rows = _rows(_post(c, "/reports/security/export", {}))
    actions = [row["action"] for row in rows]
    assert "auth.login_failed" in actions
    assert "platform.impersonation_started" in actions
    assert "sso.break_glass_sign_in" in actions
    assert "project.updated" not in actions  # a member's own change is not a security event


def test_security_report_lists_every_category_the_issue_names(app, world, login):
    """Failed sign-ins, lockouts, second-factor changes, API key use,
    impersonations and break-glass sign-ins: each appears in the page and
    the CSV. The failures and the lockout are real (five wrong passwords at
    a step-up on acme's host, which lands them in acme's log)."""
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    c = login(world.users["owner"], "acme")
    for _ in range(5):
        r = _post(c, "/auth/step-up", {"password": "not-the-password", "next": "/settings/danger"})
        assert r.status_code == 422
    _record(world, "auth.two_factor_enabled", target=world.users["admin"])
    _record(world, "auth.two_factor_disabled", target=world.users["member"])
    _record(world, "api_key.created", target=("api_key", "k1", "CI key"))
    with tenant_context(world.acme.id):
        audit.record(
            "project.updated", target=("project", "p", "Keyed change"), actor=audit.Actor("api_key", None, "CI key")
        )
        db.session.commit()
    _record(world, "platform.impersonation_started", target=world.users["member"])
    _record(world, "sso.break_glass_sign_in", target=world.users["owner"])
    rows = _rows(_post(c, "/reports/security/export", {}))
    actions = {row["action"] for row in rows}
    assert {
        "auth.login_failed",
        "auth.locked_out",
        "auth.two_factor_enabled",
        "auth.two_factor_disabled",
        "api_key.created",
        "project.updated",  # made with an API key
        "platform.impersonation_started",
        "sso.break_glass_sign_in",
    } <= actions
    locked = [row for row in rows if row["action"] == "auth.locked_out"]
    assert len(locked) == 1 and locked[0]["target"] == "Acme Owner <owner@acme.test>"
    page = c.get(url("acme", "/reports/security")).get_data(as_text=True)
    assert "Sign-in locked after too many failed attempts" in page
    assert "lockouts" in c.get(url("acme", "/reports/")).get_data(as_text=True)  # the description names them


def test_security_report_includes_changes_made_with_an_api_key(app, world):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        audit.record(
            "project.updated",
            target=("project", "p", "Keyed change"),
            actor=audit.Actor("api_key", None, "ci key"),
        )
        db.session.commit()
        rows = list(db.session.execute(services.events_statement("security", services.Period.default())))
    assert [r.target_label for r in rows] == ["Keyed change"]


def test_events_outside_the_period_are_left_out(app, world, login, owner_engine):
    _record(world, "member.role_changed", target=world.users["member"], before={"role": "Viewer"})
    with owner_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE audit_events SET occurred_at = occurred_at - interval '40 days' WHERE action = 'member.role_changed'"
        )
    c = login(world.users["owner"], "acme")
    assert [r for r in _rows(_post(c, "/reports/changes/export", {})) if r["action"] == "member.role_changed"] == []
    old = _today() - timedelta(days=40)
    rows = _rows(_post(c, "/reports/changes/export", {"from": old.isoformat(), "to": old.isoformat()}))
    assert [r["action"] for r in rows] == ["member.role_changed"]


@pytest.mark.parametrize(
    ("period", "field", "message"),
    [
        ({"from": "2026-13-01", "to": "2026-01-31"}, "from", "Use a date like"),
        ({"from": "yesterday", "to": "2026-01-31"}, "from", "Use a date like"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to", "before the start"),
        ({"from": "2024-01-01", "to": "2025-12-31"}, "to", "at most 366 days"),
        ({"from": "2026-01-01", "to": ""}, "to", "Choose a date"),
        ({"from": "2999-01-01", "to": "2999-01-02"}, "from", "in the future"),
    ],
    ids=["bad-month", "not-a-date", "end-before-start", "too-long", "missing-end", "future"],
)
def test_a_bad_period_is_422_beside_its_field_and_nothing_is_exported(app, world, login, period, field, message):
    from app.audit.models import AuditEvent
    from app.extensions import db
    from app.scoping import tenant_context

    c = login(world.users["owner"], "acme")
    for resp in (
        c.get(url("acme", "/reports/changes"), query_string=period),
        c.get(url("acme", "/reports/"), query_string=period),
        _post(c, "/reports/access/export", period),
    ):
        assert resp.status_code == 422
        body = resp.get_data(as_text=True)
        assert f'id="report-{field}-error"' in body and message in body
        assert "text/html" in resp.headers["Content-Type"]
    with tenant_context(world.acme.id):
        exported = db.session.execute(select(AuditEvent.id).where(AuditEvent.action == "audit.report_exported")).all()
    assert exported == []


def test_a_csv_export_is_audited_with_its_report_and_period(app, world, login):
    from app.audit.models import AuditEvent
    from app.extensions import db
    from app.scoping import tenant_context

    c = login(world.users["admin"], "acme")
    day = _today().isoformat()
    r = _post(c, "/reports/security/export", {"from": day, "to": day})
    assert r.status_code == 200
    r.get_data()
    with tenant_context(world.acme.id):
        ev = db.session.execute(select(AuditEvent).where(AuditEvent.action == "audit.report_exported")).scalar_one()
    assert ev.meta["report"] == "security" and ev.meta["from"] == day and ev.meta["to"] == day
    assert ev.actor_id == world.users["admin"].id


def test_roles_without_audit_export_cannot_open_reports(app, world, login):
    c = login(world.users["manager"], "acme")
    assert c.get(url("acme", "/reports/")).status_code == 403
    assert c.get(url("acme", "/reports/access")).status_code == 403
    assert _post(c, "/reports/access/export", {}).status_code == 403


def test_unknown_report_is_404(app, world, login):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/reports/payroll")).status_code == 404


def test_printable_page_has_print_styles_and_no_navigation_in_print(app, world, login):
    c = login(world.users["owner"], "acme")
    body = c.get(url("acme", "/reports/access")).get_data(as_text=True)
    assert 'class="table report-table"' in body
    css = c.get(url("acme", "/static/css/app.css")).get_data(as_text=True)
    print_css = css[css.index("@media print") :]
    assert ".sidenav" in print_css and "table-header-group" in print_css and "break-inside: avoid" in print_css

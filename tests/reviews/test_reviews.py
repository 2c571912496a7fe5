"""Access reviews: campaigns, reviewers' decisions applied through the members
services, concurrency, reminders, recurrence and evidence."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.scoping import tenant_context
from tests import factories as f
from tests.conftest import csrf_token, url


def _today() -> date:
    from app.reviews.services import today

    return today()


def _start(world, *, reviewers=("owner", "admin"), scope="all", permissions=(), deadline=None, recurrence="none"):
    """A campaign started through the service, as the acme Owner."""
    from app.members.memberships import get_membership
    from app.reviews import services

    with tenant_context(world.acme.id, world.users["owner"].id):
        plan = services.check_plan(
            "Quarterly access review",
            scope,
            list(permissions),
            [str((world.users[r] if isinstance(r, str) else r).id) for r in reviewers],
            deadline or _today() + timedelta(days=14),
            recurrence,
        )
        review = services.start_review(plan, get_membership(world.users["owner"].id))
        db.session.commit()
        return review.id


def _second_admin(world):
    """Another Admin of acme (a reviewer beside the Owner, so the Admin is not one)."""
    u = f.make_user("admin2@acme.test", "Second Admin")
    f.add_member(world.acme, u, "admin")
    return u


def _item(world, review_id, user_key):
    from app.reviews.models import AccessReviewItem

    with tenant_context(world.acme.id):
        item = db.session.get(AccessReviewItem, (world.acme.id, review_id, world.users[user_key].id))
        db.session.refresh(item)
        return item


def _decide(c, review_id, user, decision, version, htmx=True, **extra):
    token = csrf_token(c, "acme")
    return c.post(
        url("acme", f"/reviews/{review_id}/items/{user.id}"),
        data={"csrf_token": token, "decision": decision, "version": str(version), **extra},
        headers={"HX-Request": "true"} if htmx else {},
    )


def _role_of(world, user_key):
    from app.tenancy.models import Membership

    with tenant_context(world.acme.id):
        return db.session.execute(
            select(Membership.role).where(Membership.user_id == world.users[user_key].id)
        ).scalar_one_or_none()


def _actions(world, action):
    from app.audit.models import AuditEvent

    with tenant_context(world.acme.id):
        return db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars().all()


# --------------------------------------------------------------------------- starting
def test_owner_starts_a_review_of_every_member_from_the_form(world, login):
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/reviews/new")).status_code == 200
    r = c.post(
        url("acme", "/reviews/"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "submit_key": "k" * 24,
            "name": "Q4 review",
            "scope": "all",
            "reviewers": [str(world.users["owner"].id), str(world.users["admin"].id)],
            "deadline": (_today() + timedelta(days=7)).isoformat(),
            "recurrence": "quarterly",
        },
    )
    assert r.status_code == 302
    page = c.get(url("acme", r.headers["Location"])).get_data(as_text=True)
    for who in ("Acme Owner", "Acme Admin", "Acme Manager", "Acme Member", "Acme Viewer", "Casey Consultant"):
        assert who in page
    assert "Globex Owner" not in page
    [ev] = _actions(world, "review.started")
    assert ev.meta["members"] == 6 and ev.actor_id == world.users["owner"].id


def test_a_review_of_permission_holders_only_includes_members_holding_one(world):
    review_id = _start(world, scope="permissions", permissions=["members:remove"])
    from app.reviews.models import AccessReviewItem

    with tenant_context(world.acme.id):
        emails = set(
            db.session.execute(select(AccessReviewItem.email).where(AccessReviewItem.review_id == review_id)).scalars()
        )
    assert emails == {"owner@acme.test", "admin@acme.test"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": ""}, "name", "Give the review a name"),
        ({"deadline": "2020-01-01"}, "deadline", "in the past"),
        ({"deadline": "not-a-date"}, "deadline", "Choose a deadline"),
        ({"reviewers": []}, "reviewers", "at least one reviewer"),
        ({"reviewers": ["member"]}, "reviewers", "Owners or Admins"),
        ({"reviewers": ["owner"]}, "reviewers", "Acme Owner is among the members reviewed"),
        ({"scope": "permissions", "permissions": []}, "permissions", "at least one permission"),
        ({"scope": "permissions", "permissions": ["nuclear:launch"]}, "permissions", "Unknown permission"),
        ({"recurrence": "hourly"}, "recurrence", "how often"),
    ],
    ids=[
        "no-name",
        "past-deadline",
        "bad-date",
        "no-reviewer",
        "member-as-reviewer",
        "lone-reviewer-reviewed",
        "no-permission",
        "bad-permission",
        "bad-recurrence",
    ],
)
def test_a_bad_review_is_422_beside_its_field_and_nothing_is_started(world, login, change, field, message):
    c = login(world.users["owner"], "acme")
    data = {
        "csrf_token": csrf_token(c, "acme"),
        "name": "Review",
        "scope": "all",
        "reviewers": ["owner", "admin"],
        "deadline": (_today() + timedelta(days=7)).isoformat(),
        "recurrence": "none",
        **change,
    }
    data["reviewers"] = [str(world.users[k].id) for k in data["reviewers"]]
    r = c.post(url("acme", "/reviews/"), data=data)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert message in body
    assert f'id="{field}-error"' in body or f'id="{field}-0-error"' in body or "field__error" in body
    from app.reviews.models import AccessReview

    with tenant_context(world.acme.id):
        assert db.session.execute(select(AccessReview.id)).all() == []


# --------------------------------------------------------------------------- deciding
def test_keep_change_role_and_remove_are_applied_and_audited(world, login):
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    r = _decide(c, review_id, world.users["viewer"], "keep", _item(world, review_id, "viewer").version)
    assert r.status_code == 200 and "Keep" in r.get_data(as_text=True)
    assert "HX-Request" in r.headers.get("Vary", "")
    assert "<html" not in r.get_data(as_text=True)
    r = _decide(
        c, review_id, world.users["member"], "change_role", _item(world, review_id, "member").version, role="viewer"
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _role_of(world, "member") == "viewer"
    r = _decide(c, review_id, world.users["consultant"], "remove", _item(world, review_id, "consultant").version)
    assert r.status_code == 200
    assert _role_of(world, "consultant") is None
    assert len(_actions(world, "review.decided")) == 3
    assert len(_actions(world, "member.role_changed")) == 1
    assert len(_actions(world, "member.removed")) == 1
    assert _item(world, review_id, "member").decided_by == world.users["owner"].id


def test_a_decision_by_someone_who_is_not_a_reviewer_is_refused(world, login):
    """An Admin not chosen as reviewer holds reviews:manage but may not decide: 403, nothing changed."""
    review_id = _start(world, reviewers=("owner", _second_admin(world)))
    c = login(world.users["admin"], "acme")
    item = _item(world, review_id, "member")
    for htmx in (True, False):
        r = _decide(c, review_id, world.users["member"], "remove", item.version, htmx=htmx)
        assert r.status_code == 403
        assert "Only this review&#39;s reviewers" in r.get_data(
            as_text=True
        ) or "Only this review's reviewers" in r.get_data(as_text=True)
    assert _role_of(world, "member") == "member"
    assert _item(world, review_id, "member").decision is None
    assert _actions(world, "review.decided") == []


def test_a_manager_cannot_open_reviews(world, login):
    review_id = _start(world)
    c = login(world.users["manager"], "acme")
    assert c.get(url("acme", "/reviews/")).status_code == 403
    assert _decide(c, review_id, world.users["member"], "keep", 1).status_code == 403


def test_a_guardrail_refusal_is_shown_on_the_row_and_the_item_stays_pending(world, login):
    """An Admin reviewer cannot remove an Owner (members services' guardrail)."""
    review_id = _start(world)
    c = login(world.users["admin"], "acme")
    r = _decide(c, review_id, world.users["owner"], "remove", _item(world, review_id, "owner").version)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'id="item-' in body and "Only an Owner can remove an Owner" in body
    assert _role_of(world, "owner") == "owner"
    assert _item(world, review_id, "owner").decision is None
    assert _actions(world, "review.decided") == []


def test_the_last_owner_cannot_be_removed_by_a_review(world, login):
    """Only the Owner could remove an Owner, and not on their own row: the
    last Owner stays whichever way a review is tried."""
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    r = _decide(c, review_id, world.users["owner"], "remove", _item(world, review_id, "owner").version)
    assert r.status_code == 403 and "own access" in r.get_data(as_text=True)
    a = login(world.users["admin"], "acme")
    r = _decide(a, review_id, world.users["owner"], "remove", _item(world, review_id, "owner").version)
    assert r.status_code == 422
    assert _role_of(world, "owner") == "owner"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "promote"}, "Choose keep, change role or remove"),
        ({"decision": ""}, "Choose keep, change role or remove"),
        ({"decision": "change_role", "role": "emperor"}, "Choose the role"),
        ({"decision": "change_role", "role": "member"}, "already has the role"),
        ({"decision": "keep", "note": "x" * 501}, "at most 500"),
    ],
    ids=["unknown", "empty", "unknown-role", "same-role", "long-note"],
)
def test_a_bad_decision_is_422_on_the_row_and_nothing_changes(world, login, data, message):
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    version = _item(world, review_id, "member").version
    r = _decide(c, review_id, world.users["member"], data.pop("decision"), version, **data)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert _item(world, review_id, "member").decision is None
    assert _role_of(world, "member") == "member"


def test_two_reviewers_deciding_the_same_member_do_not_overwrite_each_other(world, login):
    review_id = _start(world)
    version = _item(world, review_id, "member").version
    owner, admin = login(world.users["owner"], "acme"), login(world.users["admin"], "acme")
    first = _decide(owner, review_id, world.users["member"], "keep", version)
    second = _decide(admin, review_id, world.users["member"], "remove", version)
    assert first.status_code == 200
    assert second.status_code == 409
    assert "decided on Acme Member while you were looking: keep" in second.get_data(as_text=True)
    assert _role_of(world, "member") == "member"
    item = _item(world, review_id, "member")
    assert item.decision == "keep" and item.decided_by == world.users["owner"].id
    assert len(_actions(world, "review.decided")) == 1


def test_a_decided_item_cannot_be_decided_again(world, login):
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    _decide(c, review_id, world.users["viewer"], "keep", _item(world, review_id, "viewer").version)
    r = _decide(c, review_id, world.users["viewer"], "remove", _item(world, review_id, "viewer").version)
    assert r.status_code == 422 and "already decided" in r.get_data(as_text=True)
    assert _role_of(world, "viewer") == "viewer"


def test_another_organizations_review_is_404(world, login):
    review_id = _start(world)
    c = login(world.users["globex_owner"], "globex")
    assert c.get(url("globex", f"/reviews/{review_id}")).status_code == 404


# --------------------------------------------------------------------------- closing and evidence
def test_closing_then_exporting_evidence_lists_every_member_and_decision(world, login):
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    _decide(c, review_id, world.users["viewer"], "keep", _item(world, review_id, "viewer").version, note="Still needed")
    r = c.post(url("acme", f"/reviews/{review_id}/close"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302 and r.headers["Location"].endswith("/evidence")
    page = c.get(url("acme", f"/reviews/{review_id}/evidence")).get_data(as_text=True)
    assert "Not reviewed" in page and "Still needed" in page
    r = c.post(url("acme", f"/reviews/{review_id}/evidence.csv"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))}
    assert len(rows) == 6
    assert rows["viewer@acme.test"]["decision"] == "Keep" and rows["viewer@acme.test"]["note"] == "Still needed"
    assert rows["member@acme.test"]["decision"] == "not reviewed"
    assert len(_actions(world, "review.closed")) == 1 and len(_actions(world, "review.exported")) == 1
    # Closed: decisions are final.
    r = _decide(c, review_id, world.users["member"], "keep", _item(world, review_id, "member").version)
    assert r.status_code == 422 and "closed" in r.get_data(as_text=True)


def test_a_non_reviewer_cannot_close_a_review(world, login):
    review_id = _start(world, reviewers=("owner", _second_admin(world)))
    c = login(world.users["admin"], "acme")
    r = c.post(url("acme", f"/reviews/{review_id}/close"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 403
    assert _actions(world, "review.closed") == []


# --------------------------------------------------------------------------- nobody reviews themselves
def test_a_reviewer_cannot_decide_on_their_own_access(world, login):
    """Keep, change role or remove on one's own row: 403 with the reason on
    the row, nothing changed; the page offers no buttons there."""
    review_id = _start(world)
    c = login(world.users["admin"], "acme")
    page = c.get(url("acme", f"/reviews/{review_id}")).get_data(as_text=True)
    own = page.split(f'id="item-{world.users["admin"].id}"')[1].split("</tr>")[0]
    assert "another reviewer decides" in own and 'name="decision"' not in own
    other = page.split(f'id="item-{world.users["member"].id}"')[1].split("</tr>")[0]
    assert 'name="decision"' in other
    for decision, extra in (("keep", {}), ("change_role", {"role": "viewer"}), ("remove", {})):
        for htmx in (True, False):
            item = _item(world, review_id, "admin")
            r = _decide(c, review_id, world.users["admin"], decision, item.version, htmx=htmx, **extra)
            assert r.status_code == 403
            assert "cannot decide on your own access" in r.get_data(as_text=True)
    assert _item(world, review_id, "admin").decision is None
    assert _role_of(world, "admin") == "admin"
    assert _actions(world, "review.decided") == []
    # The other reviewer decides on it.
    owner = login(world.users["owner"], "acme")
    r = _decide(owner, review_id, world.users["admin"], "keep", _item(world, review_id, "admin").version)
    assert r.status_code == 200
    assert _item(world, review_id, "admin").decided_by == world.users["owner"].id


def test_a_lone_reviewer_under_review_is_told_at_start_who_else_can_review(world, login):
    c = login(world.users["owner"], "acme")
    data = {
        "csrf_token": csrf_token(c, "acme"),
        "submit_key": "s" * 24,
        "name": "Solo",
        "scope": "all",
        "reviewers": [str(world.users["owner"].id)],
        "deadline": (_today() + timedelta(days=7)).isoformat(),
        "recurrence": "none",
    }
    r = c.post(url("acme", "/reviews/"), data=data)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert "cannot decide on their own access" in body and "Acme Admin can review" in body
    # A lone reviewer who is not among the members reviewed is fine: the
    # Admin reviews the holders of org:delete (the Owners), not themselves.
    with tenant_context(world.acme.id):
        from app.reviews import services

        plan = services.check_plan(
            "Owners", "permissions", ["org:delete"], [str(world.users["admin"].id)], _today(), "none"
        )
    assert plan.reviewers == (world.users["admin"].id,)


def test_a_lone_owner_with_nobody_else_to_review_starts_and_is_told_their_row_stays_pending(app, login):
    from app.reviews import services

    org = f.make_org("solo", "Solo Ltd", plan="pro")
    owner = f.make_user("owner@solo.test", "Sole Owner")
    f.add_member(org, owner, "owner")
    f.add_member(org, f.make_user("staff@solo.test", "Staff"), "member")
    c = login(owner, "solo")
    r = c.post(
        url("solo", "/reviews/"),
        data={
            "csrf_token": csrf_token(c, "solo"),
            "submit_key": "t" * 24,
            "name": "Solo review",
            "scope": "all",
            "reviewers": [str(owner.id)],
            "deadline": (_today() + timedelta(days=7)).isoformat(),
            "recurrence": "none",
        },
    )
    assert r.status_code == 302
    page = c.get(url("solo", r.headers["Location"])).get_data(as_text=True)
    assert "Sole Owner cannot decide on their own access and nobody else here can review" in page
    assert 'data-testid="undecidable"' in page and "another reviewer decides" in page
    with tenant_context(org.id):
        from app.reviews.models import AccessReview

        review = db.session.execute(select(AccessReview)).scalar_one()
        assert services.undecidable(review) == ["Sole Owner"]


def test_a_recurring_review_with_a_lone_reviewer_under_review_asks_every_eligible_reviewer(world, owner_engine):
    from app.reviews import services
    from app.reviews.models import AccessReview

    review_id = _start(world, recurrence="quarterly")
    with owner_engine.begin() as conn:
        # As a campaign started before the rule (or whose other reviewer left).
        conn.execute(
            text("DELETE FROM access_review_reviewers WHERE review_id = :id AND user_id = :u"),
            {"id": review_id, "u": world.users["admin"].id},
        )
        conn.execute(
            text("UPDATE access_reviews SET starts_on = starts_on - 92, deadline = deadline - 92 WHERE id = :id"),
            {"id": review_id},
        )
    assert services.repeat_due() == 1
    with tenant_context(world.acme.id):
        successor = db.session.execute(select(AccessReview).where(AccessReview.id != review_id)).scalar_one()
        ids = services.reviewer_ids(successor)
    assert ids == {world.users["owner"].id, world.users["admin"].id}


# --------------------------------------------------------------------------- the list, jobs
def test_overdue_reviews_are_flagged_on_the_list(world, login, owner_engine):
    review_id = _start(world)
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE access_reviews SET starts_on = starts_on - 30, deadline = current_date - 1 WHERE id = :id"),
            {"id": review_id},
        )
    c = login(world.users["owner"], "acme")
    body = c.get(url("acme", "/reviews/")).get_data(as_text=True)
    assert 'data-testid="overdue"' in body


def test_reviewers_with_pending_items_are_reminded_once_a_day_by_mail(world, mailbox, run_jobs, app):
    _start(world)
    from app.reviews import services

    with app.app_context():
        assert services.remind_due() == 2
        db.session.remove()
    run_jobs()
    to = sorted(m["To"] for m in mailbox.messages)
    assert to == ["admin@acme.test", "owner@acme.test"]
    assert "6 members to review" in mailbox.messages[0]["Subject"]
    assert services.remind_due() == 0  # once a day


def test_a_recurring_review_starts_its_next_campaign_once(world, owner_engine):
    review_id = _start(world, recurrence="quarterly")
    from app.reviews import services
    from app.reviews.models import AccessReview

    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE access_reviews SET starts_on = starts_on - 92, deadline = deadline - 92 WHERE id = :id"),
            {"id": review_id},
        )
    assert services.repeat_due() == 1
    assert services.repeat_due() == 0
    with tenant_context(world.acme.id):
        reviews = db.session.execute(select(AccessReview).order_by(AccessReview.created_at)).scalars().all()
    assert len(reviews) == 2
    assert reviews[0].successor_id == reviews[1].id
    assert reviews[1].starts_on == _today() and reviews[1].deadline == _today() + timedelta(days=14)
    started = _actions(world, "review.started")
    assert len(started) == 2 and started[1].actor_type == "system"


def test_add_months_keeps_the_day_or_the_months_last():
    from app.reviews.services import add_months

    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 5, 15), 12) == date(2027, 5, 15)


def test_review_pages_cost_a_fixed_number_of_statements(world, login, count_queries):
    review_id = _start(world)
    c = login(world.users["owner"], "acme")
    c.get(url("acme", f"/reviews/{review_id}"))
    with count_queries() as q1:
        c.get(url("acme", f"/reviews/{review_id}"))
    for i in range(10):
        f.add_member(world.acme, f.make_user(f"more{i}@acme.test", f"More {i}"), "member")
    review2 = _start(world)
    c.get(url("acme", f"/reviews/{review2}"))
    with count_queries() as q2:
        c.get(url("acme", f"/reviews/{review2}"))
    assert q2.count == q1.count, q2.report()

"""Access reviews: start a campaign, decide on each member, close it, repeat it, remind.

Like every service, each function works inside the current organization
(the ORM hook and RLS scope every query), raises ``UserError`` naming the
form field when it refuses (nothing changed), records its audit event, and
never commits: the view (or the job) commits, so a decision, the change it
applies and their audit events land together or not at all.

Guarantees:

* **Only the campaign's reviewers decide.** A reviewer is an active member
  holding ``reviews:manage`` (Owners and Admins, or a custom role given it)
  chosen when the campaign starts; anyone else is refused with
  ``NotReviewer`` (403), even an Owner who was not chosen.
* **Nobody decides on their own access.** A reviewer who is also one of
  the members reviewed is refused on their own row (``SelfReview``, 403,
  like any decision by someone who may not take it); another reviewer
  decides. So a campaign cannot start with one reviewer who is among the
  members reviewed while someone else could review: the starter is told
  who to add (``check_plan``). When nobody else can review (a lone
  Owner), it starts and that one row is reported as not reviewed unless
  a reviewer is added to a later campaign; the recurrence job adds every
  eligible reviewer rather than repeat a campaign nobody could complete.
* **Decisions are applied through the members services.** "Change role"
  calls ``rbac.change_role`` and "remove" calls ``memberships.remove``, with
  the reviewer as the actor: every guardrail holds (the last Owner, Owners
  only by Owners, no escalation, not yourself). A refusal leaves the item
  undecided and its reason is shown on the row.
* **No silent overwrite.** Deciding locks the item (``lock_for_edit``) and
  refuses a decision made from an older version (``StaleEdit``, 409): when
  two reviewers decide the same member at once, the second is told and sees
  the first's decision.
* **Evidence.** Each item keeps the member's access as it was when the
  campaign started, the decision, who took it and when; a closed campaign
  exports it (``evidence_csv``).
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update

from app import audit
from app.audit import user_label
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.database import apply_tenant_settings
from app.errors import UserError
from app.extensions import db
from app.members import memberships
from app.permissions import ALL, BY_NAME, SYSTEM_ROLES
from app.rbac import services as rbac
from app.rbac.models import Role
from app.reports import services as reports
from app.reviews.models import (
    DECISIONS,
    NAME_MAX,
    NOTE_MAX,
    RECURRENCES,
    SCOPES,
    AccessReview,
    AccessReviewer,
    AccessReviewItem,
)
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Membership, Organization
from app.util import parse_uuid, utcnow
from app.web.downloads import csv_chunks

PERMISSION = "reviews:manage"
MAX_DEADLINE_DAYS = 366
SYSTEM_ACTOR = "access reviews"


class NotReviewer(UserError):
    """A decision by someone who is not one of the campaign's reviewers (403)."""

    status = 403

    def __init__(self):
        super().__init__("Only this review's reviewers can decide on its members.")


class SelfReview(UserError):
    """A reviewer deciding on their own access (403): another reviewer decides."""

    status = 403

    def __init__(self):
        super().__init__("You cannot decide on your own access: another reviewer decides on it.")


def today() -> date:
    return datetime.now(UTC).date()


# --------------------------------------------------------------------------- look-ups
def find_review(review_id) -> AccessReview | None:
    """The current organization's campaign ``review_id`` (malformed or foreign ids: ``None``)."""
    rid = parse_uuid(review_id)
    return db.session.get(AccessReview, (_org_id(), rid)) if rid else None


def find_item(review: AccessReview, user_id) -> AccessReviewItem | None:
    uid = parse_uuid(user_id)
    return db.session.get(AccessReviewItem, (review.organization_id, review.id, uid)) if uid else None


def _org_id():
    from app.scoping import current_org_id

    return current_org_id()


def eligible_reviewers() -> list[Membership]:
    """Active members who may review (they hold ``reviews:manage``): one
    statement, by name."""
    custom = select(Role.id).where(Role.permissions.contains([PERMISSION]))
    holders = [k for k, r in SYSTEM_ROLES.items() if PERMISSION in r.permissions]
    rows = (
        db.session.execute(
            select(Membership)
            .where(
                Membership.status == "active",
                or_(Membership.role.in_(holders), Membership.custom_role_id.in_(custom)),
            )
            .order_by(Membership.search_name, Membership.user_id)
        )
        .unique()
        .scalars()
        .all()
    )
    return [m for m in rows if PERMISSION in m.permissions]


def reviewer_ids(review: AccessReview) -> set[uuid.UUID]:
    return set(
        db.session.execute(select(AccessReviewer.user_id).where(AccessReviewer.review_id == review.id)).scalars()
    )


def is_reviewer(review: AccessReview, membership: Membership | None) -> bool:
    """Whether ``membership`` may decide on ``review``'s items now: chosen as
    a reviewer, and still an active member holding ``reviews:manage``."""
    if membership is None or PERMISSION not in membership.permissions:
        return False
    return db.session.get(AccessReviewer, (review.organization_id, review.id, membership.user_id)) is not None


def reviewer_names(ids) -> list[str]:
    """The names of ``ids`` that are still members (any status), sorted: one statement."""
    if not ids:
        return []
    return list(
        db.session.execute(
            select(User.name)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.user_id.in_(list(ids)))
            .order_by(User.name)
        ).scalars()
    )


@dataclass(frozen=True)
class Listed:
    review: AccessReview
    total: int
    decided: int
    reviewers: int

    @property
    def pending(self) -> int:
        return self.total - self.decided


def list_reviews() -> list[Listed]:
    """Every campaign, open ones first (by deadline), then closed (newest
    first), with its progress: one statement."""
    total = (
        select(func.count())
        .select_from(AccessReviewItem)
        .where(AccessReviewItem.review_id == AccessReview.id)
        .scalar_subquery()
    )
    decided = (
        select(func.count())
        .select_from(AccessReviewItem)
        .where(AccessReviewItem.review_id == AccessReview.id, AccessReviewItem.decision.is_not(None))
        .scalar_subquery()
    )
    reviewers = (
        select(func.count())
        .select_from(AccessReviewer)
        .where(AccessReviewer.review_id == AccessReview.id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(AccessReview, total, decided, reviewers).order_by(
            (AccessReview.status == "open").desc(),
            AccessReview.deadline.asc(),
            AccessReview.created_at.desc(),
        )
    ).all()
    open_rows = [Listed(*r) for r in rows if r[0].status == "open"]
    closed = sorted((Listed(*r) for r in rows if r[0].status != "open"), key=lambda x: x.review.created_at)
    return open_rows + closed[::-1]


def items_of(review: AccessReview) -> list[AccessReviewItem]:
    """The campaign's items, pending first, then by name: one statement."""
    return list(
        db.session.execute(
            select(AccessReviewItem)
            .where(AccessReviewItem.review_id == review.id)
            .order_by(AccessReviewItem.decision.is_not(None), AccessReviewItem.name, AccessReviewItem.user_id)
        ).scalars()
    )


def progress(review: AccessReview) -> dict[str, int]:
    """Counts by decision (``pending`` for undecided) in one statement."""
    counts = dict.fromkeys((*DECISIONS, "pending"), 0)
    for decision, n in db.session.execute(
        select(AccessReviewItem.decision, func.count())
        .where(AccessReviewItem.review_id == review.id)
        .group_by(AccessReviewItem.decision)
    ):
        counts[decision or "pending"] = n
    counts["total"] = sum(counts[k] for k in (*DECISIONS, "pending"))
    return counts


# --------------------------------------------------------------------------- starting
@dataclass(frozen=True)
class Plan:
    """What a new campaign will be, checked (``check_plan``)."""

    name: str
    scope: str
    permissions: tuple[str, ...]
    reviewers: tuple[uuid.UUID, ...]
    deadline: date
    recurrence: str


def check_plan(name, scope, permissions, reviewer_ids_, deadline, recurrence, start: date | None = None) -> Plan:
    """The campaign asked for, or ``UserError`` beside the first bad field."""
    start = start or today()
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give the review a name.", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    if scope not in SCOPES:
        raise UserError("Choose who is reviewed.", "scope")
    perms: tuple[str, ...] = ()
    if scope == "permissions":
        perms = tuple(dict.fromkeys(p for p in (permissions or ()) if p))
        if not perms:
            raise UserError("Choose at least one permission: members holding any of them are reviewed.", "permissions")
        unknown = [p for p in perms if p not in ALL]
        if unknown:
            raise UserError(f"Unknown permission: {', '.join(unknown)[:200]}.", "permissions")
    if not isinstance(deadline, date):
        raise UserError("Choose a deadline.", "deadline")
    if deadline < start:
        raise UserError("The deadline is in the past.", "deadline")
    if deadline > start + timedelta(days=MAX_DEADLINE_DAYS):
        raise UserError(f"Choose a deadline within {MAX_DEADLINE_DAYS} days.", "deadline")
    if recurrence not in RECURRENCES:
        raise UserError("Choose how often the review repeats.", "recurrence")
    eligible = {m.user_id: m for m in eligible_reviewers()}
    chosen = []
    for raw in reviewer_ids_ or ():
        uid = parse_uuid(raw)
        if uid is None or uid not in eligible:
            raise UserError("Reviewers must be Owners or Admins of this organization.", "reviewers")
        if uid not in chosen:
            chosen.append(uid)
    if not chosen:
        raise UserError("Choose at least one reviewer.", "reviewers")
    lone = lone_reviewer_reviewed(chosen, scope, perms, eligible)
    others = [m for uid, m in eligible.items() if uid not in chosen]
    if lone is not None and others:
        names = ", ".join(m.user.name for m in others[:5]) + (" ..." if len(others) > 5 else "")
        raise UserError(
            f"{lone.user.name} is among the members reviewed and cannot decide on their own access: "
            f"choose another reviewer too ({names} can review).",
            "reviewers",
        )
    return Plan(name, scope, perms, tuple(chosen), deadline, recurrence)


def lone_reviewer_reviewed(chosen, scope: str, permissions, eligible: dict) -> Membership | None:
    """The campaign's only reviewer when they are also among the members it
    reviews (nobody could decide on their row), else ``None``."""
    if len(chosen) != 1:
        return None
    m = eligible.get(chosen[0])
    if m is None:
        return None
    return m if scope == "all" or _in_scope(tuple(m.permissions), tuple(permissions)) else None


def undecidable(review: AccessReview, ids: set | None = None) -> list[str]:
    """Names of the members of ``review`` nobody may decide on: the reviewer
    reviewed in a campaign with no other reviewer (a lone Owner). ``ids``:
    the campaign's reviewers when the caller has read them. A statement only
    for a campaign with one reviewer."""
    ids = reviewer_ids(review) if ids is None else ids
    if len(ids) != 1:
        return []
    return list(
        db.session.execute(
            select(AccessReviewItem.name).where(
                AccessReviewItem.review_id == review.id, AccessReviewItem.user_id.in_(list(ids))
            )
        ).scalars()
    )


def _in_scope(row_permissions: tuple[str, ...], plan_permissions: tuple[str, ...]) -> bool:
    return bool(set(row_permissions) & set(plan_permissions))


def start_review(plan: Plan, actor=None, start: date | None = None) -> AccessReview:
    """Start the campaign ``plan``: one row for it, one per reviewer and one per
    member in scope (active members; with ``permissions``, those holding any
    of them), each a snapshot of the member's access now. Members are read
    in one statement and the items written in one. Records ``review.started``
    (``actor``: a system label for the recurrence job)."""
    start = start or today()
    review = AccessReview(
        name=plan.name,
        scope=plan.scope,
        scope_permissions=list(plan.permissions),
        starts_on=start,
        deadline=plan.deadline,
        recurrence=plan.recurrence,
        created_by=getattr(actor, "user_id", None),
    )
    db.session.add(review)
    db.session.flush()
    db.session.execute(
        insert(AccessReviewer),
        [{"organization_id": review.organization_id, "review_id": review.id, "user_id": uid} for uid in plan.reviewers],
    )
    rows = []
    for r in db.session.execute(reports.access_statement().where(Membership.status == "active")):
        access = reports.access_row(r)
        if plan.scope == "permissions" and not _in_scope(access.permissions, plan.permissions):
            continue
        rows.append(
            {
                "organization_id": review.organization_id,
                "review_id": review.id,
                "user_id": access.user_id,
                "name": access.name[:120],
                "email": access.email,
                "role_key": r.role or f"{rbac.CUSTOM_PREFIX}{r.custom_role_id}",
                "role_name": access.role[:64],
                "permissions": list(access.permissions),
                "second_factor": " ".join(access.factor_kinds),
                "last_seen_at": access.last_seen_at,
            }
        )
    if rows:
        db.session.execute(insert(AccessReviewItem), rows)
    audit.record(
        "review.started",
        target=("access_review", str(review.id), review.name),
        after={
            "name": review.name,
            "scope": review.scope,
            "permissions": list(plan.permissions),
            "deadline": review.deadline.isoformat(),
            "recurrence": review.recurrence,
        },
        metadata={"members": len(rows), "reviewers": [str(u) for u in plan.reviewers]},
        actor=None if not isinstance(actor, str) else actor,
    )
    return review


# --------------------------------------------------------------------------- deciding
def decide(
    review: AccessReview,
    item: AccessReviewItem,
    decision: str,
    actor: Membership,
    *,
    role_key: str | None = None,
    note: str = "",
    version=None,
) -> AccessReviewItem:
    """Record ``actor``'s ``decision`` on ``item`` and apply it.

    Refused with ``NotReviewer`` (403) unless ``actor`` is one of the
    campaign's reviewers, with ``SelfReview`` (403) when ``item`` is the
    reviewer's own access; with ``UserError`` when the campaign is closed, the
    item already decided, the decision unknown, the new role missing or
    unchanged, or the members service refuses the change (the last Owner,
    someone more powerful than the reviewer, yourself...); with
    ``StaleEdit`` (409) when ``version`` is not the item's. Nothing is
    changed when it refuses (the caller rolls back).
    """
    if not is_reviewer(review, actor):
        raise NotReviewer()
    if item.user_id == actor.user_id:
        raise SelfReview()
    lock_for_edit(item, version)
    if review.status != "open":
        raise UserError("This review is closed; its decisions can no longer change.")
    if item.decision is not None:
        raise UserError(f"{item.name} was already decided: {DECISIONS[item.decision].lower()}.")
    if decision not in DECISIONS:
        raise UserError("Choose keep, change role or remove.", "decision")
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise UserError(f"Use at most {NOTE_MAX} characters.", "note")
    target = rbac.membership_of(item.user_id)
    new_role = None
    if decision == "change_role":
        new_role = rbac.get_role(role_key or "")
        if new_role is None:
            raise UserError("Choose the role they should have.", "role")
    if target is None and decision != "remove":
        raise UserError(f"{item.name} is no longer a member; record “remove”.", "decision")
    applied = "no change"
    if decision == "change_role":
        if new_role.key == rbac.role_of(target).key:
            raise UserError(f"{item.name} already has the role {new_role.name}; choose another, or keep.", "role")
        rbac.change_role(target, new_role.key, actor)
        applied = f"role changed to {new_role.name}"
    elif decision == "remove":
        if target is not None:
            memberships.remove(target, actor)
            applied = "removed"
        else:
            applied = "had already left"
    item.decision = decision
    item.new_role_key = new_role.key if new_role else None
    item.new_role_name = new_role.name if new_role else None
    item.note = note
    item.decided_by = actor.user_id
    item.decided_by_label = user_label(actor.user)
    item.decided_at = utcnow()
    db.session.flush()
    audit.record(
        "review.decided",
        target=("member", str(item.user_id), f"{item.name} <{item.email}>"),
        before={"role": item.role_name},
        after={"decision": decision, **({"role": new_role.name} if new_role else {})},
        metadata={"review_id": str(review.id), "review": review.name, "applied": applied, "note": note},
    )
    return item


def close(review: AccessReview, actor: Membership) -> dict[str, int]:
    """Close the campaign (its decisions can no longer change); members left
    undecided are reported as not reviewed. Only a reviewer closes it, under
    the campaign's row lock (two closes: the second is told it is closed).
    Records ``review.closed`` with the counts."""
    if not is_reviewer(review, actor):
        raise NotReviewer()
    lock_for_edit(review)
    if review.status != "open":
        raise UserError("This review is already closed.")
    counts = progress(review)
    review.status = "closed"
    review.closed_at = utcnow()
    review.closed_by = actor.user_id
    db.session.flush()
    audit.record(
        "review.closed",
        target=("access_review", str(review.id), review.name),
        before={"status": "open"},
        after={"status": "closed"},
        metadata=counts,
    )
    return counts


# --------------------------------------------------------------------------- evidence
EVIDENCE_COLUMNS = (
    "review",
    "member",
    "email",
    "role_at_start",
    "permissions_at_start",
    "second_factor",
    "last_seen_at",
    "decision",
    "new_role",
    "note",
    "decided_by",
    "decided_at",
)


def evidence_cells(review_name: str, item) -> list:
    return [
        review_name,
        item.name,
        item.email,
        item.role_name,
        " ".join(item.permissions or ()),
        item.second_factor or "none",
        _iso(item.last_seen_at),
        DECISIONS.get(item.decision, "not reviewed") if item.decision else "not reviewed",
        item.new_role_name or "",
        item.note or "",
        item.decided_by_label or "",
        _iso(item.decided_at),
    ]


def evidence_csv(app, org_id, review: AccessReview):
    """The campaign's items as CSV text chunks, read in batches on a
    connection of its own (organization set for RLS in its transaction)."""
    stmt = (
        select(AccessReviewItem.__table__)
        .where(
            AccessReviewItem.__table__.c.organization_id == org_id,
            AccessReviewItem.__table__.c.review_id == review.id,
        )
        .order_by(AccessReviewItem.__table__.c.name, AccessReviewItem.__table__.c.user_id)
    )
    name = review.name

    def generate():
        with app.app_context():
            with db.engine.connect() as conn, conn.begin():
                apply_tenant_settings(conn, org_id)
                result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": 1000})
                yield from csv_chunks(
                    EVIDENCE_COLUMNS, ([evidence_cells(name, r) for r in part] for part in result.partitions())
                )

    return generate()


def record_export(review: AccessReview) -> None:
    audit.record("review.exported", target=("access_review", str(review.id), review.name), metadata={"format": "csv"})


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


# --------------------------------------------------------------------------- jobs
def add_months(day: date, months: int) -> date:
    """``day`` ``months`` later, on the same day of the month or the month's last."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_start(review: AccessReview) -> date | None:
    months = RECURRENCES.get(review.recurrence)
    return add_months(review.starts_on, months) if months else None


def repeat_due(on: date | None = None) -> int:
    """Start the next campaign of every recurring campaign whose next start
    has come and that was not repeated yet, in its organization's scope;
    returns how many were started. Safe to repeat: ``successor_id`` is set
    under the campaign's row lock, and a repeated one is skipped."""
    on = on or today()
    with all_organizations(reason="access reviews: start the next campaign of recurring reviews"):
        due = db.session.execute(
            select(AccessReview.organization_id, AccessReview.id)
            .join(Organization, Organization.id == AccessReview.organization_id)
            .where(
                AccessReview.recurrence != "none",
                AccessReview.successor_id.is_(None),
                Organization.deleted_at.is_(None),
            )
        ).all()
    started = 0
    for org_id, review_id in due:
        with tenant_context(org_id):
            review = db.session.get(AccessReview, (org_id, review_id))
            if review is None:
                continue
            lock_for_edit(review)
            start = next_start(review)
            if review.successor_id is not None or start is None or start > on:
                db.session.rollback()
                continue
            eligible = {m.user_id: m for m in eligible_reviewers()}
            reviewers = set(eligible) & reviewer_ids(review)
            scope_perms = tuple(review.scope_permissions or ())
            if not reviewers or lone_reviewer_reviewed(list(reviewers), review.scope, scope_perms, eligible):
                # Nobody left, or one reviewer who could not decide on their
                # own row: every eligible reviewer is asked instead.
                reviewers = set(eligible)
            if not reviewers:
                db.session.rollback()
                continue
            plan = Plan(
                review.name,
                review.scope,
                tuple(review.scope_permissions or ()),
                tuple(sorted(reviewers)),
                on + (review.deadline - review.starts_on),
                review.recurrence,
            )
            successor = start_review(plan, actor=SYSTEM_ACTOR, start=on)
            _set(review, successor_id=successor.id)
            db.session.commit()
            started += 1
    return started


def _set(review: AccessReview, **values) -> None:
    # Bookkeeping of the jobs, not an edit: written without bumping the
    # version, so a reviewer's open page is not made stale by a reminder.
    db.session.execute(
        update(AccessReview)
        .where(AccessReview.id == review.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def remind_due(on: date | None = None) -> int:
    """E-mail each reviewer of every open campaign with undecided members
    (once a day per campaign at most: ``reminded_on``), saying how many are
    left and whether the deadline has passed; returns the mails queued."""
    from flask import current_app, url_for

    from app.mail import queue_mail
    from app.web import hosts

    on = on or today()
    with all_organizations(reason="access reviews: remind reviewers of undecided members"):
        due = db.session.execute(
            select(AccessReview.organization_id, AccessReview.id)
            .join(Organization, Organization.id == AccessReview.organization_id)
            .where(
                AccessReview.status == "open",
                or_(AccessReview.reminded_on.is_(None), AccessReview.reminded_on < on),
                Organization.deleted_at.is_(None),
                select(AccessReviewItem.user_id)
                .where(
                    and_(
                        AccessReviewItem.organization_id == AccessReview.organization_id,
                        AccessReviewItem.review_id == AccessReview.id,
                        AccessReviewItem.decision.is_(None),
                    )
                )
                .exists(),
            )
        ).all()
    sent = 0
    for org_id, review_id in due:
        with tenant_context(org_id):
            review = db.session.get(AccessReview, (org_id, review_id))
            org = db.session.get(Organization, org_id)
            lock_for_edit(review)
            if review.status != "open" or (review.reminded_on is not None and review.reminded_on >= on):
                db.session.rollback()
                continue
            pending = progress(review)["pending"]
            if not pending:
                db.session.rollback()
                continue
            with current_app.test_request_context(base_url=hosts.apex_url("/")):
                link = hosts.org_url(org, url_for("reviews.show", review_id=review.id))
            ids = reviewer_ids(review)
            people = (
                db.session.execute(select(Membership).where(Membership.user_id.in_(ids), Membership.status == "active"))
                .unique()
                .scalars()
                .all()
            )
            for m in people:
                if PERMISSION not in m.permissions:
                    continue
                overdue = review.deadline < on
                queue_mail(
                    m.user.email,
                    f"{'Overdue: ' if overdue else ''}{pending} member{'s' if pending != 1 else ''} to review in "
                    f"“{review.name}” ({org.name})",
                    "review_reminder",
                    user=m.user,
                    org=org,
                    review=review,
                    pending=pending,
                    overdue=overdue,
                    link=link,
                )
                sent += 1
            _set(review, reminded_on=on)
            db.session.commit()
    return sent


def permission_label(name: str) -> str:
    p = BY_NAME.get(name)
    return f"{name} ({p.description})" if p else name

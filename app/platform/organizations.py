"""Organizations in the platform console: the list, one organization's page,
and what a super-admin does to one (plan, suspension, restore, purge).

Guarantees:

* Everything reads and writes across organizations through
  ``all_organizations(reason=...)`` only (the cross-organization database
  role); nothing here runs as the runtime role on another organization's rows.
* Every action needs a reason (``UserError`` on the ``reason`` field
  otherwise) and is recorded twice, in the same transaction: in the
  organization's own log (``org.*``) and in the platform log (``platform.*``),
  both carrying the reason. A refusal raises before anything is flushed.
* Nothing here commits: the view commits, so a change and its two events
  are stored together or not at all.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, or_, select, text, tuple_, union

from app import audit, hooks
from app.audit.models import AuditEvent
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.platform.stats import SIZES
from app.scoping import all_organizations, tenant_context
from app.tenancy import entitlements, lifecycle
from app.tenancy.models import Membership, Organization, Plan
from app.util import escape_like, parse_uuid, utcnow

PAGE_SIZE = 50
MAX_SEARCH = 100
REASON_MAX = 500
STATUSES = ("all", "active", "suspended", "deleted")
# URL value -> (sort key expression, descending)
SORTS = {
    "name": (func.lower(Organization.name), False),
    "-name": (func.lower(Organization.name), True),
    "created": (Organization.created_at, False),
    "-created": (Organization.created_at, True),
}
DEFAULT_SORT = "name"


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ord(ch) >= 32)


def clean_reason(reason: str | None) -> str:
    """The reason as stored; ``UserError`` on the ``reason`` field when it is
    empty or too long (every action needs one)."""
    text = " ".join(_printable(reason or "").split())
    if not text:
        raise UserError("Give a reason: it is recorded in the audit logs.", "reason")
    if len(text) > REASON_MAX:
        raise UserError(f"Use at most {REASON_MAX} characters.", "reason")
    return text


# --------------------------------------------------------------------------- the list
@dataclass(frozen=True)
class OrgQuery:
    """The list's filters as they appear in the URL; ``from_args`` never raises
    (a value it does not understand falls back to the default)."""

    q: str = ""
    plan: str = ""
    status: str = "all"
    sort: str = DEFAULT_SORT
    after: str = ""
    size: str = ""

    @classmethod
    def from_args(cls, args, plans: list[str]) -> OrgQuery:
        q = " ".join(_printable(args.get("q") or "").split())[:MAX_SEARCH]
        plan = args.get("plan") if args.get("plan") in plans else ""
        status = args.get("status") if args.get("status") in STATUSES else "all"
        sort = args.get("sort") if args.get("sort") in SORTS else DEFAULT_SORT
        after = (args.get("after") or "")[:200]
        size = args.get("size") if args.get("size") in SIZES else ""
        return cls(q, plan, status, sort, after, size)

    def args(self, **changes) -> dict:
        """URL parameters with ``changes`` applied; defaults left out."""
        new = replace(self, **changes)
        out = {}
        for name, default in (
            ("q", ""),
            ("plan", ""),
            ("status", "all"),
            ("size", ""),
            ("sort", DEFAULT_SORT),
            ("after", ""),
        ):
            value = getattr(new, name)
            if value != default:
                out[name] = value
        return out

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.plan or self.status != "all" or self.size)


@dataclass(frozen=True)
class OrgRow:
    org: Organization
    members: int


@dataclass(frozen=True)
class OrgPage:
    rows: list[OrgRow]
    next_cursor: str | None


def _encode(value, org_id: uuid.UUID) -> str:
    v = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(json.dumps([v, str(org_id)]).encode()).decode().rstrip("=")


def _decode(sort: str, token: str):
    """``(value, id)`` from a cursor, or ``None`` for a malformed one (the first page then)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value, oid = raw
        oid = uuid.UUID(oid)
        if sort.lstrip("-") == "created":
            value = datetime.fromisoformat(value)
        elif not isinstance(value, str):
            return None
        return value, oid
    except (ValueError, TypeError, json.JSONDecodeError):
        return None


def _active_members():
    return (
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == Organization.id, Membership.status == "active")
        .correlate(Organization)
        .scalar_subquery()
    )


# Trigrams need three characters: a shorter search cannot use the indexes.
TRIGRAM_MIN = 3
_TRIGRAMS: dict[str, bool] = {}


def trigram_indexes() -> bool:
    """True when the migration could create the trigram indexes (pg_trgm
    present); asked once per database."""
    key = str(db.engine.url)
    if key not in _TRIGRAMS:
        _TRIGRAMS[key] = bool(
            db.session.execute(text("SELECT to_regclass('ix_organizations_name_trgm') IS NOT NULL")).scalar()
        )
    return _TRIGRAMS[key]


def _search(q: str):
    """Organizations whose name, address or custom domain contains ``q``, or
    one of whose owners' e-mail matches it; the condition is the same with or
    without trigram indexes (only its speed differs).

    * An address typed whole (``someone@example.com``) matches an owner's
      e-mail exactly, by the unique index on e-mails (a "contains" search of
      a common domain would read much of the trigram index).
    * Three characters or more: an owner's e-mail *contains* ``q``. Each
      column is matched through its own trigram index and the ids united (an
      OR across the columns would scan every organization).
    * One or two characters (no trigram to look up): name, address and
      domain still *contain* ``q`` (one scan of the organizations, which the
      keyset index usually stops early); owners' e-mails are not searched.
      Neither a "contains" nor a "starts with" over every owner's e-mail can
      stay fast: one letter starts (or is in) a good share of a million
      addresses (``u``: 280 ms at 300,000 users).
    """
    text_q = q.lower()
    like = f"%{escape_like(text_q)}%"
    email = func.lower(User.email)
    whole_address = "@" in text_q and " " not in text_q and "." in text_q.rsplit("@", 1)[1]
    owned = (
        select(Membership.organization_id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.role == "owner", email == text_q if whole_address else email.like(like))
    )
    columns = (func.lower(Organization.name), Organization.slug, func.lower(Organization.custom_domain))
    if len(text_q) < TRIGRAM_MIN and not whole_address:
        return or_(*[c.like(like) for c in columns])
    if trigram_indexes():
        matches = union(*[select(Organization.id).where(c.like(like)) for c in columns], owned)
        return Organization.id.in_(select(matches.subquery().c[0]))
    return or_(*[c.like(like) for c in columns], Organization.id.in_(owned))


def list_organizations(query: OrgQuery) -> OrgPage:
    """One keyset page of organizations (never OFFSET): search on name, slug,
    custom domain and an owner's e-mail; filters on plan and status."""
    key, desc = SORTS[query.sort]
    stmt = select(Organization, _active_members()).where(Organization.id != audit.PLATFORM_ORG_ID)
    if query.q:
        stmt = stmt.where(_search(query.q))
    if query.size:
        _label, low, high = SIZES[query.size]
        stmt = stmt.where(Organization.member_count >= low)
        if high is not None:
            stmt = stmt.where(Organization.member_count <= high)
    if query.plan:
        stmt = stmt.where(Organization.plan_key == query.plan)
    if query.status == "deleted":
        stmt = stmt.where(Organization.deleted_at.is_not(None))
    elif query.status in ("active", "suspended"):
        stmt = stmt.where(Organization.deleted_at.is_(None), Organization.status == query.status)
    cursor = _decode(query.sort, query.after) if query.after else None
    if cursor is not None:
        value, oid = cursor
        if desc:
            stmt = stmt.where(tuple_(key, Organization.id) < tuple_(value, oid))
        else:
            stmt = stmt.where(tuple_(key, Organization.id) > tuple_(value, oid))
    order = (key.desc(), Organization.id.desc()) if desc else (key.asc(), Organization.id.asc())
    stmt = stmt.order_by(*order).limit(PAGE_SIZE + 1)
    with all_organizations(reason="platform console: the organizations list"):
        rows = db.session.execute(stmt).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    items = [OrgRow(org, n) for org, n in rows]
    nxt = None
    if more and items:
        last = items[-1].org
        nxt = _encode(last.created_at if query.sort.lstrip("-") == "created" else last.name.lower(), last.id)
    return OrgPage(items, nxt)


def plan_choices() -> list[Plan]:
    return list(db.session.execute(select(Plan).order_by(Plan.sort_order, Plan.key)).scalars())


# --------------------------------------------------------------------------- one organization
@dataclass(frozen=True)
class OrgDetail:
    org: Organization
    owners: list[User]
    members: int
    usage: dict[str, int]
    entitlements: list[tuple[str, str, object, str]]
    events: list[AuditEvent]


def find(org_id) -> Organization | None:
    """The organization (live, suspended or deleted), or ``None`` for a
    malformed or unknown id and for the platform's own row."""
    oid = parse_uuid(org_id)
    if oid is None or oid == audit.PLATFORM_ORG_ID:
        return None
    with all_organizations(reason="platform console: one organization"):
        return db.session.get(Organization, oid)


def usage(org: Organization) -> dict[str, int]:
    """What the organization uses against its limits, as each area counts it
    (``hooks.usage_of``), read as the cross-organization role."""
    out: dict[str, int] = {}
    with all_organizations(reason="platform console: usage against limits"), tenant_context(org.id):
        for answer in hooks.usage_of.send(org):
            out.update(answer or {})
    return out


def detail(org: Organization, events: int = 15) -> OrgDetail:
    """Everything the organization's page shows."""
    with all_organizations(reason="platform console: an organization's page"):
        owners = list(
            db.session.execute(
                select(User)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.organization_id == org.id, Membership.role == "owner")
                .order_by(func.lower(User.email))
            ).scalars()
        )
        members = db.session.execute(
            select(func.count())
            .select_from(Membership)
            .where(Membership.organization_id == org.id, Membership.status == "active")
        ).scalar_one()
        recent = list(
            db.session.execute(
                select(AuditEvent)
                .where(AuditEvent.organization_id == org.id)
                .order_by(AuditEvent.id.desc())
                .limit(events)
            ).scalars()
        )
    return OrgDetail(org, owners, members, usage(org), entitlements.effective(org), recent)


# --------------------------------------------------------------------------- actions
def _platform_event(action: str, org: Organization, reason: str, **metadata) -> None:
    audit.record(
        action,
        target=org,
        organization_id=audit.PLATFORM_ORG_ID,
        metadata={"reason": reason, "organization": org.slug, **metadata},
    )


def plan_change_problems(org: Organization, plan: Plan) -> list[str]:
    """Sentences for every limit of ``plan`` below what ``org`` uses now."""
    used = usage(org)
    out = []
    for name, value in sorted(used.items()):
        new_limit = entitlements.plan_limit(plan, name)
        if new_limit is not None and value > new_limit:
            label = name.replace("_", " ")
            out.append(
                f"{org.name} uses {value:,} {label}; the {plan.name} plan allows {new_limit:,}. "
                f"Nothing is removed: the organization keeps what it has but cannot add more {label} "
                "until it is back under the limit."
            )
    return out


class NeedsConfirmation(UserError):
    """The change is allowed but has consequences the super-admin must confirm."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems), "confirm")
        self.problems = problems


def change_plan(org: Organization, plan_key: str, reason: str, *, confirmed: bool, version=None) -> bool:
    """Move ``org`` to the plan ``plan_key``; False when it is already on it.

    Refuses an unknown plan (``plan`` field) and an empty reason; a plan whose
    limits are below current usage raises ``NeedsConfirmation`` unless
    ``confirmed``. Recorded as ``org.plan_changed`` and ``platform.plan_changed``.
    """
    reason = clean_reason(reason)
    # Looked up among the plans, never sent as a key: any text may arrive here.
    plan = {p.key: p for p in plan_choices()}.get(plan_key) if isinstance(plan_key, str) else None
    if plan is None:
        raise UserError("Choose one of the plans listed.", "plan")
    with all_organizations(reason=f"platform console: change {org.slug}'s plan"):
        lock_for_edit(org, version)
        if org.plan_key == plan.key:
            return False
        problems = plan_change_problems(org, plan)
        if problems and not confirmed:
            raise NeedsConfirmation(problems)
        before = org.plan_key
        org.plan_key = plan.key
        org.plan = plan
        db.session.flush()
        change = {"before": {"plan_key": before}, "after": {"plan_key": plan.key}}
        meta = {"reason": reason}
        if problems:
            meta["over_limit"] = problems
        with tenant_context(org.id):
            audit.record("org.plan_changed", target=org, metadata=meta, **change)
        audit.record(
            "platform.plan_changed",
            target=org,
            organization_id=audit.PLATFORM_ORG_ID,
            metadata={**meta, "organization": org.slug},
            **change,
        )
    return True


def suspend(org: Organization, reason: str) -> None:
    """Suspend a live organization; its members see ``reason`` on the suspension page."""
    reason = clean_reason(reason)
    if org.deleted_at is not None:
        raise UserError("A deleted organization cannot be suspended.", "reason")
    if org.is_suspended:
        raise UserError("This organization is already suspended.", "reason")
    with all_organizations(reason=f"platform console: suspend {org.slug}"):
        lifecycle.set_status(org, "suspended", reason)
        _platform_event("platform.org_suspended", org, reason)


def reactivate(org: Organization, reason: str) -> None:
    """Reinstate a suspended organization (its suspension reason is cleared)."""
    reason = clean_reason(reason)
    if not org.is_suspended:
        raise UserError("This organization is not suspended.", "reason")
    with all_organizations(reason=f"platform console: reactivate {org.slug}"):
        lifecycle.set_status(org, "active", reason)
        _platform_event("platform.org_reactivated", org, reason)


def restore(org: Organization, reason: str) -> None:
    """Undo a deletion within the 30-day window (``lifecycle.restore``'s rules)."""
    reason = clean_reason(reason)
    with all_organizations(reason=f"platform console: restore {org.slug}"):
        try:
            lifecycle.restore(org, reason)
        except UserError as e:
            raise UserError(e.message, "reason") from None
        _platform_event("platform.org_restored", org, reason)


def purge_now(org: Organization, reason: str, typed: str) -> dict[str, int]:
    """Remove a deleted organization's data now, before its window ends.
    ``typed`` must be the organization's slug (``confirm`` field)."""
    reason = clean_reason(reason)
    if (typed or "").strip() != org.slug:
        raise UserError(f"Type {org.slug} to confirm.", "confirm")
    if org.deleted_at is None:
        raise UserError("Only a deleted organization can be purged: it must be deleted first.", "confirm")
    if org.purged_at is not None:
        raise UserError("This organization's data was already purged.", "confirm")
    with all_organizations(reason=f"platform console: purge {org.slug} now"):
        counts = lifecycle.purge(org.id, utcnow(), {"reason": reason})
        _platform_event("platform.org_purged", org, reason, rows_removed=counts)
    return counts

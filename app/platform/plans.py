"""Plans and per-organization overrides, as the platform console edits them.

Guarantees:

* Plans are data: a super-admin edits each limit and feature of a plan
  (``update_plan``); an organization gets its own value for one limit or
  feature, optionally until a date (``set_override``), or loses it
  (``remove_override``). Code elsewhere keeps asking
  ``app.tenancy.entitlements`` and follows without a change.
* Every write runs as the cross-organization role (the only role that may
  write plans and overrides) and needs a reason. A plan edit is recorded in
  the platform log; an override in the organization's log and the platform
  log, in the same transaction.
* A limit set below what organizations use now is refused with a sentence
  saying what it means (``NeedsConfirmation``) unless confirmed.
* Bad input (unknown name, a value that is not a whole number, a date in
  the past) raises ``UserError`` on its field before anything is flushed.
* Nothing here commits: the view does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import func, select

from app import audit
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.platform.organizations import NeedsConfirmation, clean_reason, plan_choices, usage
from app.scoping import all_organizations, tenant_context
from app.tenancy import entitlements
from app.tenancy.models import EntitlementOverride, Membership, Organization, Plan
from app.util import utcnow

MAX_LIMIT = 10_000_000  # a number a person means; larger ones are typos
UNLIMITED_WORDS = {"unlimited", "none", "no limit", "∞"}
# Some organizations named in a confirmation: enough to act on, short enough to read.
NAMED_ORGS = 5


def label(name: str) -> str:
    return name.replace("_", " ")


def parse_limit(raw, *, field: str, may_be_unlimited: bool) -> int | None:
    """A limit typed by a person: a whole number from 0, or (where allowed)
    empty/"unlimited" for no limit. ``UserError`` on ``field`` otherwise."""
    text = (raw if isinstance(raw, str) else "" if raw is None else str(raw)).strip().replace(",", "").replace("_", "")
    if text == "" or text.lower() in UNLIMITED_WORDS:
        if may_be_unlimited:
            return None
        raise UserError("Give a whole number (this limit cannot be unlimited).", field)
    if not (text.isascii() and text.isdigit()):
        raise UserError("Give a whole number from 0" + (', or "unlimited".' if may_be_unlimited else "."), field)
    value = int(text)
    if value > MAX_LIMIT:
        raise UserError(f"Use at most {MAX_LIMIT:,}.", field)
    return value


def find_plan(key) -> Plan | None:
    """The plan ``key`` names (looked up among the plans, never trusted), or ``None``."""
    if not isinstance(key, str):
        return None
    return {p.key: p for p in plan_choices()}.get(key)


# --------------------------------------------------------------------------- plans
def organizations_on_plan(plan: Plan) -> int:
    """Live organizations on ``plan``."""
    with all_organizations(reason="platform console: organizations on a plan"):
        return db.session.execute(
            select(func.count())
            .select_from(Organization)
            .where(
                Organization.plan_key == plan.key,
                Organization.deleted_at.is_(None),
                Organization.id != audit.PLATFORM_ORG_ID,
            )
        ).scalar_one()


def seats_over(plan: Plan, seats: int) -> list[tuple[str, int]]:
    """``(slug, active members)`` of live organizations on ``plan`` that have
    more members than ``seats`` and no seats override of their own; the
    largest first."""
    members = func.count()
    stmt = (
        select(Organization.slug, members)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(
            Organization.plan_key == plan.key,
            Organization.deleted_at.is_(None),
            Membership.status == "active",
            ~Organization.entitlement_overrides.has_key("seats"),
        )
        .group_by(Organization.id, Organization.slug)
        .having(members > seats)
        .order_by(members.desc(), Organization.slug)
    )
    with all_organizations(reason="platform console: organizations over a plan's seats"):
        return [(slug, n) for slug, n in db.session.execute(stmt).all()]


def plan_edit_problems(plan: Plan, limits: dict[str, int | None]) -> list[str]:
    """Sentences for every limit lowered below what an organization on the
    plan uses now (seats are counted; other limits' usage is not known to
    the console yet)."""
    out = []
    seats = limits.get("seats")
    old = entitlements.plan_limit(plan, "seats")
    if seats is not None and (old is None or seats < old):
        over = seats_over(plan, seats)
        if over:
            named = ", ".join(f"{slug} ({n:,})" for slug, n in over[:NAMED_ORGS])
            more = f" and {len(over) - NAMED_ORGS:,} more" if len(over) > NAMED_ORGS else ""
            out.append(
                f"{len(over):,} organization{'s' if len(over) != 1 else ''} on {plan.name} "
                f"{'have' if len(over) != 1 else 'has'} more members than {seats:,} seats: {named}{more}. "
                "Nothing is removed: they keep their members but cannot add more until they are under the limit."
            )
    return out


def update_plan(
    plan: Plan,
    limits: dict[str, int | None],
    features: dict[str, bool],
    reason: str,
    *,
    confirmed: bool,
    version=None,
) -> dict:
    """Set ``plan``'s limits and features; returns ``{"before", "after"}`` of
    what changed (empty when nothing did). Recorded as ``platform.plan_updated``."""
    reason = clean_reason(reason)
    for name, value in limits.items():
        if value is None and not entitlements.may_be_unlimited(name):
            raise UserError("Give a whole number (this limit cannot be unlimited).", f"limit_{name}")
    with all_organizations(reason=f"platform console: edit the {plan.key} plan"):
        lock_for_edit(plan, version)
        before, after = {}, {}
        for name, value in [*limits.items(), *features.items()]:
            attr = entitlements.plan_attribute(name)
            if getattr(plan, attr) != value:
                before[name], after[name] = getattr(plan, attr), value
        if not after:
            return {}
        problems = plan_edit_problems(plan, {n: v for n, v in limits.items() if n in after})
        if problems and not confirmed:
            raise NeedsConfirmation(problems)
        for name, value in after.items():
            setattr(plan, entitlements.plan_attribute(name), value)
        db.session.flush()
        meta = {"reason": reason, "plan": plan.key}
        if problems:
            meta["over_limit"] = problems
        audit.record(
            "platform.plan_updated",
            target=("plan", plan.key, plan.name),
            organization_id=audit.PLATFORM_ORG_ID,
            before=before,
            after=after,
            metadata=meta,
        )
    return {"before": before, "after": after}


# --------------------------------------------------------------------------- overrides
def overrides_of(org: Organization) -> list[EntitlementOverride]:
    """The organization's overrides (expired ones too, marked by ``until``), by name."""
    with all_organizations(reason="platform console: an organization's overrides"):
        return list(
            db.session.execute(
                select(EntitlementOverride)
                .where(EntitlementOverride.organization_id == org.id)
                .order_by(EntitlementOverride.name)
            ).scalars()
        )


def parse_until(raw) -> datetime | None:
    """An end date (the override holds until the start of that day, UTC), or
    ``None`` for no end; ``UserError`` on ``until`` for a date not in the future."""
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime):
        day = raw.date()
    elif isinstance(raw, date):
        day = raw
    else:
        try:
            day = date.fromisoformat(str(raw).strip())
        except ValueError:
            raise UserError("Give a date as YYYY-MM-DD, or leave it empty for no end.", "until") from None
    until = datetime.combine(day, time.min, tzinfo=UTC)
    if until <= utcnow():
        raise UserError("Give a date after today, or leave it empty for no end.", "until")
    return until


def _value_text(kind: str, value) -> str:
    if kind == "feature":
        return "on" if value else "off"
    return "unlimited" if value is None else f"{value:,}"


def set_override(
    org: Organization, name, raw_value, raw_until, reason: str, actor_id, *, confirmed: bool = False
) -> EntitlementOverride:
    """Give ``org`` its own value for the limit or feature ``name`` (replacing
    any override it had). A limit: a whole number or "unlimited"; a feature:
    ``on``/``off``. A limit below what the organization uses now raises
    ``NeedsConfirmation`` unless confirmed."""
    reason = clean_reason(reason)
    kind = entitlements.kind_of(name) if isinstance(name, str) else None
    if kind is None:
        raise UserError("Choose one of the limits or features listed.", "name")
    if kind == "limit":
        value = parse_limit(raw_value, field="value", may_be_unlimited=True)
    else:
        if raw_value not in ("on", "off"):
            raise UserError("Choose on or off.", "enabled")
        value = raw_value == "on"
    until = parse_until(raw_until)
    if kind == "limit" and value is not None and not confirmed:
        used = usage(org).get(name)
        if used is not None and used > value:
            raise NeedsConfirmation(
                [
                    f"{org.name} uses {used:,} {label(name)}; the override allows {value:,}. Nothing is removed: "
                    f"it keeps what it has but cannot add more {label(name)} until it is under the limit."
                ]
            )
    with all_organizations(reason=f"platform console: override {name} for {org.slug}"):
        row = db.session.get(EntitlementOverride, (org.id, name))
        before = {"value": _value_text(kind, row.limit_value if kind == "limit" else row.enabled)} if row else {}
        if row is None:
            row = EntitlementOverride(organization_id=org.id, name=name, kind=kind)
            db.session.add(row)
        row.limit_value = value if kind == "limit" else None
        row.enabled = value if kind == "feature" else None
        row.until, row.reason, row.created_by = until, reason, actor_id
        row.created_at = utcnow()
        db.session.flush()
        # The trigger rewrote the organization's copy: read it again.
        db.session.refresh(org, ["entitlement_overrides"])
        after = {"value": _value_text(kind, value), "until": until.date().isoformat() if until else None}
        meta = {"reason": reason, "entitlement": name, "kind": kind}
        with tenant_context(org.id):
            audit.record("org.entitlement_overridden", target=org, before=before or None, after=after, metadata=meta)
        audit.record(
            "platform.entitlement_overridden",
            target=org,
            organization_id=audit.PLATFORM_ORG_ID,
            before=before or None,
            after=after,
            metadata={**meta, "organization": org.slug},
        )
    return row


def remove_override(org: Organization, name, reason: str) -> None:
    """Remove ``org``'s override of ``name``: its plan's value applies again."""
    reason = clean_reason(reason)
    with all_organizations(reason=f"platform console: remove {org.slug}'s override"):
        row = db.session.get(EntitlementOverride, (org.id, name)) if isinstance(name, str) else None
        if row is None:
            raise UserError("This organization has no such override (it may have been removed already).", "reason")
        before = {
            "value": _value_text(row.kind, row.limit_value if row.kind == "limit" else row.enabled),
            "until": row.until.date().isoformat() if row.until else None,
        }
        db.session.delete(row)
        db.session.flush()
        db.session.refresh(org, ["entitlement_overrides"])
        meta = {"reason": reason, "entitlement": name}
        with tenant_context(org.id):
            audit.record("org.entitlement_override_removed", target=org, before=before, metadata=meta)
        audit.record(
            "platform.entitlement_override_removed",
            target=org,
            organization_id=audit.PLATFORM_ORG_ID,
            before=before,
            metadata={**meta, "organization": org.slug},
        )

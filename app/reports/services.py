"""Compliance reports: who has access, what changed, and security events, for a period.

Three reports (``KINDS``), each as a printable page and as a streamed CSV:

* **access**: every member as of now: role, effective permissions (a
  deactivated member holds none), second factor (yes/no and which kinds),
  where the role comes from (``role_source``: manual, SSO or SCIM), joined,
  last seen;
* **changes**: the audit log's role, permission, member, settings and
  security-policy changes in the period, with before and after
  (``CHANGE_ACTIONS``);
* **security**: failed sign-ins, lockouts (``auth.locked_out``, recorded
  by the sign-in throttles), second-factor changes, impersonations,
  break-glass sign-ins and every change made with an API key or by a support
  session in the period (``SECURITY_ACTIONS`` plus ``SECURITY_ACTOR_TYPES``).

Guarantees:

* **One statement per report**, whatever the organization's size: the access
  report joins memberships, users, custom roles and the second-factor
  look-ups in one query; the event reports read one range of the
  ``(organization_id, occurred_at)`` index. Nothing is asked per row.
* **Constant memory for CSV**: rows are fetched ``BATCH`` at a time through a
  server-side cursor on a connection of its own, whose transaction sets the
  organization for row-level security itself (the request's scope may be
  gone while the body streams), as the audit export does.
* **A validated period** (``Period.from_args``): ISO dates, the end not
  before the start, at most ``MAX_DAYS`` days, nothing in the future beyond
  today; anything else is a ``PeriodError`` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, exists, or_, select

from app.audit import catalogue
from app.audit.models import AuditEvent
from app.auth.models import TotpFactor, User
from app.database import apply_tenant_settings
from app.extensions import db
from app.permissions import ALL, PERMISSIONS, SYSTEM_ROLES
from app.rbac.models import Role
from app.tenancy.models import Membership
from app.web.downloads import csv_chunks

KINDS = {
    "access": "Access",
    "changes": "Changes",
    "security": "Security events",
}
DESCRIPTIONS = {
    "access": "Every member: role, effective permissions, second factor, where the role comes from, last seen.",
    "changes": "Role, permission, member, settings and security-policy changes, with before and after.",
    "security": (
        "Failed sign-ins, lockouts, second-factor changes, impersonations, break-glass sign-ins "
        "and everything done with an API key."
    ),
}
MAX_DAYS = 366
DEFAULT_DAYS = 30
BATCH = 1000
# A printable page shows at most this many rows (a report of 50,000 members
# is for the CSV); the page says so and links the CSV.
PAGE_ROWS = 2000

# The audit actions each event report lists: the one place to add an action
# when an area starts recording one (a test checks every name is in the
# audit catalogue, so a typo cannot silently drop events).
CHANGE_ACTIONS: tuple[str, ...] = (
    # roles and permissions
    "role.created",
    "role.updated",
    "role.deleted",
    "member.role_changed",
    "role.group_mapped",
    "role.group_unmapped",
    "role.group_mapping_changed",
    "org.ownership_transferred",
    # members
    "member.invited",
    "member.invitation_revoked",
    "member.invitation_role_changed",
    "member.joined",
    "member.added",
    "member.deactivated",
    "member.reactivated",
    "member.removed",
    "member.left",
    "member.auto_join_refused",
    # settings and security policy
    "org.settings_changed",
    "org.branding_changed",
    "org.security_changed",
    "org.notifications_changed",
    "org.domain_added",
    "org.domain_verified",
    "org.domain_unverified",
    "org.domain_settings_changed",
    "org.domain_removed",
    "org.custom_host_changed",
    "org.plan_changed",
    "org.entitlement_overridden",
    "org.entitlement_override_removed",
    # single sign-on connections (the sign-in policy)
    "sso.connection_created",
    "sso.connection_changed",
    "sso.connection_enabled",
    "sso.connection_disabled",
    "sso.user_provisioned",
    # access reviews (their decisions change roles through the events above)
    "review.started",
    "review.closed",
)
SECURITY_ACTIONS: tuple[str, ...] = (
    "auth.login_failed",
    "auth.locked_out",
    "auth.second_factor_failed",
    "auth.two_factor_enabled",
    "auth.two_factor_disabled",
    "auth.recovery_codes_regenerated",
    "auth.recovery_code_used",
    "auth.password_changed",
    "auth.password_reset",
    "auth.email_changed",
    "auth.session_revoked",
    "auth.sessions_revoked",
    "api_key.created",
    "api_key.updated",
    "api_key.revoked",
    "api_key.rotated",
    "platform.impersonation_started",
    "platform.impersonation_ended",
    "sso.sign_in_refused",
    "sso.break_glass_sign_in",
    "sso.setup_link_issued",
    "sso.setup_link_used",
    "org.security_changed",
)
# Every event by these actors is a security event too: an API key's use (each
# change made with a key) and a super-admin acting as a member.
SECURITY_ACTOR_TYPES: tuple[str, ...] = ("api_key", "support")


def listed(actions: tuple[str, ...]) -> tuple[str, ...]:
    """``actions`` that the audit catalogue knows (an area not installed records none)."""
    return tuple(a for a in actions if a in catalogue.ALL)


# --------------------------------------------------------------------------- the period
class PeriodError(ValueError):
    """A period that cannot be reported on; ``errors`` maps a field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Period:
    """A period of whole UTC days, ``start`` to ``end`` inclusive."""

    start: date
    end: date

    @classmethod
    def default(cls, today: date | None = None) -> Period:
        today = today or datetime.now(UTC).date()
        return cls(today - timedelta(days=DEFAULT_DAYS - 1), today)

    @classmethod
    def from_args(cls, args, today: date | None = None) -> Period:
        """The period in ``args`` (``from``, ``to``); both missing: the last
        ``DEFAULT_DAYS`` days. Raises ``PeriodError`` for a date that is not
        ``YYYY-MM-DD``, an end before the start, a start after today or a
        period longer than ``MAX_DAYS`` days."""
        today = today or datetime.now(UTC).date()
        raw = {name: (args.get(name) or "").strip() for name in ("from", "to")}
        if not raw["from"] and not raw["to"]:
            return cls.default(today)
        errors: dict[str, str] = {}
        parsed: dict[str, date] = {}
        for name, value in raw.items():
            if not value:
                errors[name] = "Choose a date."
                continue
            try:
                parsed[name] = date.fromisoformat(value[:10]) if len(value) == 10 else date.fromisoformat(value)
            except ValueError:
                errors[name] = "Use a date like 2026-01-31."
        if not errors:
            start, end = parsed["from"], parsed["to"]
            if end < start:
                errors["to"] = "The end date is before the start date."
            elif start > today:
                errors["from"] = "The period starts in the future."
            elif (end - start).days + 1 > MAX_DAYS:
                errors["to"] = f"Choose at most {MAX_DAYS} days; this period has {(end - start).days + 1:,}."
        if errors:
            raise PeriodError(errors)
        return cls(parsed["from"], parsed["to"])

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, UTC)

    @property
    def ends_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, UTC)

    def args(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


# --------------------------------------------------------------------------- access
def role_source_column():
    """Where a membership's role comes from (``manual``, ``sso``, ``scim``:
    ``memberships.role_source``), as a SQL expression: the one place the
    reports read it."""
    return Membership.role_source


def second_factor_kinds() -> list[tuple[str, object]]:
    """The second factors a member may have, as ``(label, SQL boolean)``
    evaluated per membership row in the access statement: add a line when a
    new kind of factor exists."""
    return [
        (
            "TOTP",
            exists().where(
                TotpFactor.user_id == Membership.user_id,
                TotpFactor.confirmed_at.is_not(None),
                TotpFactor.removed_at.is_(None),
            ),
        ),
    ]


ACCESS_COLUMNS = (
    "name",
    "email",
    "status",
    "role",
    "role_source",
    "permissions",
    "second_factor",
    "second_factor_kinds",
    "joined_at",
    "last_seen_at",
)


@dataclass(frozen=True)
class AccessRow:
    user_id: object
    name: str
    email: str
    status: str
    role: str
    role_source: str
    permissions: tuple[str, ...]
    factor_kinds: tuple[str, ...]
    joined_at: datetime
    last_seen_at: datetime | None

    @property
    def second_factor(self) -> bool:
        return bool(self.factor_kinds)

    def cells(self) -> list:
        return [
            self.name,
            self.email,
            self.status,
            self.role,
            self.role_source,
            " ".join(self.permissions),
            "yes" if self.second_factor else "no",
            " ".join(self.factor_kinds),
            _iso(self.joined_at),
            _iso(self.last_seen_at),
        ]


_CATALOGUE_ORDER = {p.name: i for i, p in enumerate(PERMISSIONS)}


def effective_permissions(status: str, system_role: str | None, custom_permissions) -> tuple[str, ...]:
    """What a membership may do, in catalogue order: its role's permissions
    that the catalogue knows; nothing for a deactivated member (the same rule
    as ``Membership.permissions``, from columns instead of a loaded row)."""
    if status != "active":
        return ()
    if system_role:
        held = SYSTEM_ROLES[system_role].permissions
    else:
        held = frozenset(custom_permissions or ()) & ALL
    return tuple(sorted(held, key=_CATALOGUE_ORDER.__getitem__))


def access_statement():
    """The access report's one statement: every membership of the current
    organization with its user, custom role, role source and second factors,
    by name."""
    kinds = second_factor_kinds()
    return (
        select(
            Membership.user_id,
            User.name,
            User.email,
            Membership.status,
            Membership.role,
            Role.name.label("custom_role_name"),
            Role.permissions.label("custom_permissions"),
            role_source_column().label("role_source"),
            Membership.created_at,
            Membership.last_seen_at,
            *[expr.label(f"factor_{i}") for i, (_label, expr) in enumerate(kinds)],
        )
        .join(User, User.id == Membership.user_id)
        .outerjoin(
            Role,
            and_(Role.organization_id == Membership.organization_id, Role.id == Membership.custom_role_id),
        )
        .order_by(User.name, User.email, Membership.user_id)
    )


def access_row(r) -> AccessRow:
    kinds = second_factor_kinds()
    role = SYSTEM_ROLES[r.role].name if r.role else (r.custom_role_name or "Custom role")
    return AccessRow(
        user_id=r.user_id,
        name=r.name,
        email=r.email,
        status=r.status,
        role=role,
        role_source=r.role_source or "manual",
        permissions=effective_permissions(r.status, r.role, r.custom_permissions),
        factor_kinds=tuple(label for i, (label, _expr) in enumerate(kinds) if getattr(r, f"factor_{i}")),
        joined_at=r.created_at,
        last_seen_at=r.last_seen_at,
    )


# --------------------------------------------------------------------------- events
EVENT_COLUMNS = (
    "occurred_at",
    "action",
    "description",
    "actor_type",
    "actor",
    "target_type",
    "target",
    "before",
    "after",
    "ip",
    "event_id",
)


@dataclass(frozen=True)
class EventRow:
    id: int
    occurred_at: datetime
    action: str
    actor_type: str
    actor: str
    target_type: str
    target: str
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    ip: str = ""

    @property
    def description(self) -> str:
        return catalogue.describe(self.action)

    def cells(self) -> list:
        return [
            _iso(self.occurred_at),
            self.action,
            self.description,
            self.actor_type,
            self.actor,
            self.target_type,
            self.target,
            _json(self.before),
            _json(self.after),
            self.ip,
            self.id,
        ]


def _event_condition(kind: str):
    if kind == "changes":
        return AuditEvent.action.in_(listed(CHANGE_ACTIONS))
    return or_(AuditEvent.action.in_(listed(SECURITY_ACTIONS)), AuditEvent.actor_type.in_(SECURITY_ACTOR_TYPES))


def events_statement(kind: str, period: Period):
    """The ``changes`` or ``security`` report's one statement: the period's
    matching events of the current organization, oldest first (a range of
    the ``(organization_id, occurred_at)`` index)."""
    t = AuditEvent
    return (
        select(
            t.id,
            t.occurred_at,
            t.action,
            t.actor_type,
            t.actor_label,
            t.target_type,
            t.target_label,
            t.target_id,
            t.changes,
            t.ip,
        )
        .where(t.occurred_at >= period.starts_at, t.occurred_at < period.ends_before, _event_condition(kind))
        .order_by(t.occurred_at, t.id)
    )


def event_row(r) -> EventRow:
    # ``changes`` is ``{field: [before, after]}`` (``app.audit.diff``).
    changes = r.changes or {}
    before = {k: v[0] for k, v in changes.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None}
    after = {k: v[1] for k, v in changes.items() if isinstance(v, list) and len(v) == 2 and v[1] is not None}
    return EventRow(
        id=r.id,
        occurred_at=r.occurred_at,
        action=r.action,
        actor_type=r.actor_type,
        actor=r.actor_label or "",
        target_type=r.target_type or "",
        target=r.target_label or (r.target_id or ""),
        before=before,
        after=after,
        ip=str(r.ip) if r.ip is not None else "",
    )


# --------------------------------------------------------------------------- reading
def _statement(kind: str, period: Period):
    return access_statement() if kind == "access" else events_statement(kind, period)


def _row(kind: str, r):
    return access_row(r) if kind == "access" else event_row(r)


def columns(kind: str) -> tuple[str, ...]:
    return ACCESS_COLUMNS if kind == "access" else EVENT_COLUMNS


@dataclass
class Report:
    """A report as a page shows it: at most ``PAGE_ROWS`` rows, and whether there are more."""

    kind: str
    period: Period
    rows: list
    truncated: bool
    generated_at: datetime

    @property
    def title(self) -> str:
        return KINDS[self.kind]


def build(kind: str, period: Period) -> Report:
    """The report for a page, in one statement (``PAGE_ROWS`` + 1 rows at most)."""
    rows = db.session.execute(_statement(kind, period).limit(PAGE_ROWS + 1)).all()
    return Report(
        kind,
        period,
        [_row(kind, r) for r in rows[:PAGE_ROWS]],
        len(rows) > PAGE_ROWS,
        datetime.now(UTC),
    )


def csv_stream(app, org_id, kind: str, period: Period):
    """A generator of CSV text: every row of the report, fetched ``BATCH`` at a
    time on a connection of its own (organization set for RLS in its own
    transaction, the statement also naming the organization)."""
    stmt = _statement(kind, period)
    model = Membership if kind == "access" else AuditEvent
    stmt = stmt.where(model.organization_id == org_id)

    def generate():
        with app.app_context():
            with db.engine.connect() as conn, conn.begin():
                apply_tenant_settings(conn, org_id)
                result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": BATCH})
                yield from csv_chunks(
                    columns(kind),
                    ([_row(kind, r).cells() for r in part] for part in result.partitions()),
                )

    return generate()


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""

"""Entitlements: what an organization may use, asked by name, never by plan.

Code asks ``limit(org, "seats")`` or ``entitled(org, "sso")``; nothing else
reads a plan's columns or compares a plan's name. An answer comes from the
organization's own override when it has one that has not expired
(``EntitlementOverride``: a trial, a contract), else from its plan.

The overrides are read from ``Organization.entitlement_overrides`` (a copy
kept by a database trigger), which arrives with the organization in the
request's one entry statement: no question here costs a statement. An
override's ``until`` is applied when it is read, so an expired override
stops counting at that instant, with no job to run.

Code that runs on a bare connection rather than the ORM session (the audit
purge, on the owner's connection) asks ``limit_query(name, org_id)``: the
same answer as one SELECT, built from the same columns, expiry included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import TIMESTAMP

from app.tenancy.models import Organization, Plan
from app.util import utcnow

# Limit name -> the plan column that holds it (NULL: unlimited).
_LIMITS = {
    "seats": Plan.max_members,
    "audit_retention_days": Plan.audit_retention_days,
    "api_requests_per_minute": Plan.api_requests_per_minute,
    "max_webhooks": Plan.max_webhooks,
}

# Feature name -> the plan column that says whether the plan includes it.
_FEATURES = {
    "api": Plan.feature_api,
    "audit_streaming": Plan.feature_audit_streaming,
    "branding": Plan.feature_branding,
    "custom_domains": Plan.feature_custom_domains,
    "custom_roles": Plan.feature_custom_roles,
    "ip_allowlist": Plan.feature_ip_allowlist,
    "scim": Plan.feature_scim,
    "sso": Plan.feature_sso,
}


# What pages call each limit and feature (a name not listed reads as itself).
LABELS = {
    "seats": "Seats",
    "audit_retention_days": "Audit retention (days)",
    "api_requests_per_minute": "API requests per minute",
    "max_webhooks": "Webhook endpoints",
    "api": "API",
    "audit_streaming": "Audit streaming",
    "branding": "Branding",
    "custom_domains": "Custom domains",
    "custom_roles": "Custom roles",
    "ip_allowlist": "IP allow-list",
    "scim": "SCIM directory sync",
    "sso": "Single sign-on (SSO)",
}


def label(name: str) -> str:
    """The limit's or feature's name as pages show it."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def limit_names() -> list[str]:
    """Every limit's name, in a stable order."""
    return list(_LIMITS)


def feature_names() -> list[str]:
    """Every feature's name, sorted."""
    return sorted(_FEATURES)


def plan_limit(plan: Plan, name: str) -> int | None:
    """What ``plan`` itself allows for the limit ``name`` (``None``: unlimited)."""
    return getattr(plan, _column(name).key)


def plan_feature(plan: Plan, name: str) -> bool:
    """Whether ``plan`` itself includes the feature ``name``."""
    return bool(getattr(plan, _FEATURES[name].key))


def plan_attribute(name: str) -> str:
    """The ``Plan`` attribute holding the limit or feature ``name`` (for the
    console, which edits plans as data); ``KeyError`` for an unknown name."""
    column = _LIMITS.get(name) or _FEATURES.get(name)
    if column is None:
        raise KeyError(f"unknown limit or feature {name!r}")
    return column.key


def may_be_unlimited(name: str) -> bool:
    """True when a plan may leave the limit ``name`` unset (unlimited)."""
    return bool(Plan.__table__.c[_column(name).key].nullable)


@dataclass(frozen=True)
class Override:
    """An organization's own value for one limit or feature, as read."""

    value: object  # int | None (unlimited) for a limit, bool for a feature
    until: datetime | None


def override(org: Organization, name: str, now: datetime | None = None) -> Override | None:
    """The organization's override of ``name`` in force at ``now``, or ``None``."""
    raw = (org.entitlement_overrides or {}).get(name)
    if not isinstance(raw, dict):
        return None
    until = datetime.fromisoformat(raw["until"]) if raw.get("until") else None
    if until is not None and until <= (now or utcnow()):
        return None
    return Override(raw.get("value"), until)


def _source(org: Organization, found: Override | None) -> str:
    if found is None:
        return f"plan {org.plan_key}"
    if found.until is None:
        return "override"
    return f"override until {found.until:%Y-%m-%d %H:%M} UTC"


def effective(org: Organization) -> list[tuple[str, str, object, str]]:
    """Every entitlement of ``org`` as ``(kind, name, value, source)``:
    kind ``limit`` or ``feature``, the value ``limit``/``entitled`` answer,
    and where it comes from: ``plan <key>``, ``override`` or ``override
    until <date> UTC``."""
    now = utcnow()
    rows: list[tuple[str, str, object, str]] = [
        ("limit", n, limit(org, n), _source(org, override(org, n, now))) for n in _LIMITS
    ]
    rows += [("feature", f, entitled(org, f), _source(org, override(org, f, now))) for f in sorted(_FEATURES)]
    return rows


def kind_of(name: str) -> str | None:
    """``limit`` or ``feature`` for a known name, else ``None``."""
    return "limit" if name in _LIMITS else "feature" if name in _FEATURES else None


def _column(name: str):
    try:
        return _LIMITS[name]
    except KeyError:
        raise KeyError(f"unknown limit {name!r}; known: {sorted(_LIMITS)}") from None


def limit(org: Organization, name: str) -> int | None:
    """The organization's limit called ``name``; ``None`` means unlimited.

    An unknown name raises ``KeyError``: a misspelt limit must fail loudly,
    not read as "unlimited".
    """
    column = _column(name)
    found = override(org, name)
    if found is not None:
        return found.value
    return getattr(org.plan, column.key)


def limit_query(name: str, org_id) -> Select:
    """``limit(org, name)`` as a SELECT of one value, for a bare connection:
    the override in force (its ``until`` compared with the transaction's
    clock), else the plan's."""
    column = _column(name)
    entry = Organization.entitlement_overrides[name]
    until = entry["until"].astext
    in_force = and_(
        Organization.entitlement_overrides.has_key(name),
        or_(until.is_(None), cast(until, TIMESTAMP(timezone=True)) > func.now()),
    )
    value = case((in_force, cast(entry["value"].astext, Integer)), else_=column)
    return (
        select(value.label(name))
        .select_from(Organization)
        .join(Plan, Plan.key == Organization.plan_key)
        .where(Organization.id == org_id)
    )


def entitled(org: Organization, feature: str) -> bool:
    """True when the organization may use ``feature``; an unknown name raises ``KeyError``."""
    if feature not in _FEATURES:
        raise KeyError(f"unknown feature {feature!r}; known: {sorted(_FEATURES)}")
    found = override(org, feature)
    if found is not None:
        return bool(found.value)
    return bool(getattr(org.plan, _FEATURES[feature].key))

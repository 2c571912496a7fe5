"""Entitlements: what an organization may use, asked by name, never by plan.

Code asks ``limit(org, "seats")`` or ``entitled(org, "sso")``; nothing else
reads a plan's columns or compares a plan's name. Today every answer comes
from the organization's plan; the platform issue adds per-organization
overrides here, and every caller follows without a change.

Code that runs on a bare connection rather than the ORM session (the audit
purge, on the owner's connection) asks ``limit_query(name, org_id)``: the
same answer as one SELECT, built from the same table below.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from app.tenancy.models import Organization, Plan

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


def limit_names() -> list[str]:
    """Every limit's name, in a stable order."""
    return list(_LIMITS)


def feature_names() -> list[str]:
    """Every feature's name, sorted."""
    return sorted(_FEATURES)


def plan_limit(plan: Plan, name: str) -> int | None:
    """What ``plan`` itself allows for the limit ``name`` (``None``: unlimited)."""
    return getattr(plan, _column(name).key)


def effective(org: Organization) -> list[tuple[str, str, object, str]]:
    """Every entitlement of ``org`` as ``(kind, name, value, source)``:
    kind ``limit`` or ``feature``, the value ``limit``/``entitled`` answer,
    and where it comes from (today always ``plan <key>``; overrides will
    name themselves here)."""
    source = f"plan {org.plan_key}"
    rows: list[tuple[str, str, object, str]] = [("limit", n, limit(org, n), source) for n in _LIMITS]
    rows += [("feature", f, entitled(org, f), source) for f in sorted(_FEATURES)]
    return rows


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
    return getattr(org.plan, _column(name).key)


def limit_query(name: str, org_id) -> Select:
    """``limit(org, name)`` as a SELECT of one value, for a bare connection."""
    return (
        select(_column(name))
        .select_from(Organization)
        .join(Plan, Plan.key == Organization.plan_key)
        .where(Organization.id == org_id)
    )


def entitled(org: Organization, feature: str) -> bool:
    """True when the organization may use ``feature``; an unknown name raises ``KeyError``."""
    if feature not in _FEATURES:
        raise KeyError(f"unknown feature {feature!r}; known: {sorted(_FEATURES)}")
    return bool(getattr(org.plan, _FEATURES[feature].key))

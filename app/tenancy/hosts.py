"""Host → organization: decided once per request, here and nowhere else."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import bindparam, select

from app.extensions import db
from app.web.hosts import SLUG_PATTERN, normalise


@dataclass(frozen=True)
class HostMatch:
    kind: str  # "apex", "org" or "unknown"
    slug: str | None = None
    custom_domain: str | None = None


def apex() -> str:
    return current_app.config["TENANTRY_SERVER_NAME"]


def classify(host: str) -> HostMatch:
    """Classify a Host header value (normalised, port kept) without touching the database."""
    host = normalise(host)
    base = apex()
    if host == base:
        return HostMatch("apex")
    suffix = "." + base
    if host.endswith(suffix):
        label = host[: -len(suffix)]
        if "." not in label and SLUG_PATTERN.match(label):
            return HostMatch("org", slug=label)
        return HostMatch("unknown")
    if host and re.fullmatch(r"[a-z0-9.-]+(:\d+)?", host):
        return HostMatch("org", custom_domain=host)
    return HostMatch("unknown")


def organization_criteria(by_slug: bool) -> list:
    """WHERE clauses selecting the live organization an ``org`` host names,
    with bound parameters filled by ``organization_params``."""
    from app.tenancy.models import Organization

    criteria = [Organization.deleted_at.is_(None)]
    if by_slug:
        criteria.append(Organization.slug == bindparam("host_slug"))
    else:
        criteria += [
            Organization.custom_domain.in_([bindparam("host_domain"), bindparam("host_bare_domain")]),
            Organization.custom_domain_verified_at.is_not(None),
        ]
    return criteria


def organization_params(match: HostMatch) -> dict:
    if match.slug:
        return {"host_slug": match.slug}
    return {"host_domain": match.custom_domain, "host_bare_domain": match.custom_domain.split(":")[0]}


@functools.cache
def _organization_statement(by_slug: bool):
    from app.tenancy.models import Organization

    return select(Organization).where(*organization_criteria(by_slug))


def load_organization(match: HostMatch):
    """The live organization a host names, or ``None`` (unknown or deleted)."""
    if match.kind != "org":
        return None
    stmt = _organization_statement(bool(match.slug))
    return db.session.execute(stmt, organization_params(match)).scalars().first()


def org_host(org) -> str:
    """The host an organization is served on (its verified custom domain, if any)."""
    if getattr(org, "custom_domain", None) and org.custom_domain_verified_at:
        return org.custom_domain
    return f"{org.slug}.{apex()}"


def scheme() -> str:
    return current_app.config.get("PREFERRED_URL_SCHEME", "http")


def org_url(org, path: str = "/") -> str:
    """Absolute URL of ``path`` on ``org``'s host."""
    return f"{scheme()}://{org_host(org)}{path}"


def apex_url(path: str = "/") -> str:
    return f"{scheme()}://{apex()}{path}"


def is_own_host(host: str) -> bool:
    """True when ``host`` is the apex, an organization subdomain, or a verified custom domain."""
    m = classify(host)
    if m.kind == "apex":
        return True
    if m.kind == "org" and m.slug:
        return True
    if m.kind == "org" and m.custom_domain:
        return load_organization(m) is not None
    return False


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target that cannot leave this product (no open redirects).

    Relative paths are kept; absolute URLs only when they point at one of our
    own hosts with our scheme. Anything else becomes ``default``.
    """
    if not target:
        return default
    target = target.strip()
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        if target.startswith("/") and not target.startswith("//"):
            return target
        return default
    if parts.scheme in ("http", "https") and parts.netloc and is_own_host(parts.netloc):
        return target
    return default

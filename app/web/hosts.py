"""Host names and URLs as this product uses them (foundation: no database,
no models).

Which host serves what: the apex (``TENANTRY_SERVER_NAME``), each
organization at ``<slug>.<apex>``, and verified custom domains. Whether a
custom domain belongs to a live organization is a database question that
tenancy answers: it registers the answer with ``register_custom_domain_lookup``
(``app.tenancy.request.init_app``); until it does, no custom domain is ours
(fail closed). ``app.tenancy.hosts`` loads the organization a host names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

CUSTOM_DOMAIN_LOOKUP = "tenantry.custom_domain_lookup"

# An organization's slug: one DNS label of 3 to 63 characters, so that
# ``<slug>.<SERVER_NAME>`` is a valid host name. The database checks the same
# pattern (constraint ck_organizations_slug_dns, migration 0001).
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")


def normalise(host: str | None) -> str:
    """``host`` as this product names it: no surrounding whitespace, lower
    case, no trailing dot on the name (``Acme.Example.:443`` and
    ``acme.example:443.`` are ``acme.example:443``), port kept.

    Code that checks a host and then uses it normalises once and uses the
    result for both, so what was checked is what is stored, compared and
    redirected to.
    """
    host = (host or "").strip().lower().rstrip(".")
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = f"{name.rstrip('.')}:{port}"
    return host


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


def register_custom_domain_lookup(app, lookup: Callable[[HostMatch], bool]) -> None:
    """Let ``is_own_host`` ask ``lookup(match)`` whether a live organization
    serves a custom domain (tenancy registers it; this layer has no database)."""
    app.extensions[CUSTOM_DOMAIN_LOOKUP] = lookup


def is_own_host(host: str) -> bool:
    """True when ``host`` is the apex, an organization subdomain, or a verified custom domain."""
    m = classify(host)
    if m.kind == "apex":
        return True
    if m.kind == "org" and m.slug:
        return True
    if m.kind == "org" and m.custom_domain:
        lookup = current_app.extensions.get(CUSTOM_DOMAIN_LOOKUP)
        return lookup is not None and lookup(m)
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

"""Host → organization: decided once per request, here and nowhere else.

The host's kind and the URLs of each host are foundation (``app.web.hosts``);
this module loads the organization an ``org`` host names, and answers for
``app.web.hosts.is_own_host`` whether a custom domain is one of ours.
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.tenancy.models import Organization
from app.web.hosts import HostMatch


def organization_criteria(by_slug: bool) -> list:
    """WHERE clauses selecting the live organization an ``org`` host names,
    with bound parameters filled by ``organization_params``."""
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
    # The plan comes in the same statement: entitlements (seats, limits) are
    # asked on most pages, and a lazy load would be one more round trip.
    return select(Organization).options(joinedload(Organization.plan)).where(*organization_criteria(by_slug))


def load_organization(match: HostMatch):
    """The live organization a host names, or ``None`` (unknown or deleted)."""
    if match.kind != "org":
        return None
    stmt = _organization_statement(bool(match.slug))
    return db.session.execute(stmt, organization_params(match)).scalars().first()


def serves_custom_domain(match: HostMatch) -> bool:
    """True when a live organization is served on ``match``'s verified custom domain."""
    return load_organization(match) is not None

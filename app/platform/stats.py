"""Cached figures for the console: what would otherwise scan a big table per request.

At 10,000 organizations and 1,000,000 users, counting users, active
organizations and every organization's members on each page view costs
hundreds of milliseconds. The periodic job ``platform.refresh_stats``
(every 10 minutes) counts them once:

* ``organizations.member_count``: active members per organization (the
  list's size filter); only rows whose count changed are written.
* ``platform_stats['overview']``: users, disabled users, organizations
  active in the last 7 and 30 days.

Guarantees: everything runs as the cross-organization role; a reader gets
the figures with the time they were counted (``refreshed_at``), and the
page says so; when none were ever counted (a fresh install whose worker
has not run yet), ``overview()`` counts them once, now, and stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.scoping import all_organizations
from app.tenancy.models import PlatformStats
from app.util import utcnow

OVERVIEW = "overview"
# Size buckets of the organizations list: URL value -> (label, lowest, highest or None).
SIZES = {
    "1": ("1 member", 0, 1),
    "2-10": ("2 to 10", 2, 10),
    "11-100": ("11 to 100", 11, 100),
    "101-1000": ("101 to 1,000", 101, 1000),
    "1000+": ("More than 1,000", 1001, None),
}

_MEMBER_COUNTS = text(
    """
    UPDATE organizations o SET member_count = c.n
      FROM (SELECT o2.id, count(m.user_id) AS n
              FROM organizations o2
              LEFT JOIN memberships m ON m.organization_id = o2.id AND m.status = 'active'
             GROUP BY o2.id) c
     WHERE o.id = c.id AND o.member_count IS DISTINCT FROM c.n
    """
)

_OVERVIEW_COUNTS = text(
    """
    SELECT (SELECT count(*) FROM users) AS users,
           (SELECT count(*) FROM users WHERE disabled_at IS NOT NULL) AS disabled_users,
           (SELECT count(DISTINCT organization_id) FROM memberships
             WHERE last_seen_at >= now() - interval '7 days') AS active_7,
           (SELECT count(DISTINCT organization_id) FROM memberships
             WHERE last_seen_at >= now() - interval '30 days') AS active_30
    """
)


@dataclass(frozen=True)
class Overview:
    users: int
    disabled_users: int
    active_7: int
    active_30: int
    refreshed_at: datetime


def refresh() -> dict:
    """Count everything now and store it (caller commits). Returns the overview figures."""
    with all_organizations(reason="platform stats: count members, users and active organizations"):
        changed = db.session.execute(_MEMBER_COUNTS).rowcount
        figures = dict(db.session.execute(_OVERVIEW_COUNTS).mappings().one())
        row = db.session.get(PlatformStats, OVERVIEW)
        if row is None:
            row = PlatformStats(key=OVERVIEW, value=figures)
            db.session.add(row)
        row.value = figures
        row.refreshed_at = utcnow()
        db.session.flush()
    return {**figures, "member_counts_changed": changed}


def overview(max_age: timedelta | None = None) -> Overview:
    """The cached overview figures; counted now (and stored) when there are
    none yet, or when they are older than ``max_age``."""
    with all_organizations(reason="platform console: cached overview figures"):
        row = db.session.get(PlatformStats, OVERVIEW)
    if row is None or (max_age is not None and utcnow() - row.refreshed_at > max_age):
        refresh()
        db.session.commit()
        with all_organizations(reason="platform console: cached overview figures"):
            row = db.session.get(PlatformStats, OVERVIEW)
    v = row.value
    return Overview(v["users"], v["disabled_users"], v["active_7"], v["active_30"], row.refreshed_at)

"""The console's overview figures.

Counted from the tables directly (organizations, users, memberships'
``last_seen_at``), as the cross-organization role. The issue asks for the
overview from daily rollups at scale (10,000 organizations, 1,000,000
users); those rollups do not exist yet, so these counts are exact and cost a
scan of each table (see the report of the platform issue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from app import audit
from app.auth.models import User
from app.extensions import db
from app.jobs import admin as jobs_admin
from app.scoping import all_organizations
from app.tenancy.models import Membership, Organization
from app.util import utcnow


@dataclass(frozen=True)
class Kpis:
    by_plan: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    organizations: int
    users: int
    disabled_users: int
    active_7: int
    active_30: int
    queue_depth: int
    oldest_job_seconds: float | None
    failed_jobs: int


def kpis() -> Kpis:
    """The overview's figures (live organizations unless said otherwise)."""
    now = utcnow()
    live = (Organization.id != audit.PLATFORM_ORG_ID, Organization.deleted_at.is_(None))
    with all_organizations(reason="platform console: overview figures"):
        by_plan = db.session.execute(
            select(Organization.plan_key, func.count())
            .where(*live)
            .group_by(Organization.plan_key)
            .order_by(Organization.plan_key)
        ).all()
        status_rows = dict(
            db.session.execute(
                select(Organization.status, func.count()).where(*live).group_by(Organization.status)
            ).all()
        )
        deleted = db.session.execute(
            select(func.count())
            .select_from(Organization)
            .where(Organization.id != audit.PLATFORM_ORG_ID, Organization.deleted_at.is_not(None))
        ).scalar_one()
        users, disabled = db.session.execute(select(func.count(), func.count(User.disabled_at)).select_from(User)).one()

        def active_since(days: int) -> int:
            return db.session.execute(
                select(func.count(func.distinct(Membership.organization_id))).where(
                    Membership.last_seen_at >= now - timedelta(days=days)
                )
            ).scalar_one()

        active_7, active_30 = active_since(7), active_since(30)
    db.session.rollback()
    queues = jobs_admin.status(limit=0).queues
    ages = [q.oldest_waiting_seconds for q in queues if q.oldest_waiting_seconds is not None]
    by_status = [
        ("active", status_rows.get("active", 0)),
        ("suspended", status_rows.get("suspended", 0)),
        ("deleted", deleted),
    ]
    return Kpis(
        by_plan=[(k, n) for k, n in by_plan],
        by_status=by_status,
        organizations=sum(n for _, n in by_plan),
        users=users,
        disabled_users=disabled,
        active_7=active_7,
        active_30=active_30,
        queue_depth=sum(q.waiting for q in queues),
        oldest_job_seconds=max(ages) if ages else None,
        failed_jobs=sum(q.failed for q in queues),
    )

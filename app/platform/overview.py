"""The console's overview figures, cheap at 10,000 organizations and 1,000,000 users.

Organizations by plan and status are counted live (one grouped scan of the
organizations table: small). Users, disabled users and organizations active
in the last 7 and 30 days would scan the users and memberships tables on
every view; they come from ``app.platform.stats`` (counted every 10 minutes
by a periodic job), with the time they were counted. The job queue's depth
is asked of the queue. Charts over time (sign-ups, events per day) come
from the analytics rollups and their chart component, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from app import audit
from app.audit import rollups
from app.extensions import db
from app.jobs import admin as jobs_admin
from app.platform import stats
from app.scoping import all_organizations
from app.tenancy.models import Organization
from app.util import utcnow
from app.web.charts import Chart, Series, daily_chart, days_between

CHART_DAYS = 90
WEBHOOK_WINDOW_DAYS = 7


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
    counted_at: datetime


def kpis() -> Kpis:
    """The overview's figures (live organizations unless said otherwise):
    one grouped statement on organizations, one read of the cached figures,
    and the queue's state."""
    not_platform = Organization.id != audit.PLATFORM_ORG_ID
    deleted = Organization.deleted_at.is_not(None)
    with all_organizations(reason="platform console: overview figures"):
        rows = db.session.execute(
            select(Organization.plan_key, Organization.status, deleted.label("deleted"), func.count())
            .where(not_platform)
            .group_by(Organization.plan_key, Organization.status, deleted)
        ).all()
    cached = stats.overview()
    db.session.rollback()
    by_plan: dict[str, int] = {}
    by_status = {"active": 0, "suspended": 0, "deleted": 0}
    for plan_key, status, is_deleted, n in rows:
        if is_deleted:
            by_status["deleted"] += n
            continue
        by_plan[plan_key] = by_plan.get(plan_key, 0) + n
        by_status[status] = by_status.get(status, 0) + n
    queues = jobs_admin.status(limit=0).queues
    ages = [q.oldest_waiting_seconds for q in queues if q.oldest_waiting_seconds is not None]
    return Kpis(
        by_plan=sorted(by_plan.items()),
        by_status=list(by_status.items()),
        organizations=sum(by_plan.values()),
        users=cached.users,
        disabled_users=cached.disabled_users,
        active_7=cached.active_7,
        active_30=cached.active_30,
        queue_depth=sum(q.waiting for q in queues),
        oldest_job_seconds=max(ages) if ages else None,
        failed_jobs=sum(q.failed for q in queues),
        counted_at=cached.refreshed_at,
    )


def charts(days: int = CHART_DAYS) -> list[Chart]:
    """Sign-ups per day (the platform log's ``auth.signup``) and events per
    day across every organization (their ``total`` rollups, the platform log
    left out) over the last ``days`` days, as the cross-organization role.
    Each organization's days follow its own time zone; the console's in UTC."""
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    with all_organizations(reason="platform console: overview charts from the analytics rollups"):
        signups = rollups.cross_org_series("action", "auth.signup", start, end, org_ids=[audit.PLATFORM_ORG_ID])
        events = rollups.cross_org_series("total", "", start, end, exclude=[audit.PLATFORM_ORG_ID])
    db.session.rollback()
    span = days_between(start, end)
    return [
        daily_chart("signups", "Sign-ups per day", span, [Series("Sign-ups", signups)], empty="No sign-up yet."),
        daily_chart(
            "events",
            "Events per day, all organizations",
            span,
            [Series("Events", events)],
            empty="No organization has recorded anything yet.",
        ),
    ]


@dataclass(frozen=True)
class WebhookRate:
    succeeded: int
    failed: int

    @property
    def failure_percent(self) -> float | None:
        done = self.succeeded + self.failed
        return round(100.0 * self.failed / done, 1) if done else None


def webhook_failure_rate(days: int = WEBHOOK_WINDOW_DAYS) -> WebhookRate:
    """Webhook deliveries that failed for good, against those that finished,
    over the last ``days`` days across every organization (pending ones are
    left out). Read from the deliveries table (the webhooks area's), by time."""
    since = utcnow() - timedelta(days=days)
    with all_organizations(reason="platform console: webhook failure rate"):
        row = db.session.execute(
            text(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed')"
                " FROM webhook_deliveries WHERE created_at >= :since"
            ),
            {"since": since},
        ).one()
    db.session.rollback()
    return WebhookRate(row[0], row[1])

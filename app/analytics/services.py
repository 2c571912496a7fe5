"""The organization's analytics: date ranges and the charts, from the daily rollups.

Every number comes from ``app.audit.rollups`` (one index range each), never
from counting raw events on a page view; the webhook chart reads the
webhook deliveries by day (``ix_webhook_deliveries_org_created``). Days
follow the organization's time zone (``rollups.org_timezone``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select, text

from app.audit import catalogue, rollups
from app.auth.models import User
from app.extensions import db
from app.tenancy import entitlements
from app.tenancy.models import Membership
from app.web.charts import Chart, Delta, Series, bar_figure, daily_chart, daily_table, days_between, safe_json

PRESETS = ("7", "30", "90")
MAX_DAYS = 366
EARLIEST = date(2000, 1, 1)
TOP_ACTORS = 10

JOINED = ("member.joined", "member.added")
LEFT = ("member.removed", "member.left")
PROJECT_ACTIONS = (
    ("project.created", "Created"),
    ("project.updated", "Updated"),
    ("project.archived", "Archived"),
    ("project.deleted", "Deleted"),
)
FAILED_LOGIN = "auth.login_failed"


@dataclass
class Range:
    """The days a dashboard shows: a preset (last 7, 30 or 90 days, today
    included) or a custom ``[start, end]``; ``compare`` adds the previous
    period of the same length. ``errors``: field → message (422)."""

    start: date
    end: date
    preset: str = "30"
    compare: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    raw_from: str = ""
    raw_to: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Range:
        n = timedelta(days=self.days)
        return Range(self.start - n, self.end - n, "custom", False)

    def params(self) -> dict[str, str]:
        """The query string that reproduces this range (links, HTMX slots, exports)."""
        p = {"range": self.preset}
        if self.preset == "custom":
            p["from"], p["to"] = self.start.isoformat(), self.end.isoformat()
        if self.compare:
            p["compare"] = "1"
        return p

    @property
    def label(self) -> str:
        if self.preset in PRESETS:
            return f"Last {self.preset} days"
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    @classmethod
    def from_args(cls, args, today: date) -> Range:
        """Parse ``range`` (7/30/90/custom), ``from``, ``to``, ``compare``; bad
        input keeps the default 30 days and says what was wrong beside the field."""
        preset = (args.get("range") or "30").strip()
        compare = args.get("compare") in ("1", "on", "true", "yes")
        default = cls(today - timedelta(days=29), today, "30", compare)
        if preset in PRESETS:
            n = int(preset)
            return cls(today - timedelta(days=n - 1), today, preset, compare)
        if preset != "custom":
            default.errors["range"] = "Choose 7, 30 or 90 days, or a custom range."
            return default
        raw_from, raw_to = (args.get("from") or "").strip()[:20], (args.get("to") or "").strip()[:20]
        default.raw_from, default.raw_to, default.preset = raw_from, raw_to, "custom"
        start, end = _date(raw_from), _date(raw_to)
        if start is None:
            default.errors["from"] = "Enter a date as YYYY-MM-DD."
        if end is None:
            default.errors["to"] = "Enter a date as YYYY-MM-DD."
        if default.errors:
            return default
        if start < EARLIEST:
            default.errors["from"] = f"Choose a day from {EARLIEST.isoformat()} on."
        elif end > today:
            default.errors["to"] = "The range cannot end after today."
        elif start > end:
            default.errors["to"] = "The end must not be before the start."
        elif (end - start).days + 1 > MAX_DAYS:
            default.errors["to"] = f"Choose at most {MAX_DAYS} days."
        if default.errors:
            return default
        return cls(start, end, "custom", compare, raw_from=raw_from, raw_to=raw_to)


def _date(s: str) -> date | None:
    try:
        return date.fromisoformat(s) if len(s) == 10 else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------- charts
@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    build: Callable  # (org, Range, zone) -> Chart


def _sum_days(values: dict[date, int], start: date, end: date) -> int:
    return sum(v for d, v in values.items() if start <= d <= end)


def _merge(org_id, actions, start: date, end: date) -> dict[date, int]:
    out: dict[date, int] = {}
    for days in rollups.series(org_id, "action", start, end, actions).values():
        for d, n in days.items():
            out[d] = out.get(d, 0) + n
    return out


def _delta(rng: Range, current: int | float, previous: Callable[[], int | float]) -> Delta | None:
    return Delta(current, previous()) if rng.compare else None


def members_chart(org, rng: Range, zone: str) -> Chart:
    """Members who joined and left per day, and the member count at each day's end.

    The count walks back from today's active members: at the end of day d it
    is today's count minus those who joined after d plus those who left after d."""
    today = rollups.today_in(zone)
    joined = _merge(org.id, JOINED, rng.start, today)
    left = _merge(org.id, LEFT, rng.start, today)
    # Deactivated members are still members (they left nobody's count).
    now = db.session.execute(select(func.count()).select_from(Membership)).scalar_one()
    days = days_between(rng.start, rng.end)
    total: dict[date, int] = {}
    running = now
    for d in days_between(rng.start, max(today, rng.end))[::-1]:
        # Never below zero: members added before their join was recorded
        # (an import, the first owner) make the walk back undercount.
        total[d] = max(0, running)
        running -= joined.get(d, 0) - left.get(d, 0)
    series = [
        Series("Joined", joined),
        Series("Left", left),
        Series("Members", total, kind="line"),
    ]
    net = _sum_days(joined, rng.start, rng.end) - _sum_days(left, rng.start, rng.end)

    def previous():
        p = rng.previous
        return _sum_days(_merge(org.id, JOINED, p.start, p.end), p.start, p.end) - _sum_days(
            _merge(org.id, LEFT, p.start, p.end), p.start, p.end
        )

    chart = daily_chart(
        "members",
        "Members",
        days,
        series,
        empty="No one has joined or left in this period.",
        delta=_delta(rng, net, previous),
    )
    if chart.is_empty and now:  # a flat line is still worth a chart: the count
        chart = daily_chart("members", "Members", days, [Series("Members", total, kind="line")], empty="")
        chart.delta = _delta(rng, net, previous)
        chart.columns, chart.rows = daily_table(days, series)
    chart.extra["delta_label"] = "net change"
    return chart


def actives_chart(org, rng: Range, zone: str) -> Chart:
    """Distinct members who did anything, over the day, the last 7 and the last 30 days."""
    act = rollups.actives(org.id, rng.start, rng.end, zone)
    days = days_between(rng.start, rng.end)
    series = [
        Series("Active that day", act[1], kind="line"),
        Series("Active over 7 days", act[7], kind="line"),
        Series("Active over 30 days", act[30], kind="line"),
    ]

    def mean(values, start, end):
        span = [values.get(d, 0) for d in days_between(start, end)]
        return round(sum(span) / len(span), 1) if span else 0

    def previous():
        p = rng.previous
        return mean(rollups.actives(org.id, p.start, p.end, zone)[1], p.start, p.end)

    chart = daily_chart(
        "actives",
        "Active members",
        days,
        series,
        empty="No member has done anything in this period yet.",
        delta=_delta(rng, mean(act[1], rng.start, rng.end), previous),
    )
    chart.extra["delta_label"] = "daily average"
    return chart


def activity_chart(org, rng: Range, zone: str) -> Chart:
    """Events per day, stacked by area of the product (the audit catalogue's groups)."""
    by_action = rollups.series(org.id, "action", rng.start, rng.end)
    groups: dict[str, dict[date, int]] = {}
    for action, days_ in by_action.items():
        spec = catalogue.BY_NAME.get(action)
        g = spec.group if spec else "Other"
        bucket = groups.setdefault(g, {})
        for d, n in days_.items():
            bucket[d] = bucket.get(d, 0) + n
    order = [name for name, _ in catalogue.groups()] + ["Other"]
    series = [Series(g, groups[g]) for g in order if g in groups]
    total = sum(sum(v.values()) for v in groups.values())

    def previous():
        p = rng.previous
        return sum(sum(v.values()) for v in rollups.series(org.id, "total", p.start, p.end).values())

    chart = daily_chart(
        "activity",
        "Activity by area",
        days_between(rng.start, rng.end),
        series,
        stacked=True,
        empty="Nothing has been recorded in this period.",
        delta=_delta(rng, total, previous),
    )
    chart.extra["delta_label"] = "events"
    return chart


def projects_chart(org, rng: Range, zone: str) -> Chart:
    """Projects created, updated, archived and deleted per day."""
    actions = [a for a, _ in PROJECT_ACTIONS]
    by_action = rollups.series(org.id, "action", rng.start, rng.end, actions)
    series = [Series(label, by_action.get(a, {})) for a, label in PROJECT_ACTIONS]
    total = sum(sum(v.values()) for v in by_action.values())

    def previous():
        p = rng.previous
        return sum(sum(v.values()) for v in rollups.series(org.id, "action", p.start, p.end, actions).values())

    chart = daily_chart(
        "projects",
        "Projects",
        days_between(rng.start, rng.end),
        series,
        empty="No project was created, changed or deleted in this period.",
        delta=_delta(rng, total, previous),
    )
    chart.extra["delta_label"] = "changes"
    return chart


def failed_logins_chart(org, rng: Range, zone: str) -> Chart:
    """Failed sign-ins on the organization's host per day."""
    values = _merge(org.id, (FAILED_LOGIN,), rng.start, rng.end)

    def previous():
        p = rng.previous
        return sum(_merge(org.id, (FAILED_LOGIN,), p.start, p.end).values())

    chart = daily_chart(
        "failed_logins",
        "Failed sign-ins",
        days_between(rng.start, rng.end),
        [Series("Failed sign-ins", values)],
        empty="No failed sign-in in this period.",
        delta=_delta(rng, sum(values.values()), previous),
    )
    chart.extra["delta_label"] = "attempts"
    return chart


def _names(user_ids: list[str]) -> dict[str, str]:
    ids = []
    for s in user_ids:
        try:
            ids.append(uuid.UUID(s))
        except ValueError:
            continue
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids))).all()
    return {str(i): (n or e) for i, n, e in rows}


def top_actors_chart(org, rng: Range, zone: str) -> Chart:
    """The members with the most recorded actions in the period (ten at most)."""
    top = rollups.actor_totals(org.id, rng.start, rng.end, limit=TOP_ACTORS)
    names = _names([d for d, _ in top])
    labels = [names.get(d, "Former member") for d, _ in top]
    values = [n for _, n in top]
    rows = [[label, n] for label, n in zip(labels, values, strict=True)]

    def previous():
        p = rng.previous
        return sum(n for _, n in rollups.actor_totals(org.id, p.start, p.end, limit=TOP_ACTORS))

    chart = Chart(
        key="top_actors",
        title="Most active members",
        figure_json=safe_json(bar_figure(labels, values, "Actions")) if top else None,
        columns=["Member", "Actions"],
        rows=rows,
        empty=None if top else "No member has done anything in this period yet.",
        delta=_delta(rng, sum(values), previous),
        summary=f"Most active members: {', '.join(labels[:3])}." if top else "",
    )
    chart.extra["delta_label"] = "actions by the top ten"
    return chart


def webhooks_chart(org, rng: Range, zone: str) -> Chart:
    """Webhook deliveries per day by outcome (succeeded, failed, still pending).

    Read from ``webhook_deliveries`` by day (an index range): a delivery's
    status changes after it is created, so it is not an append-only count
    to roll up. The table belongs to the webhooks area; this reads it only."""

    def counts(start, end):
        lo, hi = rollups.day_bounds(start, end, zone)
        rows = db.session.execute(
            text(
                "SELECT (created_at AT TIME ZONE :tz)::date AS day, status, count(*) FROM webhook_deliveries"
                " WHERE organization_id = :o AND created_at >= :lo AND created_at < :hi GROUP BY 1, 2"
            ),
            {"o": org.id, "tz": zone, "lo": lo, "hi": hi},
        ).all()
        out: dict[str, dict[date, int]] = {}
        for d, status, n in rows:
            out.setdefault(status, {})[d] = n
        return out

    by_status = counts(rng.start, rng.end)
    series = [
        Series("Succeeded", by_status.get("succeeded", {})),
        Series("Failed", by_status.get("failed", {})),
        Series("Pending", by_status.get("pending", {})),
    ]
    done = sum(by_status.get("succeeded", {}).values()) + sum(by_status.get("failed", {}).values())
    rate = round(100.0 * sum(by_status.get("succeeded", {}).values()) / done, 1) if done else 0

    def previous():
        p = counts(rng.previous.start, rng.previous.end)
        d = sum(p.get("succeeded", {}).values()) + sum(p.get("failed", {}).values())
        return round(100.0 * sum(p.get("succeeded", {}).values()) / d, 1) if d else 0

    chart = daily_chart(
        "webhooks",
        "Webhook deliveries",
        days_between(rng.start, rng.end),
        series,
        stacked=True,
        empty="No webhook delivery in this period. Add an endpoint under Webhooks to receive events.",
        delta=_delta(rng, rate, previous) if done else None,
    )
    chart.extra["delta_label"] = "success rate"
    chart.extra["headline"] = f"{rate}\u00a0% delivered" if done else None
    return chart


TOP_KEYS = 5


def api_chart(org, rng: Range, zone: str) -> Chart:
    """API requests per day, stacked by key (the five busiest, the rest as
    "Other keys"). Read from ``api_usage_daily`` (the API area's counts per
    key per UTC day: its days are UTC whatever the organization's zone). An
    organization whose plan has no API sees that the API is not enabled."""
    if not entitlements.entitled(org, "api"):
        return Chart(
            key="api",
            title="API requests per key",
            figure_json=None,
            columns=["Day", "Requests"],
            rows=[],
            empty="Available once the API is enabled.",
        )

    def usage(start, end):
        return db.session.execute(
            text(
                "SELECT u.day, coalesce(k.name, 'Deleted key') AS name, u.api_key_id, u.requests"
                " FROM api_usage_daily u LEFT JOIN api_keys k"
                " ON k.organization_id = u.organization_id AND k.id = u.api_key_id"
                " WHERE u.organization_id = :o AND u.day >= :s AND u.day <= :e"
            ),
            {"o": org.id, "s": start, "e": end},
        ).all()

    rows = usage(rng.start, rng.end)
    per_key: dict[tuple[str, str], dict[date, int]] = {}
    for day, name, key_id, n in rows:
        per_key.setdefault((name, str(key_id)), {})[day] = n
    ranked = sorted(per_key, key=lambda k: -sum(per_key[k].values()))
    series = [Series(name, per_key[(name, kid)]) for name, kid in ranked[:TOP_KEYS]]
    if len(ranked) > TOP_KEYS:
        other: dict[date, int] = {}
        for k in ranked[TOP_KEYS:]:
            for d, n in per_key[k].items():
                other[d] = other.get(d, 0) + n
        series.append(Series("Other keys", other))
    total = sum(n for *_, n in rows)

    def previous():
        return sum(n for *_, n in usage(rng.previous.start, rng.previous.end))

    chart = daily_chart(
        "api",
        "API requests per key",
        days_between(rng.start, rng.end),
        series or [Series("Requests", {})],
        stacked=True,
        empty="No API request in this period. Create a key under API keys to start.",
        delta=_delta(rng, total, previous),
    )
    chart.extra["delta_label"] = "requests"
    return chart


CHARTS: dict[str, ChartSpec] = {
    c.key: c
    for c in (
        ChartSpec("activity", "Activity by area", activity_chart),
        ChartSpec("actives", "Active members", actives_chart),
        ChartSpec("members", "Members", members_chart),
        ChartSpec("projects", "Projects", projects_chart),
        ChartSpec("top_actors", "Most active members", top_actors_chart),
        ChartSpec("failed_logins", "Failed sign-ins", failed_logins_chart),
        ChartSpec("webhooks", "Webhook deliveries", webhooks_chart),
        ChartSpec("api", "API requests per key", api_chart),
    )
}


def build(key: str, org, rng: Range) -> Chart:
    """The chart ``key`` of ``org`` over ``rng`` (``KeyError`` for an unknown key)."""
    spec = CHARTS[key]
    return spec.build(org, rng, rollups.org_timezone(org))


def export_rows(chart: Chart) -> tuple[list[str], list[list]]:
    """The rows an export carries: the chart's table, as shown."""
    return chart.columns, chart.rows

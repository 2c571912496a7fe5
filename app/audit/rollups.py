"""Daily rollups of the audit log: what every analytics chart reads.

Why here (the audit layer, below the product areas): the organization's
analytics pages (``app.analytics``) and the platform console's overview
(``app.platform``) draw from the same rollups, and product areas may not
import each other; the audit events are the source, so their rollups sit
beside them. Only tables, their maintenance and their queries live here; the
charts are the product areas' business.

Tables (tenant tables under RLS, migration ``0021_analytics_rollups``):

* ``analytics_daily (organization_id, metric, day, dimension) -> count``,
  ``day`` in the organization's time zone (``org_timezone``). Metrics:
  ``total`` (events, dimension ``''``), ``action`` (events per action),
  ``actor`` (events per member who acted: the user id; API keys, the system
  and anonymous visitors are not members) and ``actives`` (dimension ``1``,
  ``7``, ``30``: distinct members active over the n days ending that day).
* ``analytics_watermarks``: per organization, ``through_seq`` (the counts
  hold exactly the sealed events with ``seq <= through_seq``), the time
  zone the days were cut in, and ``actives_through``.

Design: incremental catch-up from a high-water mark, by seal sequence.
``catch_up`` runs right after the sealer (``app.auditlog.sealing.seal_all``:
the periodic seal job every 5 seconds, ``flask audit seal``, the demo), one
organization per transaction. Why it never loses nor double-counts:

* **The mark is the seal ``seq``, not the event id.** Concurrent
  transactions commit out of id order, so "every id <= N is counted" could
  skip an id whose transaction was still open. The sealer hands out ``seq``
  1, 2, 3 … without gaps, only to events of *finished* transactions (its
  snapshot horizon), one sealer at a time per organization (advisory lock).
  So the visible seals are always a prefix ``1..max`` and no event will ever
  be sealed with a ``seq`` at or below one already visible: ``seq > mark``
  is exactly "not counted yet".
* **Counts and mark move in one transaction.** ``catch_up`` adds the
  counts of ``seq`` in ``(mark, max]`` and sets ``mark = max`` in the same
  transaction: a crash half-way rolls both back (the next run redoes it
  all); a commit writes both.
* **Two runs at once serialise.** Each takes the organization's analytics
  advisory lock, then reads the mark: the second sees the first's new mark
  and adds nothing twice. A re-run with nothing new adds nothing.
* **Bounded transactions.** A run takes at most ``TRANSACTION_SEALS`` seals
  per transaction and loops (``catch_up_all``): each commit is exact up to
  its mark, by the same argument. Why: a transaction of minutes (a rebuild
  of millions) would stay the oldest running one on the server, and the
  sealer only seals transactions older than the oldest running one: every
  organization's log would stay unsealed meanwhile.
* **Rebuild** (``flask --app wsgi analytics rebuild``) deletes the
  organization's rows and sets the mark to 0 in the transaction of its first
  chunk, then counts every remaining sealed event again, chunk by chunk:
  while it runs, readers see the recount so far (exact up to its mark),
  never a double count. The catch-up rebuilds by itself when the
  organization's time zone changed since the days were cut.
* **Actives** are not additive (a member active on Monday and Tuesday is one
  7-day active), so they are *recomputed*, not incremented: when a catch-up
  adds a new (member, day) pair on day t, the 1/7/30-day actives of days t
  .. t+29 (up to today) are recomputed from the ``actor`` rows in the same
  transaction. A day that gained no new pair keeps a correct stored value;
  a day without any stored value (no member acted that day or it was
  still in the future at the last recompute) is computed at read time
  (``actives``), from the same rows.

Retention: the purge (``app.auditlog.retention``) removes old events and
their seals, and with them the ``actor`` rows of the days before its
horizon (``purge_actor_rows``): those say which member acted on which day,
personal data the retention period covers as much as the events. The
``total``, ``action`` and ``actives`` rows stay: counts of events per day
and action and of distinct members, naming nobody (aggregates, no content),
so an organization's charts keep their history. A rebuild recounts only
what retention kept.

Lag: a chart shows events up to the last seal run (seconds).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, Date, DateTime, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import apply_tenant_settings
from app.extensions import db
from app.scoping import TenantScoped

log = logging.getLogger("tenantry.analytics")

ACTIVE_WINDOWS = (1, 7, 30)
MEMBER_ACTORS = ("user", "support")
# Seals read per statement: bounds each INSERT ... SELECT.
CHUNK = 50_000
# Seals taken in per transaction (see "Bounded transactions").
TRANSACTION_SEALS = 200_000


class AnalyticsDaily(TenantScoped, db.Model):
    """One count: events of ``metric``/``dimension`` on ``day`` (organization's time zone)."""

    __tablename__ = "analytics_daily"

    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AnalyticsWatermark(TenantScoped, db.Model):
    """How far an organization's rollups go (see the module's design)."""

    __tablename__ = "analytics_watermarks"

    through_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    actives_through: Mapped[date | None] = mapped_column(Date)
    # Bumped by a rebuild and by the retention purge of actor rows: between
    # two bumps the rollups only grow, by the sealed events past the mark.
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


# ----------------------------------------------------------------------------- time zones
@lru_cache(maxsize=256)
def _valid_zone(name: str | None) -> str:
    if not name or not isinstance(name, str):
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def zone_of_settings(settings) -> str:
    """The IANA zone name an organization's ``settings`` name (``timezone``), else ``"UTC"``."""
    return _valid_zone(settings.get("timezone") if isinstance(settings, dict) else None)


def org_timezone(org) -> str:
    """The time zone an organization's days follow (its ``timezone`` setting,
    the one the pages show dates in; UTC while it has none). The one place
    analytics asks."""
    return zone_of_settings(getattr(org, "settings", None))


def today_in(zone: str) -> date:
    """Today's date in ``zone``."""
    return datetime.now(ZoneInfo(zone)).date()


def day_bounds(start: date, end: date, zone: str) -> tuple[datetime, datetime]:
    """The instants ``[start 00:00, end+1 00:00)`` in ``zone`` (UTC), for raw-event queries."""
    z = ZoneInfo(zone)
    lo = datetime.combine(start, time(0), z).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), z).astimezone(UTC)
    return lo, hi


# ----------------------------------------------------------------------------- maintenance
def _lock(conn, org_id) -> None:
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('tenantry-analytics:' || :o, 0))"), {"o": str(org_id)}
    )


def _zone_in_db(conn, org_id) -> str:
    settings = conn.execute(text("SELECT settings FROM organizations WHERE id = :o"), {"o": org_id}).scalar()
    return zone_of_settings(settings)


_ADD = text(
    """
WITH ev AS (
    SELECT (e.occurred_at AT TIME ZONE :tz)::date AS day, e.action, e.actor_type, e.actor_id
      FROM audit_seals s
      JOIN audit_events e ON e.organization_id = s.organization_id AND e.id = s.event_id
     WHERE s.organization_id = :o AND s.seq > :lo AND s.seq <= :hi
), counts AS (
    SELECT 'total' AS metric, day, '' AS dimension, count(*) AS n FROM ev GROUP BY day
    UNION ALL
    SELECT 'action', day, action, count(*) FROM ev GROUP BY day, action
), added AS (
    INSERT INTO analytics_daily AS a (organization_id, metric, day, dimension, count)
    SELECT :o, metric, day, dimension, n FROM counts
    ON CONFLICT (organization_id, metric, day, dimension) DO UPDATE SET count = a.count + EXCLUDED.count
), actors AS (
    INSERT INTO analytics_daily AS a (organization_id, metric, day, dimension, count)
    SELECT :o, 'actor', day, actor_id::text, count(*) FROM ev
     WHERE actor_type IN ('user', 'support') AND actor_id IS NOT NULL
     GROUP BY day, actor_id
    ON CONFLICT (organization_id, metric, day, dimension) DO UPDATE SET count = a.count + EXCLUDED.count
    RETURNING a.day, (a.xmax::text = '0') AS inserted
)
-- ``added`` runs although nothing reads it (a data-modifying WITH always does).
SELECT DISTINCT day FROM actors WHERE inserted
"""
)

# Distinct members active over the n days ending each day of [lo, hi], in one
# pass over the ``actor`` rows (no per-day distinct count): a member active on
# day t counts in the windows ending t .. t+n-1, cut the day before their next
# active day (which opens its own stretch), so each member's stretches never
# overlap; +1 where a stretch starts, -1 the day after it ends, and a running
# sum over the days gives every day's count.
_ACTIVES_SQL = """
WITH a AS (
    SELECT day, lead(day) OVER (PARTITION BY dimension ORDER BY day) AS nxt
      FROM analytics_daily
     WHERE organization_id = :o AND metric = 'actor'
       AND day >= CAST(:lo AS date) - 29 AND day <= CAST(:hi AS date)
), w(n) AS (VALUES (1), (7), (30)
), stretch AS (
    SELECT w.n, a.day AS s,
           CASE WHEN a.nxt IS NOT NULL AND a.nxt < a.day + w.n THEN a.nxt - 1 ELSE a.day + w.n - 1 END AS e
      FROM a CROSS JOIN w
), step AS (
    SELECT n, s AS d, 1 AS delta FROM stretch
    UNION ALL
    SELECT n, e + 1, -1 FROM stretch
), per AS (
    SELECT n, d, sum(delta) AS delta FROM step GROUP BY n, d
), counts AS (
    -- from lo - 29: every stretch that reaches into [lo, hi] starts on or after it
    SELECT g.day::date AS day, w.n, sum(coalesce(p.delta, 0)) OVER (PARTITION BY w.n ORDER BY g.day) AS active
      FROM generate_series(CAST(:lo AS date) - 29, CAST(:hi AS date), interval '1 day') AS g(day)
      CROSS JOIN w
      LEFT JOIN per p ON p.n = w.n AND p.d = g.day::date
)
SELECT day, n, active::bigint AS active FROM counts WHERE day >= CAST(:lo AS date)
"""

_STORE_ACTIVES = text(
    "INSERT INTO analytics_daily AS a (organization_id, metric, day, dimension, count)"
    f" SELECT :o, 'actives', day, n::text, active FROM ({_ACTIVES_SQL}) x"
    " ON CONFLICT (organization_id, metric, day, dimension) DO UPDATE SET count = EXCLUDED.count"
)


def catch_up(conn, org_id, *, rebuild: bool = False, limit: int | None = None) -> int:
    """Add the organization's sealed events past its mark to its rollups and
    advance the mark, inside the caller's transaction on ``conn`` (the
    caller commits; see the module's design). ``rebuild``: start again from
    nothing. ``limit``: take in at most that many seals (the next call goes
    on from the new mark). Returns the number of seals taken in."""
    apply_tenant_settings(conn, org_id)
    _lock(conn, org_id)
    zone = _zone_in_db(conn, org_id)
    conn.execute(
        text("INSERT INTO analytics_watermarks (organization_id, time_zone) VALUES (:o, :tz) ON CONFLICT DO NOTHING"),
        {"o": org_id, "tz": zone},
    )
    mark = conn.execute(
        text(
            "SELECT through_seq, time_zone, actives_through FROM analytics_watermarks"
            " WHERE organization_id = :o FOR UPDATE"
        ),
        {"o": org_id},
    ).one()
    lo = mark.through_seq
    if rebuild or mark.time_zone != zone:
        conn.execute(text("DELETE FROM analytics_daily WHERE organization_id = :o"), {"o": org_id})
        lo = 0
    top = conn.execute(
        text("SELECT coalesce(max(seq), 0) FROM audit_seals WHERE organization_id = :o"), {"o": org_id}
    ).scalar_one()
    if limit is not None:
        top = min(top, lo + limit)
    new_days: set[date] = set()
    taken = 0
    while lo < top:
        hi = min(top, lo + CHUNK)
        new_days.update(d for (d,) in conn.execute(_ADD, {"o": org_id, "tz": zone, "lo": lo, "hi": hi}) if d)
        taken += hi - lo
        lo = hi
    today = today_in(zone)
    days: set[date] = set()
    for t in new_days:
        d = t
        while d <= today and d < t + timedelta(days=max(ACTIVE_WINDOWS)):
            days.add(d)
            d += timedelta(days=1)
    if days:  # the span between is recomputed too: cheaper in one pass, and still right
        conn.execute(_STORE_ACTIVES, {"o": org_id, "lo": min(days), "hi": max(days)})
    conn.execute(
        text(
            "UPDATE analytics_watermarks SET through_seq = :top, time_zone = :tz, updated_at = now(),"
            " generation = generation + CASE WHEN :rebuild THEN 1 ELSE 0 END,"
            " actives_through = CASE WHEN :rebuild THEN CAST(:today AS date)"
            " ELSE greatest(actives_through, CAST(:today AS date)) END"
            " WHERE organization_id = :o"
        ),
        {"o": org_id, "top": top, "tz": zone, "today": today, "rebuild": bool(rebuild or mark.time_zone != zone)},
    )
    return taken


def purge_actor_rows(conn, org_id, before: datetime) -> int:
    """Delete the organization's ``actor`` rows of the days that end before
    the instant ``before`` (days cut in the time zone of the rollups), under
    the organization's analytics lock, in the caller's transaction; returns
    the number of rows removed. Every event of such a day is older than
    ``before``: the retention purge removes them."""
    apply_tenant_settings(conn, org_id)
    _lock(conn, org_id)
    zone = conn.execute(
        text("SELECT time_zone FROM analytics_watermarks WHERE organization_id = :o"), {"o": org_id}
    ).scalar()
    if zone is None:
        return 0
    first_kept = before.astimezone(ZoneInfo(_valid_zone(zone))).date()
    removed = conn.execute(
        text("DELETE FROM analytics_daily WHERE organization_id = :o AND metric = 'actor' AND day < :d"),
        {"o": org_id, "d": first_kept},
    ).rowcount
    if removed:
        conn.execute(
            text("UPDATE analytics_watermarks SET generation = generation + 1 WHERE organization_id = :o"),
            {"o": org_id},
        )
    return removed


def catch_up_all(engine, org_ids=None, *, rebuild: bool = False) -> dict[uuid.UUID, int]:
    """Catch up every organization (or those of ``org_ids``), each in its own
    transaction; a failure in one is logged and leaves the others done.
    Returns ``{organization id: seals taken in}``."""
    if org_ids is None:
        with engine.connect() as conn:
            org_ids = [r[0] for r in conn.execute(text("SELECT id FROM organizations ORDER BY id"))]
            conn.rollback()
    done = {}
    for org_id in org_ids:
        try:
            total, first = 0, True
            while True:
                with engine.connect() as conn, conn.begin():
                    n = catch_up(conn, org_id, rebuild=rebuild and first, limit=TRANSACTION_SEALS)
                total, first = total + n, False
                if n < TRANSACTION_SEALS:
                    break
            done[org_id] = total
        except Exception:  # one organization's failure must not stop the others' charts
            log.exception("analytics: catch-up of organization %s failed (the next run retries)", org_id)
    return done


# ----------------------------------------------------------------------------- reading
def _session_rows(sql, params):
    return db.session.execute(text(sql), params).all()


def series(org_id, metric: str, start: date, end: date, dimensions=None) -> dict[str, dict[date, int]]:
    """``{dimension: {day: count}}`` of one organization's ``metric`` over
    ``[start, end]`` (days without events are absent). ``dimensions``: only these."""
    sql = (
        "SELECT dimension, day, count FROM analytics_daily"
        " WHERE organization_id = :o AND metric = :m AND day >= :s AND day <= :e"
    )
    params = {"o": org_id, "m": metric, "s": start, "e": end}
    if dimensions is not None:
        sql += " AND dimension = ANY(:dims)"
        params["dims"] = list(dimensions)
    out: dict[str, dict[date, int]] = defaultdict(dict)
    for dim, day, n in _session_rows(sql, params):
        out[dim][day] = n
    return dict(out)


def totals(org_id, metric: str, start: date, end: date, limit: int | None = None) -> list[tuple[str, int]]:
    """``[(dimension, count over [start, end])]``, largest first (ties by dimension)."""
    sql = (
        "SELECT dimension, sum(count)::bigint AS n FROM analytics_daily"
        " WHERE organization_id = :o AND metric = :m AND day >= :s AND day <= :e"
        " GROUP BY dimension ORDER BY n DESC, dimension"
    )
    params = {"o": org_id, "m": metric, "s": start, "e": end}
    if limit:
        sql += " LIMIT :lim"
        params["lim"] = limit
    return [(d, n) for d, n in _session_rows(sql, params)]


# Per-range actor totals, kept per process and brought up to date by the
# events sealed since (see ``actor_totals``): (org, start, end) ->
# (mark, time zone, generation, {actor: count}). Kept dicts are never changed
# in place (a new one replaces them).
_ACTOR_CACHE: OrderedDict[tuple, tuple[int, str, int, dict[str, int]]] = OrderedDict()
_ACTOR_CACHE_SIZE = 512
_ACTOR_CACHE_LOCK = threading.Lock()
# More new seals than this since a kept total: recount from the rollup. A
# new seal costs ~15 us to read back (event by event), a rollup row ~1.6 us:
# 300 seals 4.4 ms, 5,000 seals 83 ms, a 90-day recount 134 ms (2 M events a
# year, on a loaded machine).
ACTOR_DELTA_MAX = 2_000
# A kept range this many edge days (or fewer) from the asked one is slid onto it.
ACTOR_SLIDE_DAYS = 14

_ACTOR_STATE = "SELECT through_seq, time_zone, generation FROM analytics_watermarks WHERE organization_id = :o"
# One statement, so one snapshot: the per-actor sums and the mark they are exact at.
_ACTOR_SUMS = (
    "WITH w AS (SELECT through_seq, time_zone, generation FROM analytics_watermarks WHERE organization_id = :o)"
    " SELECT NULL AS dimension, NULL::bigint AS n, (SELECT through_seq FROM w) AS mark,"
    " (SELECT time_zone FROM w) AS zone, (SELECT generation FROM w) AS generation"
    " UNION ALL"
    " SELECT dimension, sum(count)::bigint, NULL, NULL, NULL FROM analytics_daily"
    " WHERE organization_id = :o AND metric = 'actor' AND day >= :s AND day <= :e GROUP BY dimension"
)
# The actor rows of a few days, with the mark and generation they are exact at (one snapshot).
_ACTOR_DAYS = (
    "WITH w AS (SELECT through_seq, generation FROM analytics_watermarks WHERE organization_id = :o)"
    " SELECT NULL::date AS day, NULL AS dimension, NULL::bigint AS n,"
    " (SELECT through_seq FROM w) AS mark, (SELECT generation FROM w) AS generation"
    " UNION ALL"
    " SELECT day, dimension, count, NULL, NULL FROM analytics_daily"
    " WHERE organization_id = :o AND metric = 'actor' AND day = ANY(:days)"
)
_ACTOR_DELTA = (
    "SELECT e.actor_id::text, count(*) FROM audit_seals s"
    " JOIN audit_events e ON e.organization_id = s.organization_id AND e.id = s.event_id"
    " WHERE s.organization_id = :o AND s.seq > :lo AND s.seq <= :hi"
    " AND e.actor_type IN ('user', 'support') AND e.actor_id IS NOT NULL"
    " AND (e.occurred_at AT TIME ZONE :tz)::date >= :s AND (e.occurred_at AT TIME ZONE :tz)::date <= :e"
    " GROUP BY 1"
)


def _keep(key, mark: int, zone: str, generation: int, sums: dict[str, int]) -> None:
    with _ACTOR_CACHE_LOCK:
        _ACTOR_CACHE[key] = (mark, zone, generation, sums)
        _ACTOR_CACHE.move_to_end(key)
        while len(_ACTOR_CACHE) > _ACTOR_CACHE_SIZE:
            _ACTOR_CACHE.popitem(last=False)


def _kept_now(org_id, start: date, end: date, state) -> dict[str, int] | None:
    """The kept totals of ``[start, end]`` brought to ``state``'s mark (the
    members' events among the seals since), or ``None`` when there are none
    usable (another generation or time zone, a lower mark, too many seals)."""
    key = (str(org_id), start, end)
    with _ACTOR_CACHE_LOCK:
        kept = _ACTOR_CACHE.get(key)
    if kept is None:
        return None
    mark, zone, generation, sums = kept
    if zone != state.time_zone or generation != state.generation or mark > state.through_seq:
        return None
    if mark == state.through_seq:
        return sums
    if state.through_seq - mark > ACTOR_DELTA_MAX:
        return None
    sums = dict(sums)
    params = {"o": org_id, "lo": mark, "hi": state.through_seq, "tz": zone, "s": start, "e": end}
    for actor, n in _session_rows(_ACTOR_DELTA, params):
        sums[actor] = sums.get(actor, 0) + n
    _keep(key, state.through_seq, zone, generation, sums)
    return sums


def _days(start: date, end: date) -> set[date]:
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def _slid(org_id, start: date, end: date, state) -> dict[str, int] | None:
    """The totals of ``[start, end]`` from a kept range at most
    ``ACTOR_SLIDE_DAYS`` edge days away (yesterday's "last 90 days"): the
    kept totals at the current mark, minus the actor rows of its days outside
    ``[start, end]``, plus those of the days inside it that it lacks, the
    rows read at that same mark (else ``None``: counted afresh)."""
    org = str(org_id)
    with _ACTOR_CACHE_LOCK:
        spans = [(k[1], k[2]) for k in _ACTOR_CACHE if k[0] == org]
    want = _days(start, end)
    best = None
    for s, e in spans:
        if e < start or s > end:
            continue
        edges = len(want ^ _days(s, e))
        if edges <= ACTOR_SLIDE_DAYS and (best is None or edges < best[0]):
            best = (edges, s, e)
    if best is None:
        return None
    _, s, e = best
    base = _kept_now(org_id, s, e, state)
    if base is None:
        return None
    had = _days(s, e)
    rows = _session_rows(_ACTOR_DAYS, {"o": org_id, "days": sorted(want ^ had)})
    head = next(r for r in rows if r.day is None and r.dimension is None)
    if head.mark != state.through_seq or head.generation != state.generation:
        return None  # a catch-up committed in between: count afresh
    sums = dict(base)
    for r in rows:
        if r.dimension is None:
            continue
        sums[r.dimension] = sums.get(r.dimension, 0) + (r.n if r.day in want else -r.n)
    sums = {a: n for a, n in sums.items() if n}
    _keep((org, start, end), state.through_seq, state.time_zone, state.generation, sums)
    return sums


def actor_totals(org_id, start: date, end: date, limit: int | None = None) -> list[tuple[str, int]]:
    """``totals(org_id, 'actor', start, end, limit)``, equal to it at every
    moment, without re-reading every (member, day) row of a long range.

    Summing the ``actor`` rows of 90 days on an organization of 2 M events
    a year reads some 84,000 rows (90-130 ms). So the full per-member totals
    of a range are kept (per process, the last ``_ACTOR_CACHE_SIZE``
    ranges) with the mark and ``generation`` they are exact at, read in the
    same statement (one snapshot). A later call reads the current mark (one
    row) and:

    * same mark: the kept totals are the rollup's (nothing was added);
    * a higher mark: adds the members' events of the range among the seals
      ``(kept mark, mark]``. Within one generation the rollup holds exactly
      the sealed events with ``seq <= mark`` (module design), so that is
      exactly what it gained: the sum is exact (a few hundred rows between
      two seal runs);
    * a range near a kept one (the next day's "last 90 days"): slides it
      (``_slid``: a few days of rows);
    * otherwise (another generation - a rebuild, a time-zone change, the
      retention purge of actor rows -, a lower mark, more than
      ``ACTOR_DELTA_MAX`` new seals, an unseen range): counts from the
      rollup again and keeps that.
    """
    state = db.session.execute(text(_ACTOR_STATE), {"o": org_id}).first()
    sums = None
    if state is not None:
        sums = _kept_now(org_id, start, end, state)
        if sums is None:
            sums = _slid(org_id, start, end, state)
    if sums is None:
        rows = _session_rows(_ACTOR_SUMS, {"o": org_id, "s": start, "e": end})
        head = next(r for r in rows if r.dimension is None)
        sums = {r.dimension: r.n for r in rows if r.dimension is not None}
        if head.mark is not None:
            _keep((str(org_id), start, end), head.mark, head.zone, head.generation, sums)
    out = sorted(((d, n) for d, n in sums.items() if n), key=lambda x: (-x[1], x[0]))
    return out[:limit] if limit else out


def actives(org_id, start: date, end: date, zone: str) -> dict[int, dict[date, int]]:
    """``{n: {day: distinct members active over the n days ending day}}`` for
    n in 1, 7, 30 and every day of ``[start, end]`` up to today: stored values,
    and for a day with none, computed now from the ``actor`` rows (module design)."""
    last = min(end, today_in(zone))
    out: dict[int, dict[date, int]] = {n: {} for n in ACTIVE_WINDOWS}
    if last < start:
        return out
    for dim, days in series(org_id, "actives", start, last).items():
        if dim.isdigit() and int(dim) in out:
            out[int(dim)].update(days)
    missing = [start + timedelta(days=i) for i in range((last - start).days + 1)]
    missing = [d for d in missing if any(d not in out[n] for n in ACTIVE_WINDOWS)]
    if missing:
        wanted = set(missing)
        for day, n, active in _session_rows(_ACTIVES_SQL, {"o": org_id, "lo": missing[0], "hi": missing[-1]}):
            if day in wanted:
                out[n][day] = active
    return out


def cross_org_series(metric: str, dimension: str, start: date, end: date, org_ids=None, exclude=()) -> dict[date, int]:
    """``{day: count}`` summed over organizations (``org_ids``, or all but
    ``exclude``). Callers run it inside ``all_organizations(reason=...)``;
    each organization's days follow its own time zone."""
    sql = (
        "SELECT day, sum(count)::bigint FROM analytics_daily"
        " WHERE metric = :m AND dimension = :d AND day >= :s AND day <= :e"
    )
    params = {"m": metric, "d": dimension, "s": start, "e": end}
    if org_ids is not None:
        sql += " AND organization_id = ANY(:orgs)"
        params["orgs"] = list(org_ids)
    if exclude:
        sql += " AND organization_id <> ALL(:ex)"
        params["ex"] = list(exclude)
    sql += " GROUP BY day"
    return dict(_session_rows(sql, params))


# ----------------------------------------------------------------------------- the raw reference
def raw_series(org_id, start: date, end: date, zone: str, actions=None) -> dict[str, dict[date, int]]:
    """The reference for ``series(org, 'action', ...)``: counted from the sealed
    raw events (tests and the benchmark compare the two)."""
    lo, hi = day_bounds(start, end, zone)
    sql = (
        "SELECT e.action, (e.occurred_at AT TIME ZONE :tz)::date AS day, count(*) FROM audit_events e"
        " JOIN audit_seals s ON s.organization_id = e.organization_id AND s.event_id = e.id"
        " WHERE e.organization_id = :o AND e.occurred_at >= :lo AND e.occurred_at < :hi"
    )
    params = {"o": org_id, "tz": zone, "lo": lo, "hi": hi}
    if actions is not None:
        sql += " AND e.action = ANY(:acts)"
        params["acts"] = list(actions)
    sql += " GROUP BY 1, 2"
    out: dict[str, dict[date, int]] = defaultdict(dict)
    for action, day, n in _session_rows(sql, params):
        out[action][day] = n
    return dict(out)


def raw_actor_totals(org_id, start: date, end: date, zone: str) -> dict[str, int]:
    """The reference for ``totals(org, 'actor', ...)`` from the sealed raw events."""
    lo, hi = day_bounds(start, end, zone)
    rows = _session_rows(
        "SELECT e.actor_id::text, count(*) FROM audit_events e"
        " JOIN audit_seals s ON s.organization_id = e.organization_id AND s.event_id = e.id"
        " WHERE e.organization_id = :o AND e.occurred_at >= :lo AND e.occurred_at < :hi"
        " AND e.actor_type IN ('user', 'support') AND e.actor_id IS NOT NULL GROUP BY 1",
        {"o": org_id, "lo": lo, "hi": hi},
    )
    return dict(rows)


def raw_actives(org_id, day: date, n: int, zone: str) -> int:
    """The reference for ``actives``: distinct members with a sealed event in
    the ``n`` days ending ``day``."""
    lo, hi = day_bounds(day - timedelta(days=n - 1), day, zone)
    return db.session.execute(
        text(
            "SELECT count(DISTINCT e.actor_id) FROM audit_events e"
            " JOIN audit_seals s ON s.organization_id = e.organization_id AND s.event_id = e.id"
            " WHERE e.organization_id = :o AND e.occurred_at >= :lo AND e.occurred_at < :hi"
            " AND e.actor_type IN ('user', 'support') AND e.actor_id IS NOT NULL"
        ),
        {"o": org_id, "lo": lo, "hi": hi},
    ).scalar_one()

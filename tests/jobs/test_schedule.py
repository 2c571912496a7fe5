"""The periodic tasks that replace the cron list run when the README says."""

from __future__ import annotations

from datetime import UTC, datetime


def _ticks(name: str, n: int = 3) -> list[datetime]:
    from app.jobs import discover, queue

    discover()
    [periodic] = [p for (task, _), p in queue.periodic_registry.periodic_tasks.items() if task == name]
    it = periodic.croniter
    it.set_current(start_time=datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC).timestamp())
    return [datetime.fromtimestamp(it.get_next(ret_type=float), UTC) for _ in range(n)]


def _gaps(ticks) -> set[float]:
    return {(b - a).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)}


def test_audit_events_are_sealed_every_five_seconds():
    assert _gaps(_ticks("audit.seal", 20)) == {5.0}


def test_dead_workers_jobs_are_recovered_every_ten_seconds():
    assert _gaps(_ticks("jobs.recover_stalled", 10)) == {10.0}


def test_purges_run_daily_at_night():
    for name, hour_minute in (("audit.purge", (3, 17)), ("tenancy.purge_organizations", (3, 27))):
        ticks = _ticks(name)
        assert _gaps(ticks) == {86400.0}
        assert {(t.hour, t.minute) for t in ticks} == {hour_minute}

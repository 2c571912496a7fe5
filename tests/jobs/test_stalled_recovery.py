"""Stalled-job recovery hands every job of a dead worker back, even when
one of them cannot go back because its periodic task's next tick already
waits under the same queueing lock (that one is removed: the waiting tick
does the same work)."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text

from app.jobs import queue, worker


def _recover(app) -> list[int]:
    async def go():
        with queue.replace_connector(worker.connector(app.config, max_size=2)):
            async with queue.open_async():
                return await worker.recover_stalled(queue.job_manager, 2)

    out: list = []
    t = threading.Thread(target=lambda: out.append(asyncio.run(go())))  # away from any event loop of the test
    t.start()
    t.join(60)
    assert out, "recovery failed (see the traceback above)"
    return out[0]


def test_a_superseded_periodic_job_does_not_block_the_recovery_of_the_others(app, owner_engine):
    with owner_engine.begin() as c:
        dead = c.execute(
            text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id")
        ).scalar()

        def job(task, status, lock=None, worker_id=None):
            return c.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status, worker_id) "
                    "VALUES ('q', :task, :lock, '{}', CAST(:status AS procrastinate_job_status), :w) RETURNING id"
                ),
                {"task": task, "lock": lock, "status": status, "w": worker_id},
            ).scalar()

        stalled_tick = job("audit.seal", "doing", "audit.seal", dead)  # the dead worker's tick
        next_tick = job("audit.seal", "todo", "audit.seal")  # deferred meanwhile by a live worker
        stalled_mail = job("mail.send", "doing", None, dead)

    assert _recover(app) == [stalled_mail]

    with owner_engine.connect() as c:
        rows = dict(c.execute(text("SELECT id, status FROM procrastinate_jobs")).all())
    assert rows == {next_tick: "todo", stalled_mail: "todo"}
    assert stalled_tick not in rows

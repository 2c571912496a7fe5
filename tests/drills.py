"""Race drills: run requests at the same instant, from real clients on threads.

Each call runs on its own thread with its own test client (and so its own
request, application context, database session and connection); a barrier
releases them together, so their transactions overlap in PostgreSQL.
"""

from __future__ import annotations

import threading


def at_once(*calls, timeout: float = 30.0) -> list:
    """Run every ``call()`` on its own thread, released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i, call):
        try:
            barrier.wait(timeout=timeout)
            results[i] = call()
        except BaseException as e:  # noqa: BLE001 - re-raised on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        raise AssertionError("a drill request did not finish (a deadlock?)")
    if errors:
        raise errors[0]
    return results

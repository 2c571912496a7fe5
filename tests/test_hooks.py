"""Hooks: how an area hears about another's change without importing it."""

from __future__ import annotations

from app.hooks import Hook


def test_send_returns_every_receivers_answer():
    hook: Hook[int, int] = Hook("test-answers", "a test hook")
    with hook.connected(lambda n: n + 1), hook.connected(lambda n: n * 10):
        assert sorted(hook.send(2)) == [3, 20]
    assert hook.send(2) == []  # disconnected on leaving the block


def test_a_receiver_defined_in_a_closure_stays_connected():
    # blinker's default weak reference would drop it as soon as it is collected.
    import gc

    hook: Hook[str, str] = Hook("test-strong", "a test hook")

    def connect_local():
        hook.connect(lambda s: s.upper())

    connect_local()
    gc.collect()
    assert hook.send("x") == ["X"]

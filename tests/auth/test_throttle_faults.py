"""The sign-in throttles when Redis is stopped, hung, or back again: limits
still hold (in the process's memory), no page waits on Redis, and an outage
logs one warning, not a traceback per call."""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
import uuid

import pytest

from app.extensions import db, limiter
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import free_port, url
from tests.ops.conftest import make_app

PW = f.PASSWORD
WRONG = "wrong-guess"
FAST = 1.0  # seconds: what "answers quickly" means here (a hung Redis used to cost 5 s per call)
# Four sign-ins at once against a hung Redis, before the breaker opens, each
# wait out a few 150 ms timeouts; on a loaded 2-core CI machine that has
# taken 1.3 s. Still far from the 5 s a single call used to cost (and the
# 29.6 s the drill measured).
CONCURRENT_FAST = 3.0
LOCAL_REDIS = ("127.0.0.1", 6379)


# --------------------------------------------------------------------------- fakes
def _port_open(address) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


class _Listener:
    """A TCP server on loopback with one thread accepting; ``handle(conn)``
    decides what each connection gets."""

    def __init__(self, handle):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.handle = handle
        self.stopped = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            self.handle(conn)

    def close(self):
        self.stopped.set()
        self.thread.join(5)
        self.server.close()
        for conn in self.conns:
            conn.close()


class _SwitchableRedis:
    """A forwarder to the real Redis that can be cut off: while ``down``, every
    connection is closed at once, as by a Redis that stopped."""

    def __init__(self):
        self.down = threading.Event()
        self.pumps: list[threading.Thread] = []
        self.listener = _Listener(self._handle)
        self.port = self.listener.port

    def _handle(self, conn):
        if self.down.is_set():
            conn.close()
            return
        pump = threading.Thread(target=self._pump, args=(conn,), daemon=True)
        self.pumps.append(pump)
        pump.start()

    def _pump(self, conn):
        try:
            with socket.create_connection(LOCAL_REDIS) as upstream:
                while not (self.down.is_set() or self.listener.stopped.is_set()):
                    ready, _, _ = select.select([conn, upstream], [], [], 0.05)
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is conn else conn).sendall(data)
        except OSError:
            pass  # either side went away: so does this connection
        finally:
            conn.close()

    def close(self):
        self.listener.stopped.set()
        for pump in self.pumps:
            pump.join(5)
        self.listener.close()


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def redis_app(database_url, tmp_path, caplog):
    """``redis_app(redis_url, **overrides)`` → a second app counting on that Redis.

    The rate limiter is one object for the whole process, re-bound by every
    ``create_app``; it is put back as it was, so the suite's ``app`` counts
    in memory again after these tests. The app's own log records (its
    loggers do not propagate) reach ``caplog``.
    """
    saved = dict(vars(limiter))
    saved_options = dict(limiter._storage_options)
    tenantry = logging.getLogger("tenantry")
    saved_handlers, saved_level = tenantry.handlers[:], tenantry.level
    caplog.set_level(logging.INFO)
    built = []

    def build(redis_url: str, **overrides):
        app = make_app(database_url, tmp_path, REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url, **overrides)
        tenantry.addHandler(caplog.handler)  # after create_app, which replaces the app's handlers
        built.append((app, limiter._storage))
        return app

    yield build
    for app, storage in built:
        storage.storage.connection_pool.disconnect()
        with app.app_context():
            db.engine.dispose()
    vars(limiter).clear()
    vars(limiter).update(saved)
    limiter._storage_options.clear()
    limiter._storage_options.update(saved_options)
    tenantry.handlers[:] = saved_handlers
    tenantry.setLevel(saved_level)


@pytest.fixture
def stopped_redis() -> str:
    """The URL of a Redis that is not running: a closed port on loopback."""
    return f"redis://127.0.0.1:{free_port()}/12"


@pytest.fixture
def silent_redis():
    """The URL of a Redis that accepts connections and never answers."""
    listener = _Listener(lambda conn: None)
    yield f"redis://127.0.0.1:{listener.port}/12"
    listener.close()


@pytest.fixture
def switchable_redis():
    """A forwarder to the real Redis on 127.0.0.1:6379 (skipped without one)."""
    if not _port_open(LOCAL_REDIS):
        pytest.skip("no Redis on 127.0.0.1:6379: the recovery test needs a real one (CI has it)")
    proxy = _SwitchableRedis()
    yield proxy
    proxy.close()


@pytest.fixture
def throttle_log(caplog):
    """``throttle_log(level)`` → the throttle's records at exactly that level."""

    def records(level: int):
        return [r for r in caplog.records if r.name == "tenantry.throttle" and r.levelno == level]

    return records


def _tracebacks_or_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def _timed(fn, *args, **kwargs):
    start = time.monotonic()
    response = fn(*args, **kwargs)
    return response, time.monotonic() - start


def _sign_in(client, email: str, password: str, **kw):
    return post(client, "/login", {"email": email, "password": password}, **kw)


# --------------------------------------------------------------------------- tests
def test_a_stopped_redis_still_limits_sign_in_failures_quickly_with_one_warning(
    redis_app, stopped_redis, throttle_log, caplog
):
    # A short cool-down: Redis is retried (and fails) many times during the test.
    app = redis_app(stopped_redis, REDIS_RETRY_SECONDS=0.05)
    f.make_user("ann@example.test")
    client = app.test_client()
    durations = []
    for _ in range(5):
        r, took = _timed(_sign_in, client, "ann@example.test", WRONG)
        assert r.status_code == 422
        durations.append(took)
        time.sleep(0.06)
    r, took = _timed(_sign_in, client, "ann@example.test", PW)
    durations.append(took)
    assert r.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) > 800
    page, took = _timed(client.get, url(None, "/"))
    durations.append(took)
    assert page.status_code == 200
    assert max(durations) < FAST, durations
    assert len(throttle_log(logging.WARNING)) == 1
    assert "unreachable" in throttle_log(logging.WARNING)[0].getMessage()
    assert not _tracebacks_or_errors(caplog)


def test_a_hung_redis_delays_no_sign_in_or_page_past_a_second_and_limits_still_apply(
    redis_app, silent_redis, throttle_log
):
    app = redis_app(silent_redis)
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] <= 0.2
    f.make_user("ann@example.test")
    timings: dict[str, float] = {}
    statuses: dict[str, int] = {}

    def attempt(name, fn):
        r, timings[name] = _timed(fn)
        statuses[name] = r.status_code

    # The drill: four failed sign-ins at once, and an unrelated page meanwhile.
    threads = [
        threading.Thread(
            target=attempt,
            args=(f"sign-in {i}", lambda i=i: _sign_in(app.test_client(), f"guess{i}@example.test", WRONG)),
        )
        for i in range(4)
    ]
    threads.append(threading.Thread(target=attempt, args=("page", lambda: app.test_client().get(url(None, "/")))))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == {**{f"sign-in {i}": 422 for i in range(4)}, "page": 200}
    assert timings["page"] < FAST, timings
    assert max(timings.values()) < CONCURRENT_FAST, timings

    client = app.test_client()
    for _ in range(5):
        r, took = _timed(_sign_in, client, "ann@example.test", WRONG)
        assert r.status_code == 422 and took < FAST
    r, took = _timed(_sign_in, client, "ann@example.test", PW)
    assert r.status_code == 429 and took < FAST
    assert len(throttle_log(logging.WARNING)) == 1


def test_redis_is_used_again_after_the_cool_down_once_it_answers(redis_app, switchable_redis, throttle_log):
    import redis

    prefix = f"tenantry-test-{uuid.uuid4().hex}"
    switchable_redis.down.set()
    app = redis_app(
        f"redis://127.0.0.1:{switchable_redis.port}/12",
        REDIS_RETRY_SECONDS=0.3,
        # Only this test's keys, so only they are removed afterwards.
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.15, "socket_timeout": 0.15, "key_prefix": prefix},
    )
    real = redis.Redis(*LOCAL_REDIS, db=12)
    try:
        client = app.test_client()
        for _ in range(3):
            assert _sign_in(client, "ann@example.test", WRONG).status_code == 422
        assert len(throttle_log(logging.WARNING)) == 1
        assert not list(real.scan_iter(match=f"{prefix}*"))

        switchable_redis.down.clear()
        time.sleep(0.4)  # past the cool-down
        assert _sign_in(client, "ann@example.test", WRONG).status_code == 422
        assert len(throttle_log(logging.INFO)) == 1
        assert "answers again" in throttle_log(logging.INFO)[0].getMessage()
        # The failure after recovery is counted in Redis; the three counted
        # in memory during the outage are not carried over.
        failures = [k for k in real.scan_iter(match=f"{prefix}*") if b"login_failures_per_account_and_ip:" in k]
        assert len(failures) == 1 and real.get(failures[0]) == b"1"
        assert len(throttle_log(logging.WARNING)) == 1
    finally:
        for key in real.scan_iter(match=f"{prefix}*"):
            real.delete(key)
        real.close()


def test_decorated_route_limits_fall_back_to_memory_when_redis_is_stopped(redis_app, stopped_redis, caplog):
    from app.web.access import public

    app = redis_app(stopped_redis)

    @public
    def limited():
        return "ok"

    app.add_url_rule("/_fault-drill/limited", "fault_drill_limited", limiter.limit("2 per minute")(limited))
    client = app.test_client()
    answers = []
    for _ in range(3):
        r, took = _timed(client.get, url(None, "/_fault-drill/limited"))
        answers.append(r.status_code)
        assert took < FAST
    assert answers == [200, 200, 429]
    assert not _tracebacks_or_errors(caplog)

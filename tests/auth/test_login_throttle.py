"""Sign-in throttles that cannot be turned against the account's owner.

The lockout counts per (account, client address): a stranger's failures
lock out the stranger's address only. Per account, tiers far above it make
a guessing run spread over many addresses wait longer and longer; the owner,
on an address they signed in from before, does not wait for them. And an
unknown address takes as long to refuse as a known one (Argon2 runs against
a dummy hash)."""

from __future__ import annotations

import statistics
import time

from argon2 import PasswordHasher, Type
from sqlalchemy import update

from app.auth.models import User, UserSession
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import post

PW = f.PASSWORD
STRANGER = "203.0.113.5"
OWNER = "198.51.100.7"


def attempt(app, email: str, password: str, ip: str):
    return post(app.test_client(), "/login", {"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


def test_a_strangers_failures_do_not_lock_the_owner_out_from_another_address(app):
    f.make_user("ann@example.test")
    for _ in range(5):
        assert attempt(app, "ann@example.test", "wrong-guess", STRANGER).status_code == 422
    # The stranger's address is locked out, even with the right password...
    r = attempt(app, "ann@example.test", PW, STRANGER)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 800
    # ...the owner, from an address never seen before, is not.
    assert attempt(app, "ann@example.test", PW, OWNER).status_code == 302


def test_a_guessing_run_over_many_addresses_waits_longer_and_longer(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ACCOUNT", "3 per 2 seconds; 6 per hour")
    f.make_user("ann@example.test")
    ips = (f"192.0.2.{i}" for i in range(1, 100))
    for _ in range(3):
        assert attempt(app, "ann@example.test", "wrong-guess", next(ips)).status_code == 422
    first = attempt(app, "ann@example.test", PW, next(ips))  # the right password, refused unseen
    assert first.status_code == 429
    assert 1 <= int(first.headers["Retry-After"]) <= 2
    time.sleep(2.2)  # the first tier's window passes
    for _ in range(3):
        assert attempt(app, "ann@example.test", "wrong-guess", next(ips)).status_code == 422
    second = attempt(app, "ann@example.test", PW, next(ips))
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > 3000  # now the hour's tier
    assert "Try again in 60 minutes." in second.get_data(as_text=True)


def test_the_owner_on_an_address_they_signed_in_from_does_not_wait_for_the_account_wide_tiers(
    app, monkeypatch, owner_engine
):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ACCOUNT", "3 per hour")
    f.make_user("ann@example.test")
    assert attempt(app, "ann@example.test", PW, OWNER).status_code == 302  # the owner's usual address
    for i in range(3):
        attempt(app, "ann@example.test", "wrong-guess", f"192.0.2.{i + 1}")
    assert attempt(app, "ann@example.test", PW, "192.0.2.50").status_code == 429
    assert attempt(app, "ghost@example.test", PW, OWNER).status_code == 422  # (unknown accounts: no exemption)
    assert attempt(app, "ann@example.test", PW, OWNER).status_code == 302
    # A support session from that address does not make it the owner's.
    admin = f.make_user(superadmin=True)
    with owner_engine.begin() as c:
        c.execute(update(UserSession).values(impersonator_id=admin.id))
    assert attempt(app, "ann@example.test", PW, OWNER).status_code == 429


def test_an_unknown_address_takes_as_long_to_refuse_as_a_known_one(app, monkeypatch):
    """Median time of a wrong password for a known account and of any password
    for an unknown address, at the production Argon2 cost. Their difference
    must stay well under one Argon2 verification: were Argon2 skipped for
    unknown addresses, the difference would be a whole one."""
    cost = {"ARGON2_TIME_COST": 2, "ARGON2_MEMORY_KIB": 19456}  # OWASP (production default)
    for k, v in cost.items():
        monkeypatch.setitem(app.config, k, v)
    for k in ("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", "LOGIN_FAILURES_PER_ACCOUNT", "LOGIN_ATTEMPTS_PER_IP"):
        monkeypatch.setitem(app.config, k, "10000 per minute")
    hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
    stored = hasher.hash(PW)
    user = f.make_user("ann@example.test")
    db.session.execute(update(User).where(User.id == user.id).values(password_hash=stored))
    db.session.commit()

    def argon2_ms() -> float:
        t = time.perf_counter()
        try:
            hasher.verify(stored, "wrong-guess")
        except Exception:
            pass
        return (time.perf_counter() - t) * 1000

    def timed(email: str) -> float:
        client = app.test_client()
        t = time.perf_counter()
        r = post(client, "/login", {"email": email, "password": "wrong-guess"})
        elapsed = (time.perf_counter() - t) * 1000
        assert r.status_code == 422
        return elapsed

    timed("ann@example.test"), timed("ghost@example.test")  # warm: the dummy hash, connections
    known, unknown, argon = [], [], []
    for i in range(21):  # interleaved: a burst of load hits both alike
        known.append(timed("ann@example.test"))
        unknown.append(timed(f"ghost{i}@example.test"))
        argon.append(argon2_ms())
    k, u, a = statistics.median(known), statistics.median(unknown), statistics.median(argon)
    assert a > 5, f"Argon2 took {a:.1f} ms: too cheap for this test to tell anything"
    assert abs(k - u) < 0.5 * a, f"known {k:.1f} ms, unknown {u:.1f} ms, one Argon2 verification {a:.1f} ms"


def _events(owner_engine, action: str) -> list[dict]:
    from sqlalchemy import text

    with owner_engine.connect() as c:
        return [
            dict(r)
            for r in c.execute(
                text("SELECT organization_id, target_id, metadata FROM audit_events WHERE action = :a ORDER BY id"),
                {"a": action},
            ).mappings()
        ]


def test_the_failure_that_locks_an_address_out_is_audited_once(app, owner_engine):
    """Five failures lock (account, address): the fifth records
    ``auth.locked_out`` beside its ``auth.login_failed``, in the platform log
    (a sign-in on the apex belongs to no organization); the refused tries
    that follow are not counted, so they record no second lockout."""
    from app.audit import PLATFORM_ORG_ID

    ann = f.make_user("ann@example.test")
    for _ in range(4):
        attempt(app, "ann@example.test", "wrong-guess", STRANGER)
    assert _events(owner_engine, "auth.locked_out") == []
    attempt(app, "ann@example.test", "wrong-guess", STRANGER)
    for _ in range(3):
        assert attempt(app, "ann@example.test", PW, STRANGER).status_code == 429
    [ev] = _events(owner_engine, "auth.locked_out")
    assert ev["organization_id"] == PLATFORM_ORG_ID and ev["target_id"] == str(ann.id)
    meta = ev["metadata"]
    assert meta["lockout"] == "account_and_address" and meta["limit"] == "5 per 15 minutes"
    assert meta["during"] == "login" and meta["reason"] == "password"
    assert 800 < meta["retry_after_seconds"] <= 900
    # An unknown address locks out the same way, named only by its fingerprint.
    for _ in range(5):
        attempt(app, "ghost@example.test", "wrong-guess", STRANGER)
    ghost = _events(owner_engine, "auth.locked_out")[1]
    assert ghost["target_id"] is None and "ghost" not in str(ghost["metadata"])
    assert ghost["metadata"]["reason"] == "unknown_email"


def test_a_tier_of_the_account_wide_limit_filling_is_audited_as_an_account_lockout(app, monkeypatch, owner_engine):
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ACCOUNT", "3 per hour")
    f.make_user("ann@example.test")
    for i in range(3):
        attempt(app, "ann@example.test", "wrong-guess", f"192.0.2.{i + 1}")
    [ev] = _events(owner_engine, "auth.locked_out")
    assert ev["metadata"]["lockout"] == "account" and ev["metadata"]["limit"] == "3 per 1 hour"
    assert ev["metadata"]["retry_after_seconds"] > 3000


def test_a_lockout_on_an_organization_host_lands_in_its_log_too(app, world, login, owner_engine):
    """Like a failed sign-in: a step-up that fails five times on acme's host
    locks out there, recorded in acme's log (its security report) and the
    platform log; not in globex's, where the consultant also belongs."""
    from tests.auth.conftest import post as form_post

    c = login(world.users["owner"], "acme")
    for _ in range(5):
        form_post(c, "/auth/step-up", {"password": "not-the-password", "next": "/settings/danger"}, slug="acme")
    orgs = {e["organization_id"] for e in _events(owner_engine, "auth.locked_out")}
    from app.audit import PLATFORM_ORG_ID

    assert orgs == {world.acme.id, PLATFORM_ORG_ID}
    assert _events(owner_engine, "auth.locked_out")[0]["metadata"]["during"] == "step_up"

"""Log-in and log-out: throttling, one message for every failure, fresh session ids."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from sqlalchemy import select

from app.auth.models import User, UserSession
from app.auth.passwords import hasher
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import url

PW = f.PASSWORD


def error_of(response) -> str:
    body = response.get_data(as_text=True)
    start = body.index('class="field__error"')
    return body[start : body.index("</div>", start)]


def test_login_starts_a_new_session_with_a_new_id(client, audit_log):
    user = f.make_user("ann@example.test")
    with client.session_transaction(base_url="http://tenantry.localhost") as s:
        s["sid"] = "0f0f0f0f-0000-4000-8000-000000000000"  # planted by an attacker
    r = post(client, "/login", {"email": "ANN@example.test", "password": PW})
    assert r.status_code == 302
    rec = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalar_one()
    with client.session_transaction(base_url="http://tenantry.localhost") as s:
        assert s["sid"] == str(rec.id)
    assert str(rec.ip) == "127.0.0.1"
    assert audit_log.last("auth.login")["target"].id == user.id


def test_wrong_password_and_unknown_address_get_the_same_answer(client, audit_log):
    f.make_user("ann@example.test")
    wrong = post(client, "/login", {"email": "ann@example.test", "password": "not-the-password"})
    unknown = post(client, "/login", {"email": "nobody@example.test", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 422
    assert error_of(wrong) == error_of(unknown)
    assert "do not match an account" in error_of(wrong)
    assert audit_log.actions().count("auth.login_failed") == 2


def test_login_bad_input_is_422(client):
    r = post(client, "/login", {"email": "", "password": ""})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'id="email-error"' in body and 'id="password-error"' in body


def test_account_is_throttled_after_five_failures_even_with_the_right_password(client, app):
    f.make_user("ann@example.test")
    for _ in range(5):
        assert post(client, "/login", {"email": "ann@example.test", "password": "wrong-guess"}).status_code == 422
    r = post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert r.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) > 800
    # another account from the same network is not affected
    f.make_user("bob@example.test")
    assert post(client, "/login", {"email": "bob@example.test", "password": PW}).status_code == 302


def test_unknown_address_is_throttled_exactly_like_a_known_one(client):
    f.make_user("ann@example.test")
    answers = {}
    for email in ("ann@example.test", "ghost@example.test"):
        c = client.application.test_client()
        for _ in range(5):
            post(c, "/login", {"email": email, "password": "wrong-guess"})
        answers[email] = post(c, "/login", {"email": email, "password": "wrong-guess"})
    known, unknown = answers.values()
    assert known.status_code == unknown.status_code == 429
    assert b"Too many attempts" in known.data and b"Too many attempts" in unknown.data


def test_successful_logins_do_not_count_against_the_account(client, app):
    f.make_user("ann@example.test")
    for _ in range(7):
        c = app.test_client()
        assert post(c, "/login", {"email": "ann@example.test", "password": PW}).status_code == 302


def test_every_post_counts_against_the_network(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ATTEMPTS_PER_IP", "3 per 15 minutes")
    f.make_user("ann@example.test")
    for i in range(3):
        assert post(client, "/login", {"email": f"x{i}@example.test", "password": ""}).status_code == 422
    r = post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert r.status_code == 429 and b"Too many attempts. Try again in 15 minutes." in r.data
    other = app.test_client()
    ok = post(other, "/login", {"email": "ann@example.test", "password": PW}, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert ok.status_code == 302


def test_login_rehashes_a_password_stored_at_an_older_cost(client, app):
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1, type=Type.ID).hash(PW)
    user = f.make_user("ann@example.test")
    user.password_hash = old
    db.session.commit()
    assert post(client, "/login", {"email": "ann@example.test", "password": PW}).status_code == 302
    db.session.expire_all()
    stored = db.session.get(User, user.id).password_hash
    assert stored != old and not hasher().check_needs_rehash(stored)
    assert post(app.test_client(), "/login", {"email": "ann@example.test", "password": PW}).status_code == 302


def test_logout_needs_post_with_csrf_and_revokes_the_session(login):
    user = f.make_user("ann@example.test")
    c = login(user)
    assert c.get(url(None, "/logout")).status_code == 405
    assert c.post(url(None, "/logout")).status_code == 400  # no CSRF token
    assert c.get(url(None, "/account")).status_code == 200
    r = post(c, "/logout")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert db.session.get(UserSession, c.user_session_id).revoked_at is not None
    assert c.get(url(None, "/account")).status_code == 302


def test_signed_in_visitor_to_login_is_sent_on(login):
    c = login(f.make_user("ann@example.test"))
    assert c.get(url(None, "/login")).status_code == 302


def test_unknown_address_runs_argon2_like_a_known_one(client, monkeypatch):
    """A failed sign-in spends one Argon2 verification whether or not the
    address has an account, so timing does not tell them apart."""
    real = PasswordHasher.verify
    calls = []

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    f.make_user("ann@example.test")
    post(client, "/login", {"email": "ann@example.test", "password": "not-the-password"})
    known = len(calls)
    post(client, "/login", {"email": "nobody@example.test", "password": "not-the-password"})
    assert known == 1 and len(calls) - known == 1

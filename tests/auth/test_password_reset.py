"""Forgotten password: one answer for every address, single-use one-hour links."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, text

from app.auth.models import PasswordReset, User, UserSession
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import link_in, path_of, post
from tests.conftest import url

NEW_PW = "granite-meadow-violin-7"


def forgot_answer(response) -> str:
    body = response.get_data(as_text=True)
    start = body.index("<h1>")
    return body[start : body.index("</p>", start)]


def test_forgot_answers_the_same_for_known_and_unknown_addresses(client, mailbox):
    f.make_user("ann@example.test")
    known = post(client, "/forgot-password", {"email": "ann@example.test"})
    unknown = post(client, "/forgot-password", {"email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 200
    assert forgot_answer(known).replace("ann@", "X@") == forgot_answer(unknown).replace("nobody@", "X@")
    assert "If an account exists" in known.get_data(as_text=True)
    assert len(mailbox.messages) == 1 and mailbox.last("ann@example.test")["Subject"] == "Reset your password"


def test_only_the_token_hash_is_stored(client, mailbox):
    f.make_user("ann@example.test")
    post(client, "/forgot-password", {"email": "ann@example.test"})
    token = path_of(link_in(mailbox.last("ann@example.test"))).rsplit("/", 1)[1]
    row = db.session.execute(select(PasswordReset)).scalar_one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    assert 59 * 60 <= (row.expires_at - row.created_at).total_seconds() <= 61 * 60


def test_reset_link_sets_the_password_once_and_signs_out_every_session(client, login, mailbox, audit_log):
    user = f.make_user("ann@example.test")
    laptop, phone = login(user), login(user)
    post(client, "/forgot-password", {"email": "ann@example.test"})
    link = link_in(mailbox.last("ann@example.test"))
    page = client.get(link)
    assert page.status_code == 200 and b"Choose a new password" in page.data
    r = post(client, path_of(link), {"password": NEW_PW, "confirm": NEW_PW})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert laptop.get(url(None, "/account")).status_code == 302
    assert phone.get(url(None, "/account")).status_code == 302
    assert all(s.revoked_at for s in db.session.execute(select(UserSession)).scalars())
    assert post(client, "/login", {"email": "ann@example.test", "password": f.PASSWORD}).status_code == 422
    assert post(client, "/login", {"email": "ann@example.test", "password": NEW_PW}).status_code == 302
    assert "auth.password_reset" in audit_log.actions()
    # used once: the same link is now gone
    again = client.application.test_client()
    assert again.get(link).status_code == 410
    assert (
        post(
            again, path_of(link), {"password": "another-fine-phrase-9", "confirm": "another-fine-phrase-9"}
        ).status_code
        == 410
    )


def test_a_new_reset_kills_the_older_links(client, mailbox):
    f.make_user("ann@example.test")
    post(client, "/forgot-password", {"email": "ann@example.test"})
    first = link_in(mailbox.last("ann@example.test"))
    post(client, "/forgot-password", {"email": "ann@example.test"})
    second = link_in(mailbox.last("ann@example.test"))
    assert post(client, path_of(second), {"password": NEW_PW, "confirm": NEW_PW}).status_code == 302
    assert client.get(first).status_code == 410


def test_reset_link_older_than_an_hour_is_410(client, mailbox, owner_engine):
    f.make_user("ann@example.test")
    post(client, "/forgot-password", {"email": "ann@example.test"})
    link = link_in(mailbox.last("ann@example.test"))
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE password_resets SET created_at = now() - interval '61 minutes', "
                "expires_at = now() - interval '1 minute'"
            )
        )
    r = client.get(link)
    assert r.status_code == 410 and b"no longer valid" in r.data
    assert post(client, path_of(link), {"password": NEW_PW, "confirm": NEW_PW}).status_code == 410


def test_unknown_reset_token_is_410(client):
    assert client.get(url(None, "/reset-password/not-a-token")).status_code == 410


def test_reset_with_a_bad_password_is_422_and_the_link_still_works(client, mailbox):
    user = f.make_user("ann@example.test")
    post(client, "/forgot-password", {"email": "ann@example.test"})
    path = path_of(link_in(mailbox.last("ann@example.test")))
    for data, message in (
        ({"password": "password1", "confirm": "password1"}, "too common"),
        ({"password": "short", "confirm": "short"}, "at least 8"),
        ({"password": NEW_PW, "confirm": NEW_PW + "x"}, "do not match"),
    ):
        r = post(client, path, data)
        assert r.status_code == 422 and message in r.get_data(as_text=True)
    old_hash = user.password_hash
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == old_hash
    assert db.session.execute(select(PasswordReset.used_at)).scalar_one() is None
    assert post(client, path, {"password": NEW_PW, "confirm": NEW_PW}).status_code == 302


def test_forgot_with_a_malformed_address_is_422(client, mailbox):
    r = post(client, "/forgot-password", {"email": "not an address"})
    assert r.status_code == 422 and b'id="email-error"' in r.data
    assert mailbox.messages == []


def test_reset_mails_per_account_are_capped_silently(client, mailbox):
    f.make_user("ann@example.test")
    answers = [post(client, "/forgot-password", {"email": "ann@example.test"}).status_code for _ in range(5)]
    assert answers == [200] * 5
    assert len(mailbox.to("ann@example.test")) == 3  # PASSWORD_RESET_MAILS_PER_ACCOUNT: 3 per hour


def test_reset_requests_are_throttled_per_network(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_REQUESTS_PER_IP", "2 per 15 minutes")
    for i in range(2):
        assert post(client, "/forgot-password", {"email": f"a{i}@example.test"}).status_code == 200
    r = post(client, "/forgot-password", {"email": "a3@example.test"})
    assert r.status_code == 429 and b"Too many requests. Try again in 15 minutes." in r.data


def test_resetting_verifies_an_unverified_address(client, mailbox):
    user = f.make_user("ann@example.test", verified=False)
    post(client, "/forgot-password", {"email": "ann@example.test"})
    post(client, path_of(link_in(mailbox.last("ann@example.test"))), {"password": NEW_PW, "confirm": NEW_PW})
    db.session.expire_all()
    assert db.session.get(User, user.id).is_verified

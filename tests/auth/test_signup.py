"""Sign-up and e-mail verification."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select, text

from app.auth.models import User, UserSession
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import follow_link, link_in, path_of, post
from tests.conftest import url

GOOD = {
    "name": "Nina New",
    "email": "Nina@Example.test",
    "password": "plum-orbit-cactus-42",
    "confirm": "plum-orbit-cactus-42",
}


def user_count() -> int:
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def test_signup_creates_unverified_user_signs_in_and_mails_a_link(client, mailbox, audit_log):
    assert client.get(url(None, "/signup")).status_code == 200
    r = post(client, "/signup", GOOD)
    assert r.status_code == 302 and r.headers["Location"].endswith("/verify-email")
    user = db.session.execute(select(User)).scalar_one()
    assert user.email == "nina@example.test" and user.name == "Nina New"
    assert not user.is_verified
    assert user.password_hash.startswith("$argon2id$")
    assert (
        db.session.execute(
            select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
        ).scalar_one()
        == 1
    )
    page = client.get(url(None, "/verify-email"))
    assert page.status_code == 200 and b"Check your inbox" in page.data and b"nina@example.test" in page.data
    msg = mailbox.last("nina@example.test")
    assert msg["Subject"] == "Verify your e-mail address"
    assert link_in(msg).startswith("http://tenantry.localhost/verify-email/")
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert link_in(msg) in html and "<img" not in html
    assert {"auth.signup", "auth.login"} <= set(audit_log.actions())


def test_verification_link_verifies_the_address_once(client, mailbox, audit_log):
    post(client, "/signup", GOOD)
    link = link_in(mailbox.last("nina@example.test"))
    other_browser = client.application.test_client()
    # Opening the link only asks: a mail scanner's GET verifies nothing.
    r = other_browser.get(link)
    assert r.status_code == 200 and b"Verify nina@example.test" in r.data
    user = db.session.execute(select(User)).scalar_one()
    db.session.refresh(user)
    assert not user.is_verified
    r = follow_link(other_browser, link)
    assert r.status_code == 200 and b"E-mail verified" in r.data
    db.session.refresh(user)
    assert user.is_verified
    assert audit_log.last("auth.email_verified")["target"].id == user.id
    again = other_browser.get(link)
    assert again.status_code == 410 and b"already used" in again.data


def test_verification_link_dies_when_the_address_changes(client, mailbox, owner_engine):
    post(client, "/signup", GOOD)
    link = link_in(mailbox.last("nina@example.test"))
    with owner_engine.begin() as c:
        c.execute(text("UPDATE users SET email = 'nina2@example.test'"))
    assert client.get(link).status_code == 410
    assert db.session.execute(select(User.email_verified_at)).scalar_one() is None


def test_verification_link_older_than_48_hours_is_410(client, app):
    user = f.make_user("late@example.test", verified=False)

    class PastSigner(TimestampSigner):
        def get_timestamp(self):
            return int(time.time() - timedelta(hours=48, minutes=1).total_seconds())

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="tenantry.verify-email", signer=PastSigner)
    token = old.dumps({"u": str(user.id), "e": user.email})
    r = client.get(url(None, f"/verify-email/{token}"))
    assert r.status_code == 410 and b"no longer valid" in r.data
    fresh = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="tenantry.verify-email").dumps(
        {"u": str(user.id), "e": user.email}
    )
    assert client.get(url(None, f"/verify-email/{fresh}")).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "eyJ1IjoiMSJ9.Zz.abc", "x" * 300])
def test_tampered_verification_link_is_410(client, token):
    assert client.get(url(None, f"/verify-email/{token}")).status_code == 410


def test_a_link_signed_for_another_purpose_is_refused(client, app):
    """Salts keep an e-mail-change token from working as a verification link."""
    user = f.make_user("mix@example.test", verified=False)
    token = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="tenantry.email-change").dumps(
        {"u": str(user.id), "e": user.email}
    )
    assert client.get(url(None, f"/verify-email/{token}")).status_code == 410


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"name": ""}, "name", "Enter your name."),
        ({"name": "x" * 121}, "name", "120"),
        ({"email": "not-an-address"}, "email", "Enter a valid e-mail address"),
        ({"email": ""}, "email", "Enter your e-mail address."),
        ({"password": "short1", "confirm": "short1"}, "password", "at least 8 characters"),
        ({"password": "qwertyuiop", "confirm": "qwertyuiop"}, "password", "too common"),
        ({"password": "nina@example.test", "confirm": "nina@example.test"}, "password", "e-mail address"),
        ({"confirm": "something-else-entirely"}, "confirm", "do not match"),
    ],
)
def test_signup_bad_input_is_422_beside_the_field_and_saves_nothing(client, mailbox, change, field, message):
    r = post(client, "/signup", {**GOOD, **change})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert f'id="{field}-error"' in body and message in body
    assert user_count() == 0
    assert mailbox.to("nina@example.test") == []


def test_signup_with_a_taken_address_is_422(client, mailbox):
    f.make_user("nina@example.test")
    r = post(client, "/signup", GOOD)
    assert r.status_code == 422 and b"already exists" in r.data
    assert user_count() == 1 and mailbox.messages == []


def test_signup_is_throttled_per_network(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNUPS_PER_IP", "2 per hour")
    for i in range(2):
        c = app.test_client()
        assert post(c, "/signup", {**GOOD, "email": f"n{i}@example.test"}).status_code == 302
    r = post(app.test_client(), "/signup", {**GOOD, "email": "n3@example.test"})
    assert r.status_code == 429 and b"Try again in" in r.data
    assert user_count() == 2


def test_resend_verification_sends_a_new_link_and_is_rate_limited(client, mailbox):
    post(client, "/signup", GOOD)
    for _ in range(3):  # VERIFICATION_MAILS_PER_ACCOUNT: 3 per 15 minutes
        r = post(client, "/verify-email/resend")
        assert r.status_code == 302
    r = post(client, "/verify-email/resend")
    assert r.status_code == 429
    assert "Too many verification e-mails. Try again in 15 minutes." in r.get_data(as_text=True)
    assert len(mailbox.to("nina@example.test")) == 4  # sign-up + three resends
    links = {link_in(m) for m in mailbox.to("nina@example.test")}
    assert all(path_of(x).startswith("/verify-email/") for x in links)


def test_resend_for_a_verified_address_sends_nothing(login, mailbox):
    user = f.make_user("done@example.test", verified=True)
    c = login(user)
    r = post(c, "/verify-email/resend")
    assert r.status_code == 302 and mailbox.messages == []


def test_verify_page_and_resend_need_a_sign_in(client):
    assert client.get(url(None, "/verify-email")).status_code == 302
    assert post(client, "/verify-email/resend").status_code == 302

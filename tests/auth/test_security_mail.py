"""Security e-mails (``app.auth.notifications``): a sign-in from a new
device, second-factor changes, a password change, a recovery code's use;
each but the last can be turned off on the account page. Read from the
suite's real SMTP server."""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import link_in, path_of, post
from tests.auth.test_two_factor import enrol
from tests.conftest import url

PW = f.PASSWORD
NEW_PW = "a much longer secret 42"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1"


def subjects(mailbox, address: str) -> list[str]:
    return [m["Subject"] for m in mailbox.to(address)]


def log_in(app, ua: str, ip: str = "127.0.0.1", email: str = "ann@example.test"):
    client = app.test_client()
    env = {"HTTP_USER_AGENT": ua, "REMOTE_ADDR": ip}
    r = client.post(
        url(None, "/login"),
        data={"email": email, "password": PW, "csrf_token": _token(client)},
        environ_base=env,
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def next_code(secret: str) -> str:
    """The next step's code (the current one was spent confirming)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _token(client):
    from tests.conftest import csrf_token

    return csrf_token(client)


def test_a_sign_in_from_a_new_device_mails_the_user_and_a_known_one_does_not(app, mailbox, audit_log):
    f.make_user("ann@example.test")
    log_in(app, FIREFOX)  # the first sign-in ever: nothing to compare with
    assert subjects(mailbox, "ann@example.test") == []
    log_in(app, FIREFOX)  # same browser, same address
    assert subjects(mailbox, "ann@example.test") == []
    log_in(app, SAFARI, ip="203.0.113.9")
    msg = mailbox.last("ann@example.test")
    assert msg["Subject"] == "New sign-in to your Tenantry account"
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Safari on iPhone" in body and "203.0.113.9" in body
    assert audit_log.last("auth.login")["metadata"]["new_device"] is True
    log_in(app, FIREFOX, ip="198.51.100.4")  # a known browser from a new address is a new pair
    assert len(mailbox.to("ann@example.test")) == 2


def test_turning_on_and_off_two_factor_and_new_codes_mail_the_user(login, mailbox):
    user = f.make_user("ann@example.test")
    client = login(user)
    secret, _ = enrol(client)
    assert subjects(mailbox, "ann@example.test") == ["Your two-factor authentication changed"]
    assert "authenticator app was turned on" in mailbox.last("ann@example.test").get_body(("plain",)).get_content()
    assert post(client, "/account/security/recovery-codes", {"codes_password": PW}).status_code == 200
    post(client, "/account/security/totp/disable", {"disable_password": PW, "factor_code": next_code(secret)})
    texts = [m.get_body(("plain",)).get_content() for m in mailbox.to("ann@example.test")]
    assert len(texts) == 3
    assert "Ten new recovery codes were made" in texts[1]
    assert "authenticator app was turned off" in texts[2]


def test_password_change_and_reset_mail_the_user(login, app, mailbox):
    user = f.make_user("ann@example.test")
    client = login(user)
    r = post(client, "/account/password", {"current_password": PW, "new_password": NEW_PW, "confirm_password": NEW_PW})
    assert r.status_code == 302
    msg = mailbox.last("ann@example.test")
    assert msg["Subject"] == "Your Tenantry password was changed"
    assert "on your account page" in msg.get_body(("plain",)).get_content()
    mailbox.clear()
    anon = app.test_client()
    post(anon, "/forgot-password", {"email": "ann@example.test"})
    link = link_in(mailbox.last("ann@example.test"))
    r = post(anon, path_of(link), {"password": "yet another long secret 7", "confirm": "yet another long secret 7"})
    assert r.status_code == 302, r.get_data(as_text=True)
    msg = mailbox.last("ann@example.test")
    assert msg["Subject"] == "Your Tenantry password was changed"
    assert "through a password-reset link" in msg.get_body(("plain",)).get_content()


def test_a_muted_kind_is_not_sent_and_the_choice_is_audited(login, mailbox, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    # Keep new-device mails, turn off password and second-factor ones.
    r = post(client, "/account/security/mail", {"receive": ["new_device"]})
    assert r.status_code == 302
    assert audit_log.last("auth.security_mail_updated")["after"] == {"muted": ["password_changed", "second_factor"]}
    post(client, "/account/password", {"current_password": PW, "new_password": NEW_PW, "confirm_password": NEW_PW})
    enrol(client)
    assert subjects(mailbox, "ann@example.test") == []
    page = client.get(url(None, "/account/security")).get_data(as_text=True)
    assert 'id="mail-new_device" aria-describedby="mail-new_device-hint" checked' in page
    assert 'id="mail-password_changed" aria-describedby="mail-password_changed-hint">' in page


def test_a_recovery_code_use_mails_even_when_every_kind_is_turned_off(login, app, mailbox):
    user = f.make_user("ann@example.test")
    client = login(user)
    _, codes = enrol(client)
    # Trying to turn the recovery-code notice off too: it cannot be.
    post(client, "/account/security/mail", {})
    assert db.session.execute(select(User.security_mail_muted).where(User.id == user.id)).scalar_one() == [
        "new_device",
        "password_changed",
        "second_factor",
    ]
    assert mailbox.messages  # the enrolment's mail delivered, then forgotten
    mailbox.clear()
    other = app.test_client()
    post(other, "/login", {"email": "ann@example.test", "password": PW})
    assert post(other, "/login/second-factor", {"code": codes[0]}).status_code == 302
    assert subjects(mailbox, "ann@example.test") == ["A recovery code was used"]
    body = mailbox.last("ann@example.test").get_body(("plain",)).get_content()
    assert "cannot be turned off" in body


def test_an_unknown_kind_in_the_form_is_422_and_changes_nothing(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    r = post(client, "/account/security/mail", {"receive": ["new_device", "everything"]})
    assert r.status_code == 422
    assert "Choose only from the e-mails listed." in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).security_mail_muted == []

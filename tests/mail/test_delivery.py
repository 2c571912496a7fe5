"""Background delivery: a request that queues mail answers without waiting
for SMTP, and the mail still arrives once the transaction has committed."""

from __future__ import annotations

import threading

from app import mail
from tests import factories as f
from tests.auth.conftest import post


def test_forgot_password_answers_before_the_mail_is_delivered(app, client, mailbox, monkeypatch):
    """Timing must not tell whether an account exists: the page that mails
    (an existing account) does not wait for the SMTP server."""
    f.make_user("ann@example.test")
    monkeypatch.setitem(app.config, "MAIL_DELIVERY", "background")
    gate = threading.Event()
    real = mail._send_smtp

    def slow_smtp(url, msg):
        assert gate.wait(10), "the test never released the SMTP server"
        real(url, msg)

    monkeypatch.setattr(mail, "_send_smtp", slow_smtp)
    r = post(client, "/forgot-password", {"email": "ann@example.test"})
    assert r.status_code == 200 and b"Check your inbox" in r.data
    assert mailbox.to("ann@example.test") == []  # the answer came while SMTP was still held
    gate.set()
    assert mailbox.last("ann@example.test")["Subject"] == "Reset your password"


def test_a_rolled_back_change_sends_nothing_in_the_background(app, mailbox, monkeypatch):
    from app.extensions import db

    monkeypatch.setitem(app.config, "MAIL_DELIVERY", "background")
    mail.queue_mail("nobody@example.test", "Never sent", "reset", user=None, link="http://x/", minutes=60)
    db.session.rollback()
    db.session.commit()  # a later commit must not send what the rollback dropped
    mail._executor().submit(lambda: None).result(timeout=5)  # the pool has drained
    assert mailbox.to("nobody@example.test") == []

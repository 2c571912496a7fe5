"""Every mail is a job: no request waits on SMTP, and a mail that cannot be
delivered yet waits in the queue and is retried until it is."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy import select, text

from app.auth.models import PasswordReset
from app.extensions import db
from app.members.models import Invitation
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import csrf_token, url


@pytest.fixture
def hung_smtp(app, monkeypatch):
    """An SMTP server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    monkeypatch.setitem(app.config, "MAIL_URL", f"smtp://127.0.0.1:{listener.getsockname()[1]}")
    yield
    stop.set()
    t.join(2)
    for s in held:
        s.close()
    listener.close()


def _jobs(owner_engine, task: str) -> list:
    """The queue's jobs of ``task``, read as the owner (the runtime role may not)."""
    with owner_engine.connect() as c:
        return list(
            c.execute(
                text("SELECT status, attempts FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"), {"t": task}
            ).all()
        )


def _invite_four(c):
    emails = "\n".join(f"guest{i}@example.test" for i in range(4))
    started = time.monotonic()
    r = c.post(
        url("acme", "/members/invite"),
        data={"emails": emails, "role": "member", "csrf_token": csrf_token(c, "acme")},
    )
    return r, time.monotonic() - started


@pytest.mark.parametrize("smtp", ["stopped", "hung"])
def test_inviting_four_never_waits_on_smtp(request, world, login, mailbox, owner_engine, smtp):
    """With the SMTP server stopped or hanging, inviting four people answers
    at once: the invitations, their audit events and their four mail jobs
    are committed together."""
    if smtp == "stopped":
        mailbox.server.stop()
    else:
        request.getfixturevalue("hung_smtp")
    c = login(world.users["admin"], "acme")
    r, took = _invite_four(c)
    assert r.status_code == 302 and took < 2.0, took
    with owner_engine.connect() as conn:
        invited = conn.execute(text("SELECT count(*) FROM invitations WHERE email LIKE 'guest%'")).scalar()
        events = conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'member.invited'")).scalar()
        mails = conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'mail.send' AND status = 'todo'")
        ).scalar()
    assert (invited, events, mails) == (4, 4, 4)


@pytest.mark.parametrize("smtp", ["stopped", "hung"])
def test_forgot_password_never_waits_on_smtp(request, client, mailbox, smtp):
    f.make_user("ann@example.test")
    if smtp == "stopped":
        mailbox.server.stop()
    else:
        request.getfixturevalue("hung_smtp")
    started = time.monotonic()
    r = post(client, "/forgot-password", {"email": "ann@example.test"})
    assert r.status_code == 200 and b"Check your inbox" in r.data
    assert time.monotonic() - started < 2.0


def test_a_reset_mail_that_failed_is_retried_until_delivered(client, mailbox, run_jobs, advance_jobs, owner_engine):
    """The reset mail is not logged and lost: it waits for the server."""
    f.make_user("ann@example.test")
    mailbox.server.stop()
    post(client, "/forgot-password", {"email": "ann@example.test"})
    run_jobs()  # the reset job makes the link; its mail job fails
    assert [s for s, _ in _jobs(owner_engine, "mail.send")] == ["todo"]
    assert _jobs(owner_engine, "mail.send")[0].attempts == 1
    from app.jobs import admin

    failed_mail = admin.status()
    assert {q.queue: q.scheduled for q in failed_mail.queues}["mail"] == 1
    mailbox.server.start()
    advance_jobs()
    assert mailbox.last("ann@example.test")["Subject"] == "Reset your password"
    assert _jobs(owner_engine, "mail.send") == []  # delivered: the job (and the link it held) is gone
    assert len(db.session.execute(select(PasswordReset)).all()) == 1  # one link, however many attempts


def test_a_mail_refused_for_good_is_not_retried(app, mailbox, run_jobs, monkeypatch):
    from app import mail

    def refuse(url, msg):
        raise mail.Undeliverable("550 no such mailbox")

    monkeypatch.setattr(mail, "_send_smtp", refuse)
    mail.queue_mail("gone@example.test", "Hello", "reset", user=None, link="http://x/", minutes=60)
    db.session.commit()
    run_jobs()
    from app.jobs import admin

    [failed] = admin.status().failed
    assert failed.task == "mail.send" and "550 no such mailbox" in failed.error and failed.attempts == 1


def test_forgot_password_does_the_same_work_for_known_and_unknown_addresses(client, count_queries):
    """The request enqueues one job whatever the address; the job decides.
    Both requests send exactly the same statements."""
    f.make_user("ann@example.test")
    token = csrf_token(client)

    def work(email):
        with count_queries() as q:
            r = client.post(url(None, "/forgot-password"), data={"email": email, "csrf_token": token})
        assert r.status_code == 200
        return [" ".join(s.split()) for s in q.statements]

    known, unknown = work("ann@example.test"), work("nobody@example.test")
    assert known == unknown
    assert sum("procrastinate_defer_jobs_v1" in s for s in known) == 1
    assert not any("password_resets" in s or "audit_events" in s for s in known)


def test_the_reset_job_mails_only_an_existing_account(client, mailbox):
    f.make_user("ann@example.test")
    post(client, "/forgot-password", {"email": "ann@example.test"})
    post(client, "/forgot-password", {"email": "nobody@example.test"})
    assert [m["To"] for m in mailbox.messages] == ["ann@example.test"]
    assert mailbox.to("nobody@example.test") == []


def test_an_invitation_is_stamped_sent_once_delivered(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    _invite_four(c)
    assert len(mailbox.messages) == 4
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        stamps = db.session.execute(select(Invitation.sent_at)).scalars().all()
    assert len(stamps) == 4 and all(stamps)

"""Outgoing mail: one ``send_mail()`` path for every message.

With ``MAIL_URL`` (``smtp://user:pass@host:port``, ``smtps://…`` for implicit
TLS, ``?starttls=1`` for STARTTLS) mail goes over SMTP. Without it, each
message is written to ``instance/outbox/`` and listed by a development-only
page, so nothing is lost and nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template

from app.extensions import db
from app.util import utcnow

log = logging.getLogger("tenantry.mail")


def build(to: str, subject: str, template: str, **context) -> EmailMessage:
    """Render ``templates/mail/<template>.txt`` and ``.html`` into one message."""
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="tenantry.local")
    context.setdefault("subject", subject)
    msg.set_content(render_template(f"mail/{template}.txt", **context))
    msg.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return msg


def send_mail(to: str, subject: str, template: str, **context) -> EmailMessage:
    """Send one message now (SMTP from ``MAIL_URL``, else the development outbox)."""
    msg = build(to, subject, template, **context)
    deliver(msg)
    log.info("mail sent: %s to %s", template, to)
    return msg


def deliver(msg: EmailMessage) -> None:
    """Hand a built message to SMTP (``MAIL_URL``) or the development outbox."""
    url = current_app.config.get("MAIL_URL")
    if url:
        _send_smtp(url, msg)
    else:
        _write_outbox(msg)


_QUEUE_KEY = "tenantry.mail_queue"


def queue_mail(to: str, subject: str, template: str, **context) -> EmailMessage:
    """Render a message now and send it once the current transaction commits.

    A rolled-back change sends nothing (no verification link for a user that
    was never saved). Delivery happens on a background thread unless
    ``MAIL_DELIVERY=inline``: the request does not wait for SMTP, so a page
    that mails only when an account exists (a forgotten password) answers as
    fast as one that does not. A delivery failure after the commit is
    logged, not raised: the change itself stands, and the user can ask for
    the mail again.
    """
    msg = build(to, subject, template, **context)
    db.session.info.setdefault(_QUEUE_KEY, []).append((template, msg))
    return msg


def _install_queue_hooks() -> None:
    from flask_sqlalchemy.session import Session as AppSession
    from sqlalchemy import event

    if getattr(AppSession, "_tenantry_mail_hooks", False):
        return
    AppSession._tenantry_mail_hooks = True

    @event.listens_for(AppSession, "after_commit")
    def _send_queued(session):
        pending = session.info.pop(_QUEUE_KEY, [])
        if not pending:
            return
        app = current_app._get_current_object()
        if app.config.get("MAIL_DELIVERY") == "inline":
            _deliver_all(pending)
        else:
            _executor().submit(_deliver_in_app, app, pending)

    @event.listens_for(AppSession, "after_rollback")
    def _drop_queued(session):
        session.info.pop(_QUEUE_KEY, None)


def _deliver_all(pending) -> None:
    for template, msg in pending:
        try:
            deliver(msg)
            log.info("mail sent: %s to %s", template, msg["To"])
        except Exception:  # the commit stands; a lost mail can be asked for again
            log.exception("mail delivery failed: %s to %s", template, msg["To"])


def _deliver_in_app(app, pending) -> None:
    with app.app_context():
        _deliver_all(pending)


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """This process's delivery threads (made on first use, and again in a
    forked worker: threads do not survive a fork). They are not daemons, so a
    worker that shuts down finishes sending what it accepted."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="tenantry-mail"))
    return _pool[1]


_install_queue_hooks()


def _send_smtp(url: str, msg: EmailMessage) -> None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or "localhost"
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=10, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=10)
    with client:
        if query.get("starttls", ["0"])[0] in ("1", "true"):
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(msg)


def outbox_dir() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / "outbox"


def _write_outbox(msg: EmailMessage) -> None:
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)

    name = f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.eml"
    (folder / name).write_bytes(bytes(msg))

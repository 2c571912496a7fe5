"""Outgoing mail: one ``send_mail()`` path for every message.

Every mail leaves as a job (``queue_mail``): a worker hands it to SMTP and
retries while the server is down, so no request waits on it and none is
lost. With ``MAIL_URL`` (``smtp://user:pass@host:port``, ``smtps://…`` for
implicit TLS, ``?starttls=1`` for STARTTLS) mail goes over SMTP. Without it, each
message is written to ``instance/outbox/`` and listed by a development-only
page, so nothing is lost and nothing leaves the machine.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template

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


def deliver(msg: EmailMessage) -> None:
    """Hand a built message to SMTP (``MAIL_URL``) or the development outbox."""
    url = current_app.config.get("MAIL_URL")
    if url:
        _send_smtp(url, msg)
    else:
        _write_outbox(msg)


def queue_mail(
    to: str, subject: str, template: str, *, after_sent: tuple[str, str] | None = None, **context
) -> EmailMessage:
    """Render a message now and send it as a job (``mail.send``), enqueued in
    the current transaction.

    A rolled-back change sends nothing (no verification link for a user that
    was never saved); a committed one always has its mail. No request waits
    for SMTP: a worker sends it, and while the SMTP server is down or refuses
    for a while the job is retried with backoff (``app/mail/tasks.py``)
    until it is delivered. ``after_sent=(kind, key)`` calls the hook
    registered with ``on_sent(kind)`` once the message is handed over (in
    the job's transaction and organization), e.g. to stamp an invitation.
    """
    from app import jobs
    from app.mail.tasks import send

    msg = build(to, subject, template, **context)
    jobs.enqueue(
        send, template=template, to=to, message=msg.as_string(), after_sent=list(after_sent) if after_sent else None
    )
    return msg


_SENT_HOOKS: dict = {}


def on_sent(kind: str):
    """Register ``fn(key)`` to run, in the mail job's transaction, once a
    message queued with ``after_sent=(kind, key)`` has been delivered."""

    def register(fn):
        _SENT_HOOKS[kind] = fn
        return fn

    return register


class Undeliverable(Exception):
    """The SMTP server refused the message for good (a 5xx answer to the
    recipients or the content): retrying cannot help."""


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
        try:
            client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            if all(500 <= code < 600 for code, _ in e.recipients.values()):
                raise Undeliverable(f"recipients refused: {e.recipients}") from e
            raise
        except smtplib.SMTPDataError as e:
            if 500 <= e.smtp_code < 600:
                raise Undeliverable(f"message refused: {e.smtp_code} {e.smtp_error!r}") from e
            raise


def outbox_dir() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / "outbox"


def _write_outbox(msg: EmailMessage) -> None:
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)

    name = f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.eml"
    (folder / name).write_bytes(bytes(msg))

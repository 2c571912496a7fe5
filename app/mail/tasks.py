"""The mail job: hand one rendered message to SMTP (or the development outbox)."""

from __future__ import annotations

import logging
from email import message_from_string, policy

from app import jobs
from app.mail import _SENT_HOOKS, Undeliverable, deliver

log = logging.getLogger("tenantry.mail")

# 10 s, 20 s, 40 s … doubling to one hour, for about three days; a refusal
# for good (5xx) is not retried. A job that gave up stays in the queue as
# failed, with its error: `flask jobs status`, `flask jobs retry ID`.
RETRY = jobs.Backoff(base=10, cap=3600, max_attempts=80, give_up=(Undeliverable,))


@jobs.task("mail.send", queue_name="mail", retry=RETRY)
def send(template: str, to: str, message: str, after_sent: list | None = None) -> None:
    """Deliver one message rendered when it was queued (its Message-ID is
    kept, so a repeated delivery is recognisable as the same mail)."""
    deliver(message_from_string(message, policy=policy.default))
    log.info("mail sent: %s to %s", template, to)
    if after_sent:
        kind, key = after_sent
        _SENT_HOOKS[kind](key)

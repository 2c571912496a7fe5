"""Helpers for the account tests: CSRF-carrying posts, links out of real mail,
and a record of the audit calls (the real audit store still receives them)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.conftest import Mailbox, csrf_token, url

LINK_RE = re.compile(r"https?://\S+")


def post(client, path: str, data: dict | None = None, slug: str | None = None, **kw):
    """POST a form the way a browser would: with this client's CSRF token."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, slug))
    return client.post(url(slug, path), data=data, **kw)


def link_in(msg) -> str:
    """The (first) link of a received message's text part."""
    m = LINK_RE.search(Mailbox.text(msg))
    assert m, Mailbox.text(msg)
    return m.group(0)


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class AuditLog(list):
    """(action, kwargs) of every ``audit.record`` call."""

    def actions(self) -> list[str]:
        return [action for action, _ in self]

    def last(self, action: str) -> dict:
        found = [kw for a, kw in self if a == action]
        assert found, f"no {action} in {self.actions()}"
        return found[-1]


@pytest.fixture
def audit_log(monkeypatch):
    """Every ``audit.record`` call of the test; each call still reaches the real store."""
    from app import audit

    log = AuditLog()
    real = audit.record

    def spy(action, *args, **kwargs):
        log.append((action, kwargs))
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", spy)
    return log


def follow_link(client, link: str):
    """Open an e-mailed link and press its button, as a person does: GET
    only asks, the POST (with this client's CSRF token) acts. Returns the
    POST's response, or the GET's when the link is refused."""
    page = client.get(link)
    if page.status_code != 200 or b'method="post"' not in page.data:
        return page
    return client.post(link, data={"csrf_token": csrf_token(client, None)})

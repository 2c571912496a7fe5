"""Fixtures of the members area: bulk members as real rows, invitations,
memberships read back fresh, and an audit spy."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from app.auth.models import User
from app.extensions import db
from app.members.invitations import hash_token, new_token
from app.members.models import Invitation
from app.scoping import tenant_context
from app.tenancy.models import Membership
from app.util import utcnow
from tests.fresh_client import fresh_requests  # noqa: F401  (requests run like real ones)

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):  # noqa: F811
    """Every request of these tests runs in its own app context and session."""
    yield


def add_members(
    org, n: int, prefix: str = "person", role: str = "member", status: str = "active", start=None
) -> list[uuid.UUID]:
    """``n`` users with memberships of ``org`` in two INSERTs (committed); returns their ids.

    Names are "<Prefix> NNNN" and e-mails "<prefix>NNNN@<org slug>.test", so
    sorting by either is predictable; ``joined`` goes back one minute per row.
    """
    start = start or utcnow()
    ids = [uuid.uuid4() for _ in range(n)]
    db.session.execute(
        insert(User),
        [
            {
                "id": uid,
                "email": f"{prefix}{i:04d}@{org.slug}.test",
                "name": f"{prefix.title()} {i:04d}",
                "password_hash": None,
                "email_verified_at": start,
            }
            for i, uid in enumerate(ids)
        ],
    )
    with tenant_context(org.id):
        db.session.execute(
            insert(Membership),
            [
                {
                    "organization_id": org.id,
                    "user_id": uid,
                    "role": role,
                    "status": status,
                    "created_at": start - timedelta(minutes=i),
                }
                for i, uid in enumerate(ids)
            ],
        )
        db.session.commit()
    return ids


def invite_row(
    org, email: str, role: str = "member", expires_in=timedelta(days=7), invited_by=None, **extra
) -> tuple[uuid.UUID, str]:
    """An invitation of ``org`` written directly (committed): ``(id, token)``."""
    token, token_hash = new_token()
    with tenant_context(org.id):
        inv = Invitation(
            organization_id=org.id,
            email=email,
            role=role,
            token_hash=token_hash,
            expires_at=utcnow() + expires_in,
            invited_by=invited_by,
            **extra,
        )
        db.session.add(inv)
        db.session.commit()
        return inv.id, token


def membership(org, user_id) -> Membership | None:
    """The membership of ``user_id`` in ``org``, freshly read (or ``None``)."""
    db.session.expire_all()
    with tenant_context(org.id):
        return db.session.execute(select(Membership).where(Membership.user_id == user_id)).unique().scalar_one_or_none()


def invitation(org, invitation_id) -> Invitation | None:
    db.session.expire_all()
    with tenant_context(org.id):
        return (
            db.session.execute(select(Invitation).where(Invitation.id == invitation_id)).unique().scalar_one_or_none()
        )


def invitations(org) -> list[Invitation]:
    db.session.expire_all()
    with tenant_context(org.id):
        return list(db.session.execute(select(Invitation).order_by(Invitation.email)).unique().scalars())


LINK_RE = re.compile(r"https?://[^\s]+/invitations/([A-Za-z0-9_\-]+)")


def link_in(msg) -> tuple[str, str]:
    """``(url, token)`` of the invitation link in a received message."""
    from tests.conftest import Mailbox

    m = LINK_RE.search(Mailbox.text(msg))
    assert m, Mailbox.text(msg)
    return m.group(0), m.group(1)


@pytest.fixture
def audit_events(monkeypatch):
    """Every ``audit.record`` call made during the test as ``(action, kwargs)`` (the real one still runs)."""
    from app import audit

    calls = []
    real = audit.record

    def spy(action, *args, **kwargs):
        calls.append((action, kwargs))
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", spy)
    return calls


def token_hash_of(token: str) -> str:
    return hash_token(token)

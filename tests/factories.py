"""Factories: real rows through the real models (nothing mocked).

Each runs inside the right tenant context and commits, like the app would.
Organizations and users are written as the cross-organization role (as the
platform would): the runtime role may not set a plan, a status or
``is_superadmin``.
"""

from __future__ import annotations

import itertools

from app.auth.models import User
from app.auth.passwords import hash_password
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Membership, Organization
from app.util import utcnow

PASSWORD = "correct-horse-battery"
# The TOTP secret of every super-admin the factory makes (the platform
# console needs a second factor); ``totp_code(TOTP_SECRET)`` is a valid code.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"
_seq = itertools.count(1)
_hash_cache: dict[str, str] = {}


def _hash(pw: str) -> str:
    if pw not in _hash_cache:
        _hash_cache[pw] = hash_password(pw)
    return _hash_cache[pw]


def make_user(
    email: str | None = None,
    name: str | None = None,
    password: str = PASSWORD,
    verified: bool = True,
    superadmin: bool = False,
    totp: str | bool | None = None,
) -> User:
    """A user; ``totp`` enrols a confirmed TOTP factor with that secret
    (``True``: ``TOTP_SECRET``). A super-admin gets one unless ``totp=False``."""
    n = next(_seq)
    user = User(
        email=email or f"user{n}@example.test",
        name=name or f"User {n}",
        password_hash=_hash(password),
        email_verified_at=utcnow() if verified else None,
        is_superadmin=superadmin,
    )
    with all_organizations(reason="test factory: a user"):
        db.session.add(user)
    db.session.commit()
    if totp is None:
        totp = superadmin
    if totp:
        enrol_totp(user, TOTP_SECRET if totp is True else totp)
    return user


def enrol_totp(user: User, secret: str = TOTP_SECRET) -> User:
    """Give ``user`` a confirmed TOTP factor with ``secret`` (committed)."""
    from app.auth import factors

    factors.enrol_fixed_secret(user, secret)
    db.session.commit()
    return user


def totp_code(secret: str = TOTP_SECRET, ahead: int = 0) -> str:
    """The TOTP code of ``secret`` now, or ``ahead`` 30-second steps later
    (a step the server still accepts, for a second code within one step)."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * ahead)


def make_org(
    slug: str | None = None, name: str | None = None, plan: str = "pro", status: str = "active"
) -> Organization:
    n = next(_seq)
    org = Organization(slug=slug or f"org-{n}", name=name or f"Org {n}", plan_key=plan, status=status)
    with all_organizations(reason="test factory: an organization"):
        db.session.add(org)
    db.session.commit()
    return org


def add_member(
    org: Organization, user: User, role: str = "member", custom_role_id=None, status: str = "active"
) -> Membership:
    with tenant_context(org.id):
        m = Membership(
            organization_id=org.id,
            user_id=user.id,
            role=None if custom_role_id else role,
            custom_role_id=custom_role_id,
            status=status,
        )
        db.session.add(m)
        db.session.commit()
    return m


def reached(org: Organization, session_id, user: User) -> None:
    """Record that the session ``session_id`` of ``user`` reached ``org``'s
    host, as its first request there does (``app.tenancy.request``)."""
    from app.tenancy.models import SessionReach

    with tenant_context(org.id):
        db.session.add(SessionReach(organization_id=org.id, session_id=session_id, user_id=user.id))
        db.session.commit()


def make_project(org: Organization, name: str | None = None, owner: User | None = None, **kw):
    from app.projects.models import Project

    with tenant_context(org.id):
        p = Project(
            organization_id=org.id, name=name or f"Project {next(_seq)}", owner_id=owner.id if owner else None, **kw
        )
        db.session.add(p)
        db.session.commit()
    return p

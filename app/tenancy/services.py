"""Organizations: creation, slugs, the user's own memberships."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from app import audit
from app.errors import UserError
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Membership, Organization, RetiredSlug
from app.util import utcnow
from app.web.hosts import SLUG_PATTERN

RESERVED_SLUGS = frozenset(
    [
        "www",
        "api",
        "admin",
        "app",
        "apps",
        "static",
        "assets",
        "mail",
        "smtp",
        "imap",
        "pop",
        "email",
        "platform",
        "status",
        "help",
        "support",
        "docs",
        "blog",
        "billing",
        "login",
        "logout",
        "signup",
        "register",
        "auth",
        "oauth",
        "sso",
        "saml",
        "oidc",
        "account",
        "accounts",
        "dashboard",
        "console",
        "root",
        "system",
        "internal",
        "dev",
        "staging",
        "test",
        "demo",
        "cdn",
        "media",
        "files",
        "img",
        "images",
        "js",
        "css",
        "ftp",
        "ns",
        "ns1",
        "ns2",
        "mx",
        "webhooks",
        "webhook",
        "hooks",
        "security",
        "legal",
        "terms",
        "privacy",
        "about",
        "pricing",
        "www1",
        "www2",
        "tenantry",
        "localhost",
    ]
)


def slugify(name: str) -> str:
    """A DNS-safe slug from any name: ASCII, lower case, hyphens, 3–63 chars."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    text = re.sub(r"-{2,}", "-", text)[:63].strip("-")
    if len(text) < 3:
        text = (text + "-org").strip("-") if text else "org"
    return text


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot be used, or ``None``."""
    if not slug or len(slug) < 3 or len(slug) > 63:
        return "Use 3 to 63 characters."
    if not SLUG_PATTERN.match(slug):
        return "Use lower-case letters, digits and hyphens, not starting or ending with a hyphen."
    if "--" in slug[2:4]:
        return "A hyphen pair in positions 3–4 is reserved by DNS."
    if slug in RESERVED_SLUGS:
        return "This address is reserved."
    return None


def slug_taken(slug: str, by_other_than=None) -> bool:
    """True when a live organization has ``slug``, or one gave it up less
    than ``SLUG_RETIREMENT`` ago (its old host still redirects there).
    ``by_other_than``: an organization id whose own slugs do not count."""
    live = select(Organization.id).where(Organization.slug == slug, Organization.deleted_at.is_(None))
    retired = select(RetiredSlug.org_id).where(RetiredSlug.slug == slug, RetiredSlug.expires_at > func.now())
    if by_other_than is not None:
        live = live.where(Organization.id != by_other_than)
        retired = retired.where(RetiredSlug.org_id != by_other_than)
    return db.session.execute(select(live.exists() | retired.exists())).scalar_one()


# How long a slug an organization gave up keeps redirecting to it, and stays
# out of everyone else's reach.
SLUG_RETIREMENT = timedelta(days=30)


def change_slug(org: Organization, new: str) -> str:
    """Give ``org`` the address ``new``; returns the old slug (caller commits).

    Raises ``UserError`` (field ``slug``) when ``new`` is malformed, reserved,
    or taken (by a live organization, or retired by another less than 30
    days ago). The old slug is retired for ``SLUG_RETIREMENT``: its host
    redirects to the new one and nobody else may take it. Taking back one of
    its own retired slugs ends that slug's retirement.
    """
    new = (new or "").strip().lower()
    problem = slug_problem(new)
    if problem:
        raise UserError(problem, "slug")
    old = org.slug
    if new == old:
        return old
    if slug_taken(new, by_other_than=org.id):
        raise UserError("This address is already taken.", "slug")
    now = utcnow()
    db.session.execute(
        update(RetiredSlug)
        .where(RetiredSlug.slug == new, RetiredSlug.org_id == org.id)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    # The old slug may itself have been retired before (by anyone, now
    # expired, or by us): it moves to this organization for a fresh period.
    db.session.execute(
        insert(RetiredSlug)
        .values(slug=old, org_id=org.id, retired_at=now, expires_at=now + SLUG_RETIREMENT)
        .on_conflict_do_update(
            index_elements=[RetiredSlug.slug],
            set_={"org_id": org.id, "retired_at": now, "expires_at": now + SLUG_RETIREMENT},
        )
    )
    org.slug = new
    return old


def retired_slug_target(slug: str, user_id) -> Organization | None:
    """The live organization that gave up ``slug`` less than 30 days ago,
    when ``user_id`` is one of its active members; else ``None``.

    Only members are told where the organization went: to anyone else the
    old address is as unknown as any other (a new slug is not public).
    """
    if user_id is None:
        return None
    with all_organizations(reason="a retired address: is the visitor a member of its organization"):
        return db.session.execute(
            select(Organization)
            .join(RetiredSlug, RetiredSlug.org_id == Organization.id)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(
                RetiredSlug.slug == slug,
                RetiredSlug.expires_at > func.now(),
                Organization.deleted_at.is_(None),
                Membership.user_id == user_id,
                Membership.status == "active",
            )
        ).scalar_one_or_none()


def available_slug(name: str) -> str:
    """The slug generated from ``name``, suffixed until it is free."""
    base = slugify(name)
    if slug_problem(base):
        base = (base + "-team")[:63]
    slug, n = base, 2
    while slug_problem(slug) or slug_taken(slug):
        suffix = f"-{n}"
        slug = base[: 63 - len(suffix)] + suffix
        n += 1
    return slug


def create_organization(name: str, slug: str | None, owner, plan_key: str = "free") -> Organization:
    """Create an organization with ``owner`` as its Owner. Raises ``UserError``.

    The caller commits; the organization, the membership and the audit event
    land in one transaction.
    """
    name = (name or "").strip()
    if not name:
        raise UserError("Give the organization a name.", "name")
    if len(name) > 120:
        raise UserError("Use at most 120 characters.", "name")
    slug = (slug or "").strip().lower() or available_slug(name)
    problem = slug_problem(slug)
    if problem:
        raise UserError(problem, "slug")
    if slug_taken(slug):
        raise UserError("This address is already taken.", "slug")
    org = Organization(name=name, slug=slug, plan_key=plan_key)
    db.session.add(org)
    db.session.flush()
    with tenant_context(org.id, owner.id):
        db.session.add(Membership(organization_id=org.id, user_id=owner.id, role="owner"))
        db.session.flush()
        audit.record("org.created", target=org, after={"name": name, "slug": slug, "plan": plan_key})
    return org


def my_memberships(user_id) -> list[Membership]:
    """The user's active memberships in live organizations, across organizations.

    Reads across organizations on purpose, as the cross-organization role
    (the runtime role sees one organization's memberships at a time), and
    only the rows of ``user_id``: the caller passes the signed-in user.
    """
    stmt = (
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user_id, Membership.status == "active", Organization.deleted_at.is_(None))
        .order_by(func.lower(Organization.name))
    )
    with all_organizations(reason="the signed-in user's own memberships (organization picker)"):
        rows = db.session.execute(stmt).unique().all()
    for m, o in rows:
        m.org = o
    return [m for m, _ in rows]

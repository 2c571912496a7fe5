"""A believable audit history for the demo organizations, recorded through
``record()`` like any change (so it is signed), then sealed.

Called by the demo loader (``flask --app wsgi demo``); idempotent: an
organization whose log already has events is left alone.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app import audit
from app.audit.models import AuditEvent
from app.auditlog.sealing import seal_all
from app.auth.models import User
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Organization


def _user(email):
    return db.session.execute(select(User).where(func.lower(User.email) == email)).scalar_one_or_none()


def seed_demo_log() -> int:
    """Record the demo history of acme and globex (if their logs are empty) and seal it. Returns events added."""
    added = 0
    orgs = {
        o.slug: o
        for o in db.session.execute(
            select(Organization).where(Organization.slug.in_(["acme", "globex"]), Organization.deleted_at.is_(None))
        ).scalars()
    }
    script = {
        "acme": [
            (
                "owner@acme.test",
                "org.settings_changed",
                ("organization", None, "Acme Corporation"),
                {"name": "ACME Corp"},
                {"name": "Acme Corporation"},
                None,
            ),
            ("owner@acme.test", "member.role_changed", "admin@acme.test", {"role": "Member"}, {"role": "Admin"}, None),
            (
                "admin@acme.test",
                "role.created",
                ("role", None, "Auditor"),
                None,
                {"name": "Auditor", "permissions": ["audit:view", "members:view", "roles:view"]},
                None,
            ),
            (
                "admin@acme.test",
                "member.invited",
                ("invitation", None, "new.hire1@acme.test"),
                None,
                {"email": "new.hire1@acme.test", "role": "Member"},
                None,
            ),
            (
                "admin@acme.test",
                "member.role_changed",
                "manager@acme.test",
                {"role": "Member"},
                {"role": "Manager"},
                None,
            ),
            (
                "manager@acme.test",
                "project.created",
                ("project", None, "Rocket Skates"),
                None,
                {"name": "Rocket Skates", "status": "active"},
                None,
            ),
            (
                "member@acme.test",
                "project.updated",
                ("project", None, "Rocket Skates"),
                {"description": "Fast."},
                {"description": "Rocket Skates: a demo project of Acme Corporation."},
                None,
            ),
            (
                "manager@acme.test",
                "project.archived",
                ("project", None, "Bat-Man Outfit"),
                {"status": "active"},
                {"status": "archived"},
                None,
            ),
            (
                "admin@acme.test",
                "audit.exported",
                ("organization", None, "Acme Corporation"),
                None,
                None,
                {"format": "csv", "filters": {"action": "member.role_changed"}},
            ),
        ],
        "globex": [
            (
                "owner@globex.test",
                "org.settings_changed",
                ("organization", None, "Globex"),
                {"name": "Globex Corporation"},
                {"name": "Globex"},
                None,
            ),
            (
                "owner@globex.test",
                "member.role_changed",
                "consultant@example.test",
                {"role": "Member"},
                {"role": "Admin"},
                None,
            ),
            (
                "consultant@example.test",
                "project.created",
                ("project", None, "Monorail"),
                None,
                {"name": "Monorail", "status": "active"},
                None,
            ),
        ],
    }
    for slug, steps in script.items():
        org = orgs.get(slug)
        if org is None:
            continue
        with tenant_context(org.id):
            if db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one():
                continue
            for actor_email, action, target, before, after, metadata in steps:
                actor = _user(actor_email)
                if actor is None:
                    continue
                if isinstance(target, str):  # a member, by e-mail
                    u = _user(target)
                    target = ("member", str(u.id) if u else None, audit.user_label(u) if u else target)
                elif target[0] == "organization":
                    target = ("organization", str(org.id), org.name)
                audit.record(
                    action,
                    target=target,
                    before=before,
                    after=after,
                    metadata={**(metadata or {}), "source": "demo"},
                    actor=actor,
                )
                added += 1
        db.session.commit()

    seal_all(db.engine)
    return added

"""An organization's life: suspension, soft delete, restore, purge.

* Deleting is a soft delete: the organization disappears for its members at
  once (the host resolver ignores deleted organizations) and its slug is
  free again.
* A super-admin can restore it for ``RESTORE_WINDOW`` (30 days), as long as
  its slug has not been taken meanwhile.
* After that, the purge job removes its data rows and keeps the
  ``organizations`` row (``purged_at``) and its audit log as a tombstone.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, text

from app import audit
from app.errors import UserError
from app.extensions import db
from app.rls import APPEND_ONLY_TABLES, PLATFORM_WRITTEN_TABLES
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Organization
from app.util import utcnow

log = logging.getLogger("tenantry.lifecycle")
RESTORE_WINDOW = timedelta(days=30)


def delete(org: Organization) -> None:
    """Soft-delete ``org`` (caller commits); audited in the organization's own log."""
    if org.deleted_at is not None:
        raise UserError("This organization is already deleted.")
    org.deleted_at = utcnow()
    db.session.flush()  # written by the caller's role, before the scope narrows
    with tenant_context(org.id):
        audit.record(
            "org.deleted", target=org, before={"deleted_at": None}, after={"deleted_at": org.deleted_at.isoformat()}
        )


def restore(org: Organization, reason: str | None = None) -> None:
    """Undo a soft delete within the restore window (caller commits);
    ``reason`` (the platform's) goes into the event."""
    if org.deleted_at is None:
        raise UserError("This organization is not deleted.")
    if org.purged_at is not None or org.deleted_at + RESTORE_WINDOW < utcnow():
        raise UserError("The 30-day restore window has passed; the organization's data is gone.")
    taken = db.session.execute(
        select(func.count())
        .select_from(Organization)
        .where(Organization.slug == org.slug, Organization.deleted_at.is_(None), Organization.id != org.id)
    ).scalar_one()
    if taken:
        raise UserError(f"The address {org.slug} was taken by another organization; change it first.")
    deleted_at = org.deleted_at
    org.deleted_at = None
    db.session.flush()  # written by the caller's role, before the scope narrows
    with tenant_context(org.id):
        audit.record(
            "org.restored",
            target=org,
            before={"deleted_at": deleted_at.isoformat()},
            after={"deleted_at": None},
            metadata={"reason": reason} if reason else None,
        )


def set_status(org: Organization, status: str, reason: str | None = None) -> None:
    """Suspend or reinstate (caller commits). A suspension keeps ``reason``
    (its members read it on the suspension page); reinstating clears it.
    The event carries the reason."""
    if status not in ("active", "suspended"):
        raise UserError("Unknown status.")
    if org.status == status:
        return
    before = org.status
    org.status = status
    org.suspension_reason = reason if status == "suspended" else None
    db.session.flush()  # written by the caller's role, before the scope narrows
    with tenant_context(org.id):
        audit.record(
            "org.suspended" if status == "suspended" else "org.reinstated",
            target=org,
            before={"status": before},
            after={"status": status},
            metadata={"reason": reason} if reason else None,
        )


def _data_tables() -> list[str]:
    """Tenant tables whose rows a purge removes, children before parents.

    Append-only tables (the audit log) are kept as the tombstone; tables
    only the platform writes are removed by the cross-organization role
    (``purge``), which alone may.
    """
    tables = [t for t in reversed(db.metadata.sorted_tables) if "organization_id" in t.c]
    return [t.name for t in tables if t.name not in APPEND_ONLY_TABLES | PLATFORM_WRITTEN_TABLES]


def purge_expired(now=None) -> list[str]:
    """Remove the data of organizations deleted longer ago than the restore window.

    Runs as a job; returns the purged slugs. Each purge is one transaction
    and leaves an ``org.purged`` event in the organization's audit log.
    """
    now = now or utcnow()
    purged = []
    with all_organizations(reason="purge organizations past their restore window"):
        due = (
            db.session.execute(
                select(Organization).where(
                    Organization.deleted_at.is_not(None),
                    Organization.purged_at.is_(None),
                    Organization.deleted_at < now - RESTORE_WINDOW,
                )
            )
            .scalars()
            .all()
        )
        ids = [(o.id, o.slug) for o in due]
    for org_id, slug in ids:
        purge(org_id, now)
        db.session.commit()
        purged.append(slug)
    return purged


def purge(org_id, now=None, metadata: dict | None = None) -> dict[str, int]:
    """Remove a deleted organization's data rows now (caller commits); keep
    its ``organizations`` row (``purged_at``) and audit log as a tombstone,
    with an ``org.purged`` event. Returns the rows removed per table."""
    now = now or utcnow()
    with tenant_context(org_id):
        org = db.session.get(Organization, org_id)
        if org is None or org.deleted_at is None or org.purged_at is not None:
            raise UserError("Only a deleted organization whose data is still kept can be purged.")
        counts = {}
        for table in _data_tables():
            # Scoped by the tenant setting as well as the WHERE clause: RLS
            # makes a wrong id here delete nothing.
            res = db.session.execute(text(f'DELETE FROM "{table}" WHERE organization_id = :o'), {"o": org_id})
            counts[table] = res.rowcount
        with all_organizations(reason="mark a purged organization"):
            for table in sorted(PLATFORM_WRITTEN_TABLES):
                res = db.session.execute(text(f'DELETE FROM "{table}" WHERE organization_id = :o'), {"o": org_id})
                counts[table] = res.rowcount
            # Not a column a request may write (runtime role privileges).
            org.purged_at = now
            org.custom_domain = None
        audit.record("org.purged", target=org, metadata={"rows_removed": counts, **(metadata or {})})
    log.info("purged organization %s: %s", org.slug, counts)
    return counts

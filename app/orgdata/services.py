"""Exports from the settings page: ask, watch, download (the archive's format:
``app.orgdata.archive``).

* ``start_export()`` adds an ``OrgExport`` row, its job and the audit event
  ``org.export_requested`` in the caller's transaction: a rolled-back
  request leaves no job, a committed one always has its job.
* The job ``orgdata.export`` writes the archive, reporting its progress on
  the row in short transactions of their own (so the page sees it while the
  archive is being written), then stores the archive, marks the row ready
  for ``LINK_VALID`` and records ``org.export_completed``. A failure marks
  the row failed with the error (the page says so; a new export can be
  started). Run twice (a worker killed after the work), it finds the row
  ready and does nothing.
* ``download()`` hands out the archive of a ready, unexpired export and
  records ``org.export_downloaded``; an expired or unknown one is refused.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import uuid
from datetime import timedelta

from flask_login import current_user
from sqlalchemy import select, text, update

from app import audit, jobs
from app.database import apply_tenant_settings
from app.errors import UserError
from app.extensions import db
from app.orgdata.archive import export_org
from app.orgdata.models import OrgExport
from app.scoping import current_org_id
from app.util import parse_uuid, utcnow

log = logging.getLogger("tenantry.orgdata")

LINK_VALID = timedelta(hours=24)
# The page's progress bar is fed at most this often (one short UPDATE each).
PROGRESS_EVERY_SECONDS = 0.3
RECENT = 10


def recent() -> list[OrgExport]:
    """The organization's latest exports, newest first."""
    return list(db.session.execute(select(OrgExport).order_by(OrgExport.created_at.desc()).limit(RECENT)).scalars())


def find(export_id) -> OrgExport | None:
    """The current organization's export ``export_id`` (malformed and foreign ids: ``None``)."""
    eid = parse_uuid(export_id)
    return db.session.get(OrgExport, (current_org_id(), eid)) if eid else None


def running() -> OrgExport | None:
    """An export of this organization that has not finished, if any."""
    return db.session.execute(
        select(OrgExport).where(OrgExport.status.in_(("queued", "running"))).limit(1)
    ).scalar_one_or_none()


def start_export() -> OrgExport:
    """Ask for an export (caller commits). Refused while one is still being
    written: one at a time per organization is plenty, and each holds a
    snapshot open while it reads."""
    if running() is not None:
        raise UserError("An export is already being prepared: wait for it to finish.")
    export = OrgExport(
        id=uuid.uuid4(),
        requested_by=current_user.id,
        requested_label=audit.user_label(current_user),
        status="queued",
    )
    db.session.add(export)
    db.session.flush()
    jobs.enqueue(export_task, origin=True, export_id=str(export.id))
    audit.record("org.export_requested", target=("export", str(export.id), "Organization export"))
    return export


def _progress_writer(org_id, export_id):
    """``progress(done, total)`` for ``export_org``: a short transaction of its
    own on the runtime connection, at most every ``PROGRESS_EVERY_SECONDS``."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_SECONDS and done < total:
            return
        last[0] = now
        with db.engine.connect() as conn, conn.begin():
            apply_tenant_settings(conn, org_id)
            conn.execute(
                text(
                    "UPDATE org_exports SET done = :d, total = :t, status = 'running'"
                    " WHERE organization_id = :o AND id = :i AND status IN ('queued', 'running')"
                ),
                {"d": done, "t": total, "o": org_id, "i": export_id},
            )

    return progress


def run_export(export_id: str) -> str:
    """The job's work (in the organization's scope): write the archive, store
    it, mark the export ready (or failed). Returns the export's final status."""
    org_id = current_org_id()
    export = find(export_id)
    if export is None or export.finished:
        return export.status if export is not None else "missing"
    eid = export.id
    db.session.rollback()  # no transaction held open while the archive is written
    try:
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as buf:
            result = export_org(db.engine, org_id, buf, progress=_progress_writer(org_id, eid))
            buf.seek(0)
            data = buf.read()
    except Exception as e:  # the page must say it failed; a new export can be asked for
        log.exception("organization export %s failed", eid)
        db.session.execute(
            update(OrgExport)
            .where(OrgExport.id == eid)
            .values(status="failed", error=f"{type(e).__name__}: {e}"[:2000], finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return "failed"
    now = utcnow()
    db.session.execute(
        update(OrgExport)
        .where(OrgExport.id == eid)
        .values(
            status="ready",
            done=result.rows,
            total=result.rows,
            archive=data,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            finished_at=now,
            expires_at=now + LINK_VALID,
        )
        .execution_options(synchronize_session=False)
    )
    audit.record(
        "org.export_completed",
        target=("export", str(eid), "Organization export"),
        metadata={"rows": result.rows, "files": len(result.files), "bytes": len(data)},
        actor=audit.Actor.system("export job"),
    )
    return "ready"


export_task = jobs.task("orgdata.export", queue_name="default")(run_export)


def download(export: OrgExport) -> bytes:
    """The archive of a ready export still within its 24 hours; records
    ``org.export_downloaded`` (caller commits). Raises ``UserError`` (410)
    when it expired, (409) when it is not ready."""
    if export.status != "ready":
        raise UserError("This export is not ready.", status=409)
    if export.expires_at is None or export.expires_at <= utcnow() or export.archive is None:
        raise UserError("This download link has expired (links last 24 hours): start a new export.", status=410)
    audit.record(
        "org.export_downloaded",
        target=("export", str(export.id), "Organization export"),
        metadata={"bytes": export.size, "sha256": export.sha256},
    )
    return export.archive


def filename(export: OrgExport, slug: str) -> str:
    return f"{slug}-export-{export.created_at:%Y%m%d-%H%M%S}.zip"


def drop_expired_archives() -> int:
    """Drop the bytes of every archive past its 24 hours (rows stay as
    history). Call inside ``all_organizations``; returns how many."""
    return (
        db.session.execute(
            text("UPDATE org_exports SET archive = NULL WHERE archive IS NOT NULL AND expires_at <= now()")
        ).rowcount
        or 0
    )

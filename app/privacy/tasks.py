"""Jobs of the personal data area: build an export, expire exports, erase a deleted account."""

from __future__ import annotations

import json
import logging
import uuid

from app import jobs

log = logging.getLogger("tenantry.privacy")


@jobs.task("privacy.build_export", queue_name="default", retry=jobs.Backoff(base=10, cap=600, max_attempts=8))
def build_export(export_id: str) -> bool:
    """Build a requested personal data export and e-mail its link (origin:
    the request that asked). Run twice, the second run does nothing."""
    from app.privacy.services import build_export as build

    return build(export_id)


@jobs.task(
    "privacy.purge_exports",
    queue_name="default",
    periodic="23 * * * *",
    lock="privacy.purge_exports",
    queueing_lock="privacy.purge_exports",
)
def purge_exports(timestamp: int) -> int:
    """Hourly: delete the archives of exports older than their 24 hours."""
    from app.privacy.services import purge_expired_exports

    return purge_expired_exports()


# No last attempt: an erasure must finish. It waits (5 s, 10 s, ... then
# every 5 minutes) while the sealer's horizon is held back by a long
# transaction somewhere on the server; `jobs status` shows it waiting.
@jobs.task("privacy.erase_account", queue_name="default", retry=jobs.Backoff(base=5, cap=300))
def erase_account(user_id: str) -> int:
    """Erase a deleted account everywhere (see ``erase``); retried while
    events naming the person wait for the sealer. Run twice, the second run
    does nothing."""
    return erase(uuid.UUID(user_id))


def erase(user_id: uuid.UUID) -> int:
    """Remove what is left of a deleted account, in one owner transaction:

    seal first (only sealed events are redacted); redact every audit event
    naming the person (``app.auditlog.erasure``); revoke the API keys they
    created and forget who created them; delete invitations addressed to
    them, the finished jobs that carried their address (sent mails), cached
    API answers and webhook payloads that quote it; delete the ``users``
    row, which takes memberships, sessions, second factors and exports with
    it. Then record ``privacy.account_erased`` (no personal data in it).
    Returns the number of events redacted."""
    from sqlalchemy import text

    from app import audit, crypto
    from app.audit import Actor
    from app.auditlog import erasure, sealing
    from app.database import owner_engine
    from app.extensions import db
    from app.privacy.models import AccountDeletion
    from app.scoping import all_organizations
    from app.util import utcnow

    with all_organizations(reason="erase a deleted account"):
        pending = db.session.get(AccountDeletion, user_id)
        if pending is None or pending.completed_at is not None or not pending.labels_encrypted:
            return 0
        labels = json.loads(crypto.decrypt(pending.labels_encrypted))
    db.session.commit()
    email, name = labels.get("email") or "", labels.get("name") or ""
    sealing.seal_all(db.engine)
    engine = owner_engine()
    try:
        with engine.begin() as conn:
            sealing.bind(conn, None)
            keys = [r[0] for r in conn.execute(text("SELECT id FROM api_keys WHERE created_by = :u"), {"u": user_id})]
            result = erasure.erase_subject(conn, user_id, email, name, keys)
            sealing.bind(conn, None)
            counts = _scrub(conn, user_id, email, name, keys)
            conn.execute(
                text(
                    "UPDATE account_deletions SET completed_at = :now, labels_encrypted = NULL, redacted_events = :n"
                    " WHERE user_id = :u"
                ),
                {"now": utcnow(), "n": result.redacted, "u": user_id},
            )
    finally:
        engine.dispose()
    audit.record(
        "privacy.account_erased",
        target=("user", str(user_id), erasure.DELETED_LABEL),
        actor=Actor.system("account erasure"),
        metadata={
            "events_redacted": result.redacted,
            "organizations": len(result.organizations),
            "events_left_as_evidence": result.refused[:50],
            "rows": counts,
        },
    )
    log.info("erased account %s: %d events redacted, %s", user_id, result.redacted, counts)
    return result.redacted


def _scrub(conn, user_id, email: str, name: str, keys: list) -> dict[str, int]:
    """Every row outside the audit log that holds the person, on the owner connection."""
    from sqlalchemy import text

    from app.auditlog.erasure import DELETED_LABEL as DELETED
    from app.auditlog.erasure import _needles, _replace_in

    def run(sql, **params) -> int:
        return conn.execute(text(sql), {"u": user_id, "email": email.lower(), **params}).rowcount or 0

    counts = {
        "api_keys_revoked": run(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), created_by = NULL, last_used_ip = NULL"
            " WHERE created_by = :u"
        ),
        "support_sessions": run("UPDATE user_sessions SET impersonator_id = NULL WHERE impersonator_id = :u"),
        "projects_unowned": run("UPDATE projects SET owner_id = NULL WHERE owner_id = :u"),
        # Access reviews keep their evidence (who was reviewed, what was
        # decided), under the pseudonym the audit log uses.
        "access_review_items": run(
            "UPDATE access_review_items SET name = :deleted, email = '' WHERE user_id = :u", deleted=DELETED
        ),
        "access_review_decisions": run(
            "UPDATE access_review_items SET decided_by_label = :deleted WHERE decided_by = :u", deleted=DELETED
        ),
        "access_review_reviewers": run("DELETE FROM access_review_reviewers WHERE user_id = :u"),
        "invitations": run("DELETE FROM invitations WHERE lower(email) = :email"),
        "cached_api_answers": run("DELETE FROM api_idempotency WHERE strpos(lower(body), :email) > 0") if email else 0,
        "finished_jobs": run(
            "DELETE FROM procrastinate_jobs j WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')"
            " AND (strpos(lower(j.args::text), :email) > 0 OR strpos(j.args::text, CAST(:u AS text)) > 0)"
            " AND NOT EXISTS (SELECT 1 FROM procrastinate_periodic_defers d WHERE d.job_id = j.id)"
        ),
    }
    needles = _needles(email, name)
    payloads = 0
    if email:
        for row in conn.execute(
            text(
                "SELECT organization_id, id, payload FROM webhook_deliveries WHERE strpos(lower(payload), :email) > 0"
            ),
            {"email": email.lower()},
        ).all():
            conn.execute(
                text("UPDATE webhook_deliveries SET payload = :p WHERE organization_id = :o AND id = :i"),
                {"p": _replace_in(row.payload, needles, False), "o": row.organization_id, "i": row.id},
            )
            payloads += 1
    counts["webhook_payloads"] = payloads
    counts["users"] = run("DELETE FROM users WHERE id = :u")
    return counts

"""Services of the personal data area: exports and account deletion (see the package docstring)."""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, text, update

from app import audit, crypto, jobs
from app.audit import Actor
from app.auth import factors
from app.auth import services as auth_services
from app.auth.models import User, UserSession
from app.errors import UserError
from app.extensions import db
from app.mail import queue_mail
from app.privacy.models import AccountDeletion, PersonalExport
from app.scoping import all_organizations
from app.tenancy.models import Membership, Organization
from app.util import utcnow
from app.web.hosts import apex_url

log = logging.getLogger("tenantry.privacy")

EXPORT_HOURS = 24
EXPORT_SALT = "tenantry/personal-export/v1"


# ----------------------------------------------------------------------------- export
def latest_export(user) -> PersonalExport | None:
    """The person's most recent export request (what the page shows)."""
    return (
        db.session.execute(
            select(PersonalExport).where(PersonalExport.user_id == user.id).order_by(PersonalExport.requested_at.desc())
        )
        .scalars()
        .first()
    )


def request_export(user) -> PersonalExport:
    """Ask for an export: one row, its job enqueued in this transaction, audited.

    Refused (409) while an earlier request is still being built, so a double
    click builds one archive."""
    auth_services.refuse_in_support_session()
    last = latest_export(user)
    if last is not None and last.status == "pending":
        raise UserError("Your export is already being prepared: we e-mail you when it is ready.", None, status=409)
    export = PersonalExport(id=uuid.uuid4(), user_id=user.id, status="pending")
    db.session.add(export)
    db.session.flush()
    from app.privacy.tasks import build_export

    jobs.enqueue(build_export, origin=True, export_id=str(export.id))
    audit.record("privacy.export_requested", target=user, metadata={"export_id": str(export.id)})
    return export


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=EXPORT_SALT)


def download_token(export: PersonalExport) -> str:
    """A link token naming the export and its owner, signed with the app's secret."""
    return _serializer().dumps({"x": str(export.id), "u": str(export.user_id)})


class LinkRefused(UserError):
    """A download link that cannot be honoured: ``status`` says why (404, 403, 410)."""


def _rows(sql: str, **params) -> list[dict]:
    return [dict(r._mapping) for r in db.session.execute(text(sql), params)]


def export_files(user_id) -> dict[str, object]:
    """Everything Tenantry holds about a person, file name → JSON value.

    Read across organizations on purpose (the person's rows in each of them),
    as the cross-organization role. Secrets and their hashes (password, TOTP
    secret, recovery codes, API key and invitation token hashes) are left out."""
    uid = str(user_id)
    with all_organizations(reason="a person's export of their own data"):
        profile = _rows(
            "SELECT id, email, name, email_verified_at, created_at, password_changed_at, is_superadmin,"
            " (password_hash IS NOT NULL) AS has_password FROM users WHERE id = :u",
            u=uid,
        )
        email = profile[0]["email"] if profile else ""
        files = {
            "profile.json": profile[0] if profile else {},
            "memberships.json": _rows(
                "SELECT o.slug AS organization, o.name AS organization_name, m.role, m.custom_role_id, m.status,"
                " to_jsonb(m) - 'search_name' - 'search_email' AS membership"
                " FROM memberships m JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = :u"
                " ORDER BY o.slug",
                u=uid,
            ),
            "sessions.json": _rows(
                "SELECT id, created_at, last_seen_at, host(ip) AS ip, user_agent, revoked_at,"
                " (impersonator_id IS NOT NULL) AS support_session FROM user_sessions WHERE user_id = :u"
                " ORDER BY created_at",
                u=uid,
            ),
            "second_factors.json": {
                "authenticator_apps": _rows(
                    "SELECT id, created_at, confirmed_at, removed_at FROM totp_factors WHERE user_id = :u"
                    " ORDER BY created_at",
                    u=uid,
                ),
                "recovery_codes": _rows(
                    "SELECT created_at, used_at, revoked_at FROM recovery_codes WHERE user_id = :u ORDER BY created_at",
                    u=uid,
                ),
            },
            "audit_events.json": _rows(
                "SELECT o.slug AS organization, e.id, e.occurred_at, e.actor_type, e.actor_id, e.actor_label,"
                " e.action, e.target_type, e.target_id, e.target_label, e.changes, e.metadata, host(e.ip) AS ip,"
                " e.user_agent, e.request_id FROM audit_events e JOIN organizations o ON o.id = e.organization_id"
                " WHERE e.actor_id = :u OR (e.target_type IN ('user', 'member') AND e.target_id = :us)"
                " ORDER BY e.id",
                u=uid,
                us=uid,
            ),
            "invitations.json": _rows(
                "SELECT o.slug AS organization, i.id, i.email, i.role, i.message, i.created_at, i.expires_at,"
                " i.accepted_at, i.revoked_at, (i.invited_by = :u) AS sent_by_you, (i.accepted_by = :u) AS accepted_by_you"
                " FROM invitations i JOIN organizations o ON o.id = i.organization_id"
                " WHERE i.invited_by = :u OR i.accepted_by = :u OR lower(i.email) = lower(:email) ORDER BY i.created_at",
                u=uid,
                email=email,
            ),
            "api_keys.json": _rows(
                "SELECT o.slug AS organization, k.id, k.name, k.key_id AS prefix, k.scopes, k.created_at,"
                " k.expires_at, k.revoked_at, k.last_used_at, k.last_used_ip FROM api_keys k"
                " JOIN organizations o ON o.id = k.organization_id WHERE k.created_by = :u ORDER BY k.created_at",
                u=uid,
            ),
        }
    return files


def build_archive(user_id) -> bytes:
    """The ZIP: one JSON file per kind of data and a ``README.json`` saying what each holds."""
    files = export_files(user_id)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        counts = {}
        for name, value in files.items():
            counts[name] = len(value) if isinstance(value, list) else 1
            z.writestr(name, json.dumps(value, default=str, indent=2, ensure_ascii=False))
        z.writestr(
            "README.json",
            json.dumps(
                {
                    "what": "Everything Tenantry holds about you, as of the time below.",
                    "generated_at": utcnow().isoformat(),
                    "files": counts,
                    "left_out": "secrets and their hashes: password, authenticator secret, recovery codes,"
                    " API key and invitation tokens",
                },
                indent=2,
            ),
        )
    return buf.getvalue()


def build_export(export_id: str) -> bool:
    """Build one requested export, e-mail its link and audit it (the job's
    work; run again, it does nothing more). False when there is nothing to do."""
    with all_organizations(reason="build a person's export of their own data"):
        export = db.session.get(PersonalExport, uuid.UUID(export_id))
        if export is None or export.status != "pending":
            return False
        user = db.session.get(User, export.user_id)
        archive = build_archive(export.user_id)
        now = utcnow()
        export.archive = archive
        export.size_bytes = len(archive)
        export.status = "ready"
        export.ready_at = now
        export.expires_at = now + timedelta(hours=EXPORT_HOURS)
    link = apex_url(url_for("privacy.download", token=download_token(export)))
    queue_mail(user.email, "Your Tenantry data export is ready", "personal_export", user=user, link=link, hours=24)
    audit.record(
        "privacy.export_ready",
        target=user,
        actor=Actor.system("personal data export"),
        metadata={"export_id": export_id, "size_bytes": len(archive), "expires_at": export.expires_at},
    )
    return True


def open_download(token: str, user) -> PersonalExport:
    """The export a download link names, if ``user`` may have it now.

    Refused with ``LinkRefused``: a link that is not ours (404), that
    belongs to another account (403), or older than 24 hours or whose
    archive was deleted (410). Refusals of a genuine link are audited."""
    try:
        data = _serializer().loads(token, max_age=EXPORT_HOURS * 3600)
    except SignatureExpired as e:
        data = e.payload if isinstance(e.payload, dict) else {}
        audit.record("privacy.export_refused", metadata={"export_id": data.get("x"), "reason": "expired"})
        raise LinkRefused(
            "This download link has expired: links work for 24 hours. Ask for a new export below.", None, status=410
        ) from None
    except (BadSignature, TypeError, ValueError):
        raise LinkRefused("This download link is not valid.", None, status=404) from None
    if not isinstance(data, dict) or "x" not in data or "u" not in data:
        raise LinkRefused("This download link is not valid.", None, status=404)
    if data["u"] != str(user.id):
        audit.record("privacy.export_refused", metadata={"export_id": data["x"], "reason": "another account"})
        raise LinkRefused(
            "This download link belongs to another account. Sign in as the person who asked for the export.",
            None,
            status=403,
        )
    export = db.session.get(PersonalExport, uuid.UUID(data["x"]))
    if export is None or export.user_id != user.id:
        raise LinkRefused("This download link is not valid.", None, status=404)
    if export.status != "ready" or export.expires_at is None or export.expires_at <= utcnow():
        audit.record("privacy.export_refused", metadata={"export_id": data["x"], "reason": "expired"})
        raise LinkRefused(
            "This export has expired and was deleted: exports are kept for 24 hours. Ask for a new one below.",
            None,
            status=410,
        )
    return export


def mark_downloaded(export: PersonalExport, user) -> bytes:
    """The archive's bytes; the download is stamped and audited (caller commits)."""
    archive = db.session.execute(select(PersonalExport.archive).where(PersonalExport.id == export.id)).scalar_one()
    export.downloaded_at = utcnow()
    audit.record(
        "privacy.export_downloaded", target=user, metadata={"export_id": str(export.id), "size_bytes": len(archive)}
    )
    return archive


def purge_expired_exports() -> int:
    """Delete the archives of exports past their 24 hours (the periodic job's work); audited per export."""
    with all_organizations(reason="delete expired personal data exports"):
        rows = db.session.execute(
            update(PersonalExport)
            .where(PersonalExport.archive.is_not(None), PersonalExport.expires_at <= utcnow())
            .values(archive=None, status="expired")
            .returning(PersonalExport.id, PersonalExport.user_id),
            execution_options={"synchronize_session": False},
        ).all()
    for export_id, user_id in rows:
        audit.record(
            "privacy.export_expired",
            target=("user", str(user_id), None),
            actor=Actor.system("personal data export"),
            metadata={"export_id": str(export_id)},
        )
    return len(rows)


# ----------------------------------------------------------------------------- deletion
@dataclass(frozen=True)
class Blocker:
    """An organization the person is the only owner of."""

    slug: str
    name: str


def sole_ownerships(user) -> list[Blocker]:
    """The live organizations where ``user`` is the only active owner (read across organizations)."""
    mine = select(Membership.organization_id).where(
        Membership.user_id == user.id, Membership.role == "owner", Membership.status == "active"
    )
    others = (
        select(Membership.organization_id)
        .where(Membership.role == "owner", Membership.status == "active", Membership.user_id != user.id)
        .where(Membership.organization_id.in_(mine))
    )
    stmt = (
        select(Organization.slug, Organization.name)
        .where(Organization.id.in_(mine), Organization.id.not_in(others), Organization.deleted_at.is_(None))
        .order_by(Organization.name)
    )
    with all_organizations(reason="the organizations a person deleting their account is the only owner of"):
        return [Blocker(slug, name) for slug, name in db.session.execute(stmt).all()]


def step_up(user, password: str, code: str | None) -> None:
    """Re-authenticate before deleting the account: the password and, when
    the account has one, a current second factor (``UserError`` beside the
    field). The seam for the auth layer's shared step-up check."""
    auth_services.verify_current_password(user, password or "", "password")
    if factors.has_second_factor(user):
        if not (code or "").strip():
            raise UserError("Enter a code from your authenticator app or a recovery code.", "code")
        factors.verify_second_factor(user, code, "code")


def delete_account(user, confirm_email: str, password: str, code: str | None) -> list[str]:
    """Delete ``user``'s account (the caller commits, then signs them out).

    In this order, nothing changed on a refusal: the typed e-mail must be
    the account's (422 beside ``confirm``); the person must not be the only
    owner of an organization (409, naming them); the password and second
    factor must be right (``step_up``). Then: an event in every organization
    they belonged to and in the platform log; every session revoked; the
    account anonymised at once (no sign-in, no reset link can reach it);
    the erasure job enqueued in this transaction. Returns the slugs of the
    organizations they left."""
    auth_services.refuse_in_support_session()
    if (confirm_email or "").strip().lower() != user.email.lower():
        raise UserError("Type your e-mail address exactly as shown to confirm.", "confirm")
    blockers = sole_ownerships(user)
    if blockers:
        names = ", ".join(b.name for b in blockers)
        raise UserError(
            f"You are the only owner of {names}. Transfer ownership or delete "
            f"{'it' if len(blockers) == 1 else 'them'} first.",
            None,
            status=409,
        )
    step_up(user, password, code)
    memberships = [
        (m.organization_id, m.org.slug)
        for m in _all_memberships(user)  # active or deactivated: they all go
    ]
    for org_id, _slug in memberships:
        audit.record(
            "member.account_deleted", target=("member", str(user.id), audit.user_label(user)), organization_id=org_id
        )
    audit.record("auth.account_deleted", target=user, metadata={"organizations": [s for _, s in memberships]})
    db.session.add(
        AccountDeletion(
            user_id=user.id, labels_encrypted=crypto.encrypt(json.dumps({"email": user.email, "name": user.name}))
        )
    )
    db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    # Anonymised now; the row itself goes with the erasure job (the runtime
    # role may not delete users).
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.name = "Deleted user"
    user.password_hash = None
    from app.privacy.tasks import erase_account

    # Ten seconds on: the sealer (every 5 s) has chained this request's own
    # events by then, and only sealed events are redacted.
    jobs.enqueue(erase_account, at=utcnow() + timedelta(seconds=10), user_id=str(user.id))
    return [s for _, s in memberships]


def _all_memberships(user) -> list[Membership]:
    stmt = (
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user.id)
    )
    with all_organizations(reason="the organizations a person deleting their account leaves"):
        rows = db.session.execute(stmt).unique().all()
    for m, o in rows:
        m.org = o
    return [m for m, _ in rows]

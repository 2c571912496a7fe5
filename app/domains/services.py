"""Verified domains: add, verify by DNS, re-check daily, serve a custom host,
let people at the domain join. Copy of the projects pattern:

* Everything runs inside the current organization (the host hook, or
  ``tenant_context`` in jobs): queries carry no organization filter of
  their own, the ORM hook and RLS add it.
* A bad request raises ``UserError`` naming its form field before anything
  is changed; every change records its audit event in the same transaction;
  nothing here commits (the view or the job does).
* A domain is verified by one organization at most. The partial unique
  index ``uq_domains_verified_name`` is the guarantee (two organizations
  verifying at the same instant: the second INSERT/UPDATE fails, and is
  answered as "already claimed"); before it, the check runs under a
  transaction lock on the name, so the person normally gets the message
  before DNS is even asked.

Reading across organizations happens in two places only, both through
``all_organizations(reason=...)`` and both reading verified domains alone:
"is this name verified elsewhere?" and "which organization verified the
domain of this verified address?" (auto-join).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import audit, hooks
from app.audit.models import AuditEvent
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.domains import dns, names
from app.domains.models import AUTO_JOIN_MODES, Domain
from app.errors import UserError
from app.extensions import db
from app.mail import queue_mail
from app.members.memberships import seats
from app.permissions import SYSTEM_ROLES
from app.scoping import all_organizations, current_org_id, tenant_context
from app.tenancy import notify
from app.tenancy.entitlements import entitled
from app.tenancy.models import Membership, Organization
from app.util import parse_uuid, utcnow
from app.web import hosts

log = logging.getLogger("tenantry.domains")

# The plan feature verified domains need (``entitled(org, FEATURE)``).
FEATURE = "custom_domains"
# A verified domain whose record has been missing this long is unverified.
GRACE = timedelta(days=7)
# The daily job re-checks a verified domain at most this often.
RECHECK_EVERY = timedelta(hours=20)
# A person asking to join is heard once a day at most.
ASK_AGAIN_AFTER = timedelta(days=1)
# Roles a domain may give: never Owner (ownership is given by a person).
JOIN_ROLES = ("admin", "manager", "member", "viewer")
AUTO_JOIN_LABELS = {
    "off": "Off: people at this domain join only when invited",
    "suggest": "Suggest: people at this domain see the organization and may ask an admin to invite them",
    "auto": "Automatic: people at this domain join with the default role",
}
ALREADY_CLAIMED = "{name} is already verified by another organization. A domain belongs to one organization."


# --------------------------------------------------------------------------- reading
def list_domains() -> list[Domain]:
    """The current organization's domains, verified first, then by name."""
    return list(db.session.execute(select(Domain).order_by((Domain.status != "verified"), Domain.name)).scalars().all())


def find_domain(domain_id) -> Domain | None:
    """The current organization's domain with this id, or ``None`` (malformed
    and another organization's ids alike)."""
    did = parse_uuid(domain_id)
    if did is None:
        return None
    return db.session.execute(select(Domain).where(Domain.id == did)).scalar_one_or_none()


def host_domain(org: Organization, domains: list[Domain]) -> Domain | None:
    """The domain ``org``'s custom host lies under, if it has one."""
    host = org.custom_domain
    if not host:
        return None
    return next((d for d in domains if host == d.name or host.endswith("." + d.name)), None)


def _claimed_elsewhere(name: str) -> bool:
    """True when another organization has verified ``name`` (read across
    organizations: the one fact this organization may learn about them)."""
    me = current_org_id()
    stmt = select(Domain.organization_id).where(Domain.name == name, Domain.status == "verified")
    with all_organizations(reason="domains: is this name verified by another organization?"):
        owners = set(db.session.execute(stmt).scalars().all())
    return bool(owners - {me})


def _lock_name(name: str) -> None:
    # Two organizations claiming one name take turns from here to commit, so
    # the second sees the first's verification (the unique index still holds
    # when they do not go through here).
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('domain:' || :n, 0))"), {"n": name})


def _snapshot(d: Domain) -> dict:
    return {"name": d.name, "status": d.status, "auto_join": d.auto_join, "auto_join_role": d.auto_join_role}


# --------------------------------------------------------------------------- writing
def add_domain(raw_name: str | None) -> Domain:
    """A new pending domain with a fresh verification token. Refused (beside
    ``name``): an invalid name, a free-mail provider's, one this organization
    already added, one another organization has verified."""
    name = names.claimable(raw_name, "name")
    if db.session.execute(select(Domain.id).where(Domain.name == name)).first() is not None:
        raise UserError(f"{name} is already on this page.", "name")
    _lock_name(name)
    if _claimed_elsewhere(name):
        raise UserError(ALREADY_CLAIMED.format(name=name), "name")
    domain = Domain(name=name, token=secrets.token_hex(16), status="pending")
    db.session.add(domain)
    db.session.flush()
    audit.record("org.domain_added", target=_target(domain), after={"name": name, "status": "pending"})
    return domain


def _target(d: Domain) -> tuple[str, str, str]:
    return ("domain", str(d.id), d.name)


def verify_domain(domain: Domain, now: datetime | None = None) -> dns.Check:
    """Look the TXT record up now.

    Found: the domain is verified (or, already verified, renewed: the time
    of the check and of the record's sighting).

    The record missing or with another token: ``CheckFailed`` beside
    ``verify``, *after* recording the check (the caller commits it, then
    answers 422): the time and what was found, and a pending domain turns
    ``failed`` (a verified one stays verified: like the daily re-check, it
    is unverified only once the record has been missing for ``GRACE``);
    audited as ``org.domain_check_failed``. Refused with ``UserError``,
    nothing changed: DNS not answering (the check learnt nothing about the
    record), or another organization verified the domain first.
    """
    now = now or utcnow()
    _lock_name(domain.name)
    lock_for_edit(domain)
    if not domain.is_verified and _claimed_elsewhere(domain.name):
        raise UserError(ALREADY_CLAIMED.format(name=domain.name), "verify")
    result = dns.check(domain.name, domain.token)
    if result.outcome == dns.UNREACHABLE:
        raise UserError(f"Checked at {now:%H:%M} UTC. {result.message}", "verify")
    if not result.found:
        _record_failed_check(domain, result, now)
        raise CheckFailed(f"Checked at {now:%H:%M} UTC. {result.message}", "verify")
    was = domain.status
    domain.last_checked_at = domain.record_seen_at = now
    domain.last_check_error = None
    if not domain.is_verified:
        domain.status, domain.verified_at = "verified", now
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise UserError(ALREADY_CLAIMED.format(name=domain.name), "verify") from None
    if was != "verified":
        audit.record(
            "org.domain_verified",
            target=_target(domain),
            before={"status": was},
            after={"status": "verified"},
            metadata={"record": result.where},
        )
    return result


class CheckFailed(UserError):
    """A manual check that did not find the record: refused (422) like any
    bad input, but the check itself is recorded (``verify_domain``), so the
    caller commits instead of rolling back."""


def _record_failed_check(domain: Domain, result: dns.Check, now: datetime) -> None:
    """Write down a check that found no (or a wrong) record: its time and
    message, ``failed`` for a domain not verified, and the audit event."""
    was = domain.status
    domain.last_checked_at = now
    domain.last_check_error = result.message
    if not domain.is_verified:
        domain.status = "failed"
    db.session.flush()
    audit.record(
        "org.domain_check_failed",
        target=_target(domain),
        before={"status": was},
        after={"status": domain.status},
        metadata={"outcome": result.outcome, "message": result.message, "checked_at": now},
    )


def update_settings(domain: Domain, auto_join: str | None, role: str | None, version=None) -> dict:
    """Set what the verified domain does for people with an address at it.
    Returns ``{field: (before, after)}``; nothing changed, nothing recorded.
    Refused: an unverified domain, an unknown mode (``auto_join``), a role
    that is not one of ``JOIN_ROLES`` (``auto_join_role``)."""
    if auto_join not in AUTO_JOIN_MODES:
        raise UserError("Choose one of the options.", "auto_join")
    if role not in JOIN_ROLES:
        raise UserError("Choose the role people join with (not Owner).", "auto_join_role")
    lock_for_edit(domain, version)
    if not domain.is_verified and auto_join != "off":
        raise UserError("Verify the domain first: only a verified domain lets people join.", "auto_join")
    changes = {}
    for key, value in (("auto_join", auto_join), ("auto_join_role", role)):
        if getattr(domain, key) != value:
            changes[key] = (getattr(domain, key), value)
            setattr(domain, key, value)
    if changes:
        db.session.flush()
        audit.record(
            "org.domain_settings_changed",
            target=_target(domain),
            before={k: b for k, (b, _) in changes.items()},
            after={k: a for k, (_, a) in changes.items()},
        )
    return changes


def set_custom_host(org: Organization, domain: Domain, raw_host: str | None, version=None) -> str:
    """Serve ``org`` on ``raw_host`` (the verified ``domain`` itself or a name
    under it, a CNAME to the apex): from the next request on, that host
    resolves to the organization, with the same host-only cookies and
    sign-in hand-off as its subdomain. One custom host per organization;
    setting another replaces it. Refused beside ``host``."""
    if not domain.is_verified:
        raise UserError("Verify the domain before serving a host on it.", "host")
    host = names.host_under(raw_host, domain.name, "host")
    lock_for_edit(org, version)
    before = org.custom_domain
    if before == host and org.custom_domain_verified_at is not None:
        return host
    org.custom_domain = host
    org.custom_domain_verified_at = domain.verified_at
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise UserError(f"{host} already serves another organization.", "host") from None
    audit.record(
        "org.custom_host_changed",
        target=org,
        before={"custom_host": before},
        after={"custom_host": host},
        metadata={"domain": domain.name},
    )
    return host


def clear_custom_host(org: Organization, reason: str | None = None, actor=None) -> bool:
    """Stop serving ``org`` on its custom host (its subdomain keeps working).
    ``False`` when it had none."""
    before = org.custom_domain
    if before is None:
        return False
    org.custom_domain = None
    org.custom_domain_verified_at = None
    db.session.flush()
    audit.record(
        "org.custom_host_changed",
        target=org,
        before={"custom_host": before},
        after={"custom_host": None},
        metadata={"reason": reason} if reason else None,
        actor=actor,
    )
    return True


def remove_domain(org: Organization, domain: Domain) -> None:
    """Remove the domain; a custom host under it stops serving at once, and
    nobody joins by it any more. The audit event keeps what it was."""
    if host_domain(org, [domain]) is not None:
        clear_custom_host(org, reason=f"domain {domain.name} removed")
    audit.record("org.domain_removed", target=_target(domain), before=_snapshot(domain))
    db.session.delete(domain)
    db.session.flush()


# --------------------------------------------------------------------------- the daily re-check
def recheck(domain: Domain, org: Organization, now: datetime | None = None) -> str:
    """Re-check one verified domain (in its organization's scope): the
    record seen renews it; missing for ``GRACE`` unverifies it, stops its
    custom host and auto-join, and mails who may manage domains. DNS that
    does not answer counts as neither. Returns ``seen``, ``missing``,
    ``unverified`` or ``unreachable``."""
    now = now or utcnow()
    result = dns.check(domain.name, domain.token)
    domain.last_checked_at = now
    if result.found:
        domain.record_seen_at, domain.last_check_error = now, None
        db.session.flush()
        return "seen"
    domain.last_check_error = result.message
    if result.outcome == dns.UNREACHABLE or now - (domain.record_seen_at or domain.verified_at or now) < GRACE:
        db.session.flush()
        return "unreachable" if result.outcome == dns.UNREACHABLE else "missing"
    domain.status, domain.verified_at = "failed", None
    db.session.flush()
    audit.record(
        "org.domain_unverified",
        target=_target(domain),
        before={"status": "verified"},
        after={"status": "failed"},
        metadata={"record_last_seen": domain.record_seen_at, "message": result.message},
        actor="domains",
    )
    if host_domain(org, [domain]) is not None:
        clear_custom_host(org, reason=f"domain {domain.name} unverified", actor="domains")
    _mail_admins(org, domain)
    return "unverified"


def _mail_admins(org: Organization, domain: Domain) -> None:
    """Tell the members who may manage domains, and did not turn this mail off
    (``app.tenancy.notify``: ``domain_unverified``), that ``domain`` was unverified."""
    notify.mail_recipients(
        org,
        "domain_unverified",
        f"{domain.name} is no longer verified for {org.name}",
        "domain_unverified",
        ("domains.show", {"domain_id": domain.id}),
        domain=domain,
        days=GRACE.days,
    )


def recheck_all(now: datetime | None = None) -> dict[str, int]:
    """Re-check every verified domain not checked in ``RECHECK_EVERY``, each
    in its organization's scope; returns how many ended in each outcome."""
    now = now or utcnow()
    with all_organizations(reason="domains: the daily re-check of verified domains"):
        due = db.session.execute(
            select(Domain.organization_id, Domain.id)
            .join(Organization, Organization.id == Domain.organization_id)
            .where(
                Domain.status == "verified",
                Organization.deleted_at.is_(None),
                func.coalesce(Domain.last_checked_at, Domain.verified_at) < now - RECHECK_EVERY,
            )
        ).all()
    counts: dict[str, int] = {}
    for org_id, domain_id in due:
        with tenant_context(org_id):
            domain = db.session.get(Domain, (org_id, domain_id))
            org = db.session.get(Organization, org_id)
            if domain is None or not domain.is_verified:
                continue
            outcome = recheck(domain, org, now)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --------------------------------------------------------------------------- joining by domain
def _verified_domain_of(email: str, mode: str):
    """``(organization_id, domain name, role, organization name)`` of the live, active
    organization that verified ``email``'s domain with auto-join ``mode``
    and is still entitled to verified domains (plan or override), or ``None``."""
    domain = names.email_domain(email)
    if not domain or names.is_freemail(domain):
        return None
    stmt = (
        select(Domain.organization_id, Domain.name, Domain.auto_join_role, Organization)
        .join(Organization, Organization.id == Domain.organization_id)
        .where(
            Domain.name == domain,
            Domain.status == "verified",
            Domain.auto_join == mode,
            Organization.deleted_at.is_(None),
            Organization.status == "active",
        )
        .options(joinedload(Organization.plan))
    )
    with all_organizations(reason="auto-join: the organization that verified this verified address's domain"):
        row = db.session.execute(stmt).first()
        if row is None or not entitled(row.Organization, FEATURE):
            return None
        return row.organization_id, row.name, row.auto_join_role, row.Organization.name


def join_by_domain(user: User) -> Membership | None:
    """Let a user with a verified address at an organization's verified
    domain (auto-join: automatic) join it with the domain's role.

    Nothing happens for an unverified address, a disabled account, someone
    already in the organization (whatever their role or status: a
    deactivated member stays deactivated), or when no seat is left on the
    plan (the seat lock of invitations is held; ``member.auto_join_refused``
    is recorded for the admins to see). Records ``member.joined`` with
    ``via: domain``. Returns the new membership or ``None``.
    """
    if not user.is_verified or user.disabled_at is not None:
        return None
    found = _verified_domain_of(user.email, "auto")
    if found is None:
        return None
    org_id, name, role, _ = found
    with tenant_context(org_id, user.id):
        if db.session.execute(select(Membership.user_id).where(Membership.user_id == user.id)).first():
            return None
        org = db.session.get(Organization, org_id)
        problem = seats(org, lock=True).refusal(1)
        if problem:
            audit.record(
                "member.auto_join_refused",
                target=user,
                metadata={"domain": name, "email": user.email, "reason": problem},
                actor=user,
            )
            return None
        m = Membership(user_id=user.id, role=role)
        db.session.add(m)
        db.session.flush()
        audit.record(
            "member.joined",
            target=user,
            after={"role": SYSTEM_ROLES[role].name, "role_key": role},
            metadata={"via": "domain", "domain": name, "email": user.email},
            actor=user,
        )
        return m


@dataclass(frozen=True)
class Suggestion:
    """An organization a signed-in user may ask to join: it verified their address's domain."""

    organization_id: uuid.UUID
    organization_name: str
    domain: str


def suggestion_for(user: User) -> Suggestion | None:
    """The organization that verified ``user``'s (verified) address's domain
    in "suggest" mode, unless they are already in it (in any state)."""
    if not user.is_verified or user.disabled_at is not None:
        return None
    found = _verified_domain_of(user.email, "suggest")
    if found is None:
        return None
    org_id, name, _, org_name = found
    with all_organizations(reason="suggest: is the user already in the organization at their domain"):
        member = db.session.execute(
            select(Membership.user_id).where(Membership.organization_id == org_id, Membership.user_id == user.id)
        ).first()
    return None if member else Suggestion(org_id, org_name, name)


def request_to_join(user: User, org_id) -> bool:
    """Ask the organization suggested to ``user`` to let them in: recorded
    (``member.join_requested``) and mailed to every member who may invite,
    with a link to the invitation form. Anything else (no such suggestion,
    another organization's id) raises ``UserError`` 404. Asking again
    within a day records and sends nothing; returns ``False`` then."""
    suggestion = suggestion_for(user)
    if suggestion is None or str(suggestion.organization_id) != str(org_id):
        raise UserError("There is no such suggestion.", status=404)
    with tenant_context(suggestion.organization_id, user.id):
        asked = db.session.execute(
            select(AuditEvent.id).where(
                AuditEvent.action == "member.join_requested",
                AuditEvent.target_id == str(user.id),
                AuditEvent.occurred_at > utcnow() - ASK_AGAIN_AFTER,
            )
        ).first()
        if asked:
            return False
        audit.record(
            "member.join_requested",
            target=user,
            metadata={"domain": suggestion.domain, "email": user.email},
            actor=user,
        )
        org = db.session.get(Organization, suggestion.organization_id)
        members = db.session.execute(select(Membership).where(Membership.status == "active")).unique().scalars().all()
        with current_app.test_request_context(base_url=hosts.apex_url("/")):
            link = hosts.org_url(org, url_for("members.new"))
        for m in members:
            if "members:invite" in m.permissions and m.user is not None:
                queue_mail(
                    m.user.email,
                    f"{user.name} asks to join {org.name}",
                    "domain_join_request",
                    user=m.user,
                    asker=user,
                    org=org,
                    domain=suggestion.domain,
                    link=link,
                )
    return True


@hooks.user_email_verified.connect
def _join_when_verified(user: User) -> None:
    join_by_domain(user)


@hooks.user_signed_in.connect
def _join_when_signed_in(user: User) -> None:
    join_by_domain(user)

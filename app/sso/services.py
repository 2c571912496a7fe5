"""Single sign-on: connections, their test, home-realm discovery, the shared
sign-in completion (JIT provisioning, role from groups), SSO enforcement.

What every function here guarantees (as in the other areas):

* Connection functions run inside the current organization (ORM filter and
  RLS); a malformed or foreign id is "not found".
* Bad input raises ``UserError`` beside its field; nothing has changed then.
* Every change records one audit event in the same transaction; nothing
  here commits (the view does).

**Roles of SSO members.** A first SSO sign-in creates the membership with the
role the person's groups map to (``app.rbac.group_roles``, source ``sso``),
else the connection's default role; its ``role_source`` is ``sso``. At each
later sign-in a member whose role is still managed by SSO gets the mapped
role of the groups sent then (none mapped: unchanged; an Owner: never
changed). **A manual change by an admin** (members page, API) is allowed and
makes the source ``manual``: from then on SSO sign-ins leave that member's
role alone, so an emergency demotion is not undone by the next sign-in. (The
member's SCIM group changes may still re-map it: ``app.scim`` decides.)

Sign-ins run on the apex, where no organization is in scope: they name the
organization they act for with ``tenant_context`` (never a cross-organization
read of another tenant's rows), and look a connection or a domain up across
organizations only through ``all_organizations(reason=...)``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import audit, crypto
from app.auth import services as auth
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.domains import names
from app.domains.models import Domain
from app.errors import UserError
from app.extensions import db
from app.mail import queue_mail
from app.members.memberships import seats
from app.permissions import ROLE_ORDER
from app.rbac import group_roles
from app.rbac import services as rbac
from app.scoping import all_organizations, tenant_context
from app.sso import registry
from app.sso.models import NAME_MAX, PROTOCOLS, PROVIDERS, SsoConnection, SsoIdentity, SsoSetupLink
from app.tenancy import entitlements
from app.tenancy import policy as security_policy
from app.tenancy.models import Membership, Organization
from app.util import parse_uuid, utcnow
from app.web import hosts

FEATURE = "sso"
SETUP_LINK_TTL = timedelta(hours=24)
# Roles a connection may give by default (never Owner: ownership is given by an Owner).
DEFAULT_ROLES = tuple(k for k in ROLE_ORDER if k != "owner")


def _target(conn: SsoConnection) -> tuple[str, str, str]:
    return ("sso_connection", str(conn.id), conn.name)


# --------------------------------------------------------------------------- reading
def list_connections() -> list[SsoConnection]:
    """The current organization's connections, enabled first, then by name."""
    order = func.array_position(["enabled", "tested", "draft", "disabled"], SsoConnection.status)
    return list(db.session.execute(select(SsoConnection).order_by(order, func.lower(SsoConnection.name))).scalars())


def find_connection(connection_id) -> SsoConnection | None:
    """The current organization's connection with this id, or ``None`` (malformed or foreign ids too)."""
    cid = parse_uuid(connection_id)
    if cid is None:
        return None
    return db.session.execute(select(SsoConnection).where(SsoConnection.id == cid)).scalar_one_or_none()


def enabled_connection() -> SsoConnection | None:
    """The current organization's enabled connection (at most one), or ``None``."""
    return db.session.execute(select(SsoConnection).where(SsoConnection.status == "enabled")).scalar_one_or_none()


def secret_of(conn: SsoConnection) -> str | None:
    """The connection's decrypted secret (OIDC client secret), or ``None``."""
    if not conn.secret_encrypted:
        return None
    return crypto.decrypt(conn.secret_encrypted).decode()


# --------------------------------------------------------------------------- writing
def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give the connection a name, like “Okta” or “Company login”.", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    return name


def create_connection(protocol: str | None, provider: str | None, name: str | None) -> SsoConnection:
    """A new draft connection (nothing configured yet). Refused beside its
    field: an unknown protocol (or one not installed), provider, or no name.
    Records ``sso.connection_created``."""
    if protocol not in PROTOCOLS or registry.get(protocol) is None:
        raise UserError("Choose OpenID Connect or SAML.", "protocol")
    if provider not in PROVIDERS:
        raise UserError("Choose your identity provider.", "provider")
    conn = SsoConnection(
        protocol=protocol,
        provider=provider,
        name=_clean_name(name),
        status="draft",
        config={"default_role": "member"},
    )
    db.session.add(conn)
    db.session.flush()
    audit.record(
        "sso.connection_created",
        target=_target(conn),
        after={"name": conn.name, "protocol": protocol, "provider": provider},
    )
    return conn


def update_connection(conn: SsoConnection, data: dict, version=None) -> dict:
    """Save the name, the default role and the protocol's settings typed in
    the portal. ``data`` holds the form's values by field name; an empty
    secret keeps the stored one. The protocol validates its own fields
    (``UserError`` beside the field). A change to a tested connection
    makes it a draft again (the test was of other settings); an enabled
    one stays enabled. Returns the audited diff (empty: nothing changed).
    Raises ``StaleEdit`` (409) for an edit made from an older version."""
    lock_for_edit(conn, version)
    proto = registry.get(conn.protocol)
    name = _clean_name(data.get("name"))
    default_role = data.get("default_role") or "member"
    if default_role not in DEFAULT_ROLES:
        raise UserError("Choose the role new members get.", "default_role")
    config, secret = proto.clean_config(conn, data)
    config["default_role"] = default_role
    before = {"name": conn.name, **(conn.config or {})}
    after = {"name": name, **config}
    if secret is not None:
        # Masked by the audit log (a secret field): the event says it changed, never what to.
        before["client_secret"], after["client_secret"] = conn.secret_encrypted, secret
    changes = audit.diff(before, after)
    if not changes:
        return {}
    conn.name = name
    conn.config = config
    if secret is not None:
        conn.secret_encrypted = crypto.encrypt(secret)
    if conn.status == "tested":
        conn.status = "draft"
    db.session.flush()
    audit.record("sso.connection_changed", target=_target(conn), before=before, after=after)
    return changes


def record_test(conn: SsoConnection, identity: registry.Identity | None, error: str | None = None) -> None:
    """Keep what a connection test received (the identity's attributes and
    groups, or why it failed) for the portal to show. A successful test
    moves a draft to "tested" (it may now be enabled). Records
    ``sso.connection_tested`` with the outcome."""
    ok = identity is not None
    conn.last_tested_at = utcnow()
    conn.last_test = {"ok": True, "identity": identity.as_dict()} if ok else {"ok": False, "error": error}
    if ok and conn.status == "draft":
        conn.status = "tested"
    db.session.flush()
    audit.record(
        "sso.connection_tested",
        target=_target(conn),
        metadata={"ok": ok, "error": error, "email": identity.email if ok else None},
    )


def enable_connection(conn: SsoConnection, version=None) -> None:
    """Turn a tested connection on: people can now sign in through it. Refused
    (``UserError``) before a successful test, or while another connection is
    enabled (one per organization). Records ``sso.connection_enabled``."""
    lock_for_edit(conn, version)
    if conn.status == "enabled":
        return
    if not (conn.last_test or {}).get("ok"):
        raise UserError("Test the connection first: it can be enabled once a test sign-in succeeded.", "enable")
    other = enabled_connection()
    if other is not None and other.id != conn.id:
        raise UserError(f"Disable “{other.name}” first: one connection at a time signs people in.", "enable")
    before = conn.status
    conn.status = "enabled"
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise UserError("Another connection was enabled meanwhile; disable it first.", "enable") from None
    audit.record("sso.connection_enabled", target=_target(conn), before={"status": before}, after={"status": "enabled"})


def disable_connection(conn: SsoConnection, version=None) -> None:
    """Turn a connection off: nobody signs in through it (password sign-in
    applies again, unless the policy still names SSO only). Records
    ``sso.connection_disabled``."""
    lock_for_edit(conn, version)
    if conn.status == "disabled":
        return
    before = conn.status
    conn.status = "disabled"
    db.session.flush()
    audit.record(
        "sso.connection_disabled", target=_target(conn), before={"status": before}, after={"status": "disabled"}
    )


# --------------------------------------------------------------------------- setup links
def _hash(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def issue_setup_link(label: str | None, issuer: User) -> tuple[SsoSetupLink, str]:
    """A setup link for an IT contact without an account: valid 24 hours,
    opened once. Returns the row and the token (shown once; only its hash is
    stored). Records ``sso.setup_link_issued``."""
    label = " ".join((label or "").split())
    if not label:
        raise UserError("Say who the link is for (a name or an e-mail address).", "label")
    if len(label) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "label")
    token = secrets.token_urlsafe(32)
    link = SsoSetupLink(
        token_hash=_hash(token), label=label, created_by=issuer.id, expires_at=utcnow() + SETUP_LINK_TTL
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "sso.setup_link_issued",
        target=("sso_setup_link", str(link.id), label),
        after={"label": label, "expires_at": link.expires_at.isoformat()},
    )
    return link, token


def list_setup_links() -> list[SsoSetupLink]:
    """The organization's setup links, newest first."""
    return list(db.session.execute(select(SsoSetupLink).order_by(SsoSetupLink.created_at.desc())).scalars())


def find_setup_link(link_id) -> SsoSetupLink | None:
    lid = parse_uuid(link_id)
    if lid is None:
        return None
    return db.session.execute(select(SsoSetupLink).where(SsoSetupLink.id == lid)).scalar_one_or_none()


def revoke_setup_link(link: SsoSetupLink) -> bool:
    """Revoke a link (the browser that opened it loses access at once). ``False``: already revoked."""
    if link.revoked_at is not None:
        return False
    link.revoked_at = utcnow()
    db.session.flush()
    audit.record("sso.setup_link_revoked", target=("sso_setup_link", str(link.id), link.label))
    return True


def link_is_live(link: SsoSetupLink | None) -> bool:
    return link is not None and link.revoked_at is None and link.expires_at > utcnow()


def open_setup_link(token: str) -> SsoSetupLink | None:
    """Use a setup link of the current organization: the first opening marks
    it used (records ``sso.setup_link_used``) and returns it; an unknown,
    expired, revoked or already used link returns ``None``. Locked, so two
    browsers opening it at once cannot both get it."""
    link = db.session.execute(
        select(SsoSetupLink).where(SsoSetupLink.token_hash == _hash(token)).with_for_update()
    ).scalar_one_or_none()
    if not link_is_live(link) or link.used_at is not None:
        return None
    link.used_at = utcnow()
    db.session.flush()
    audit.record("sso.setup_link_used", target=("sso_setup_link", str(link.id), link.label), actor=None)
    return link


# --------------------------------------------------------------------------- home-realm discovery
@dataclass(frozen=True)
class Realm:
    """Where an address signs in: its organization and that organization's enabled connection."""

    organization_id: uuid.UUID
    connection_id: uuid.UUID
    organization_name: str


def realm_for_email(email: str | None) -> Realm | None:
    """The organization that verified ``email``'s domain and signs in
    through an enabled SSO connection (live, active, entitled to ``sso``),
    or ``None``: the address signs in with a password."""
    domain = names.email_domain(email or "")
    if not domain:
        return None
    with all_organizations(reason="home-realm discovery: the SSO connection of a verified e-mail domain"):
        row = db.session.execute(
            select(Organization, SsoConnection.id.label("connection_id"))
            .join(Domain, Domain.organization_id == Organization.id)
            .join(SsoConnection, SsoConnection.organization_id == Organization.id)
            .where(
                Domain.name == domain,
                Domain.status == "verified",
                SsoConnection.status == "enabled",
                Organization.deleted_at.is_(None),
                Organization.status == "active",
            )
            .options(joinedload(Organization.plan))
        ).first()
        if row is None or not entitlements.entitled(row.Organization, FEATURE):
            return None
        return Realm(row.Organization.id, row.connection_id, row.Organization.name)


def realm_for_org(org: Organization) -> Realm | None:
    """``org``'s own SSO realm (its enabled connection), or ``None``."""
    if not entitlements.entitled(org, FEATURE):
        return None
    with tenant_context(org.id):
        conn = enabled_connection()
    return Realm(org.id, conn.id, org.name) if conn else None


def organization_for_flow(org_id) -> Organization | None:
    """The live, active organization with this id (read across organizations:
    the apex has none in scope), or ``None``."""
    if org_id is None:
        return None
    with all_organizations(reason="SSO sign-in: the organization the sign-in names"):
        org = db.session.execute(
            select(Organization).where(Organization.id == org_id).options(joinedload(Organization.plan))
        ).scalar_one_or_none()
    if org is None or org.deleted_at is not None or org.status != "active":
        return None
    return org


def load_for_flow(org_id, connection_id) -> tuple[Organization, SsoConnection] | None:
    """The organization and connection a sign-in or test names (from the
    flow's signed state), read in that organization's scope; ``None`` when
    either is gone or the organization is not active."""
    org = organization_for_flow(org_id)
    if org is None or connection_id is None:
        return None
    with tenant_context(org.id):
        conn = db.session.execute(select(SsoConnection).where(SsoConnection.id == connection_id)).scalar_one_or_none()
    return (org, conn) if conn is not None else None


# --------------------------------------------------------------------------- signing in
class SignInRefused(UserError):
    """An SSO sign-in the organization's rules refuse (the person sees ``message``)."""

    status = 403


def refuse(org: Organization, conn: SsoConnection | None, reason: str, email: str | None = None) -> None:
    """Record a refused SSO sign-in in the organization's log (the view commits it)."""
    with tenant_context(org.id):
        audit.record(
            "sso.sign_in_refused",
            target=_target(conn) if conn is not None else None,
            metadata={"reason": reason, **({"email": email} if email else {})},
            actor=None,
        )


def _verified_domains(org: Organization) -> set[str]:
    return set(db.session.execute(select(Domain.name).where(Domain.status == "verified")).scalars())


def _role_for(org: Organization, conn: SsoConnection, identity: registry.Identity) -> rbac.RoleInfo:
    """The role the identity's groups map to for SSO (``roles_for_groups``:
    most permissions wins, never Owner), else the connection's default role."""
    mapped = group_roles.roles_for_groups(org, "sso", identity.groups)
    if mapped is not None:
        return mapped
    default = (conn.config or {}).get("default_role") or "member"
    return rbac.get_role(default if default in DEFAULT_ROLES else "member")


def complete_sso_sign_in(org: Organization, connection: SsoConnection, identity: registry.Identity):
    """Sign the person ``identity`` names into ``org`` (the one sign-in every
    protocol ends in); returns the new session. Guarantees:

    * the connection is enabled and the organization entitled to SSO;
    * the user is found by the connection's subject (``sso_identities``);
      the first time, by the asserted e-mail **only when its domain is
      verified by this organization** (an identity provider may speak for
      its own domains, never take over an account elsewhere); else created
      (just-in-time), verified, without a password;
    * name and e-mail refreshed from the provider at each sign-in (the
      e-mail only to another address at a verified domain, not taken);
    * a membership is created with the mapped or default role (seat limit
      held) and ``role_source`` ``sso``; a deactivated member is refused;
    * a session starts (``auth.login``) and ``sso.sign_in`` is recorded
      (``sso.user_provisioned`` for a first sign-in).

    Refusals raise ``SignInRefused`` (after recording ``sso.sign_in_refused``).
    """
    email = (identity.email or "").strip().lower()

    def no(reason: str, message: str):
        refuse(org, connection, reason, email or None)
        raise SignInRefused(message)

    if connection.status != "enabled":
        no("connection not enabled", "Single sign-on is not enabled for this organization.")
    if not entitlements.entitled(org, FEATURE):
        no("plan without SSO", "This organization's plan does not include single sign-on.")
    if not identity.subject:
        no("no subject", "Your identity provider did not say who you are.")
    with tenant_context(org.id):
        link = db.session.execute(
            select(SsoIdentity).where(
                SsoIdentity.connection_id == connection.id, SsoIdentity.subject == identity.subject
            )
        ).scalar_one_or_none()
        verified = _verified_domains(org)
        domain = names.email_domain(email) or ""
        user = db.session.get(User, link.user_id) if link is not None else None
        created_user = False
        if user is None:
            if domain not in verified:
                no(
                    f"e-mail domain {domain or '(none)'} not verified",
                    "Your e-mail address is not at a domain this organization has verified, so it cannot sign you in.",
                )
            user = auth.find_user(email)
            if user is None:
                try:
                    user = auth.create_user(email, identity.name or email.split("@")[0], None, verified=True)
                except ValueError:
                    no("invalid e-mail", "Your identity provider sent an e-mail address we cannot use.")
                created_user = True
                audit.record(
                    "auth.signup", target=user, actor=user, metadata={"via": "sso", "connection": connection.name}
                )
            db.session.add(SsoIdentity(connection_id=connection.id, subject=identity.subject, user_id=user.id))
            db.session.flush()
            link = db.session.execute(
                select(SsoIdentity).where(
                    SsoIdentity.connection_id == connection.id, SsoIdentity.subject == identity.subject
                )
            ).scalar_one()
        if user.disabled_at is not None:
            no("account disabled", "This account has been disabled. Contact support.")
        _refresh(user, identity, email, domain, verified)
        link.last_sign_in_at = utcnow()
        m = db.session.execute(select(Membership).where(Membership.user_id == user.id)).unique().scalar_one_or_none()
        role = _role_for(org, connection, identity)
        provisioned = False
        if m is None:
            problem = seats(org, lock=True).refusal(1)
            if problem:
                no("no seat left", f"{org.name} has no seat left for you: {problem}")
            m = Membership(
                user_id=user.id,
                role=role.key if role.system else None,
                custom_role_id=None if role.system else role.role.id,
                role_source="sso",
            )
            db.session.add(m)
            db.session.flush()
            provisioned = True
            audit.record(
                "member.joined",
                target=user,
                after={"role": role.name, "role_key": role.key, "role_source": "sso"},
                metadata={"via": "sso", "connection": connection.name, "email": user.email},
                actor=user,
            )
        elif m.status != "active":
            no("membership deactivated", f"Your membership of {org.name} is deactivated. Ask an admin.")
        elif m.role_source == "sso":
            # Managed by SSO: the groups sent now decide (a group no longer
            # mapped leaves the role as it is). A role an admin set by hand
            # (source "manual") is left alone: see the module docstring.
            group_roles.apply_mapped_role(
                m, "sso", group_roles.roles_for_groups(org, "sso", identity.groups), identity.groups
            )
        if provisioned or created_user:
            audit.record(
                "sso.user_provisioned",
                target=user,
                actor=user,
                metadata={"new_account": created_user, "role": role.key, "connection": connection.name},
            )
        rec = auth.log_in(user)
        user.last_org_id = org.id
        audit.record(
            "sso.sign_in",
            target=user,
            actor=user,
            metadata={
                "connection": connection.name,
                "protocol": connection.protocol,
                "subject": identity.subject,
                "groups": list(identity.groups)[:50],
                "session_id": str(rec.id),
            },
        )
        return rec


def _refresh(user: User, identity: registry.Identity, email: str, domain: str, verified: set[str]) -> None:
    """Take the provider's name and e-mail as the account's (e-mail: only an
    address at a domain this organization verified, and not another account's)."""
    name = " ".join((identity.name or "").split())[:120]
    changes_before, changes_after = {}, {}
    if name and name != user.name:
        changes_before["name"], changes_after["name"] = user.name, name
        user.name = name
    if email and email != user.email.lower() and domain in verified and auth.find_user(email) is None:
        changes_before["email"], changes_after["email"] = user.email, email
        user.email = email
        user.email_verified_at = utcnow()
    if changes_after:
        db.session.flush()
        audit.record(
            "auth.profile_updated",
            target=user,
            actor=user,
            before=changes_before,
            after=changes_after,
            metadata={"via": "sso"},
        )


# --------------------------------------------------------------------------- enforcement and break-glass
@dataclass(frozen=True)
class Enforced:
    """An organization that makes ``user`` sign in through SSO."""

    organization_id: uuid.UUID
    organization_name: str
    slug: str
    break_glass: bool


def enforcing_organization(user: User) -> Enforced | None:
    """The organization whose security policy allows SSO only and which
    verified the domain of ``user``'s address, where ``user`` is an active
    member, with an enabled connection; ``None`` when a password may sign
    them in. ``break_glass``: they are an Owner the policy lists as
    break-glass (password plus second factor still allowed)."""
    domain = names.email_domain(user.email)
    if not domain:
        return None
    with all_organizations(reason="SSO enforcement: does the organization at this user's domain require SSO"):
        rows = db.session.execute(
            select(Organization, Membership.role)
            .join(Domain, Domain.organization_id == Organization.id)
            .join(Membership, Membership.organization_id == Organization.id)
            .join(SsoConnection, SsoConnection.organization_id == Organization.id)
            .where(
                Domain.name == domain,
                Domain.status == "verified",
                Membership.user_id == user.id,
                Membership.status == "active",
                SsoConnection.status == "enabled",
                Organization.deleted_at.is_(None),
                Organization.status == "active",
            )
            .options(joinedload(Organization.plan))
        ).all()
    for org, role in rows:
        policy = security_policy.for_org(org)
        if "password" in policy.sign_in_methods or not entitlements.entitled(org, FEATURE):
            continue
        glass = role == "owner" and str(user.id) in policy.break_glass_user_ids
        return Enforced(org.id, org.name, org.slug, glass)
    return None


def record_break_glass(user: User, enforced: Enforced) -> None:
    """Audit a break-glass sign-in in the organization and e-mail its other
    active Owners (queued in the same transaction)."""
    with tenant_context(enforced.organization_id):
        audit.record(
            "sso.break_glass_sign_in",
            target=user,
            actor=user,
            metadata={"email": user.email, "ip": auth.sessions.client_ip()},
        )
        owners = db.session.execute(
            select(User.email, User.name)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.role == "owner", Membership.status == "active", User.id != user.id)
        ).all()
        org = db.session.get(Organization, enforced.organization_id)
        for email, name in owners:
            queue_mail(
                email,
                f"Break-glass sign-in to {enforced.organization_name}",
                "sso_break_glass",
                name=name,
                who=user,
                org_name=enforced.organization_name,
                when=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                ip=auth.sessions.client_ip() or "an unknown address",
                audit_url=hosts.org_url(org, "/audit/"),
            )

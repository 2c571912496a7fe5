"""Demo data: ``flask --app wsgi demo``. Idempotent: running it twice changes nothing.

Every demo account's password is ``tenantry-demo``.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from app import crypto
from app.api import keys as api_keys
from app.api.models import ApiKey, ApiUsageDaily
from app.auditlog.demo import seed_demo_log
from app.auth import factors
from app.auth.models import User
from app.auth.passwords import hash_password
from app.domains.models import Domain
from app.extensions import db
from app.members.invitations import INVITATION_TTL, new_token
from app.members.models import Invitation
from app.projects.models import Project
from app.rbac.group_roles import GroupRoleMapping
from app.rbac.models import Role
from app.scim import tokens as scim_tokens
from app.scim.models import ScimGroup, ScimGroupMember, ScimToken, ScimUser
from app.scoping import all_organizations, tenant_context
from app.streaming.models import AuditStream
from app.tenancy.models import EntitlementOverride, Membership, Organization
from app.util import utcnow
from app.webhooks.models import WebhookEndpoint
from app.webhooks.services import new_secret

PASSWORD = "tenantry-demo"
# The demo super-admin's TOTP secret (the platform console needs a second
# factor): `flask --app wsgi banner` and the README print it, so anyone can add
# it to an authenticator app. A demo value, public on purpose; never in production.
DEMO_TOTP_SECRET = "TENANTRYDEMOSUPERADMIN2FA234567A"

ORGS = [
    # slug, name, plan
    ("acme", "Acme Corporation", "pro"),
    ("globex", "Globex", "free"),
]

USERS = [
    # email, name, super-admin, {org: role}
    ("super@tenantry.test", "Sam Super", True, {}),
    ("owner@acme.test", "Olivia Owner", False, {"acme": "owner"}),
    ("admin@acme.test", "Adam Admin", False, {"acme": "admin"}),
    ("manager@acme.test", "Mona Manager", False, {"acme": "manager"}),
    ("member@acme.test", "Max Member", False, {"acme": "member"}),
    ("viewer@acme.test", "Vera Viewer", False, {"acme": "viewer"}),
    ("owner@globex.test", "Hank Scorpio", False, {"globex": "owner"}),
    ("member@globex.test", "Frank Globex", False, {"globex": "member"}),
    ("consultant@example.test", "Casey Consultant", False, {"acme": "member", "globex": "admin"}),
]

CUSTOM_ROLES = {
    # slug: [(name, description, permissions)]
    "acme": [
        (
            "Auditor",
            "Reads the audit log, the members and the roles; changes nothing.",
            ["audit:view", "members:view", "roles:view"],
        )
    ],
}

PROJECTS = {
    "acme": [
        "Rocket Skates",
        "Giant Magnet",
        "Earthquake Pills",
        "Tornado Seeds",
        "Dehydrated Boulders",
        "Iron Carrot",
        "Jet-Propelled Pogo Stick",
        "Invisible Paint",
        "Instant Icicle Maker",
        "Bat-Man Outfit",
        "Super Outfit",
        "Spring-Powered Shoes",
        "Triple-Strength Fortified Leg Muscle Vitamins",
        "Do-It-Yourself Tornado Kit",
        "Rocket Sled",
        "Axle Grease",
        "Bird Seed",
        "Portable Hole",
        "Artificial Rock",
        "Explosive Tennis Balls",
        "Hi-Speed Tonic",
        "Desert Pipeline",
        "Catapult Mk II",
        "Anvil Logistics",
        "Road Runner Research",
    ],
    "globex": [
        "Doomsday Device",
        "Hammock District",
        "Monorail",
        "Cypress Creek Campus",
        "Volcano Lair",
        "Employee Wellness",
        "Sales Kickoff",
        "Supply Chain Audit",
        "Brand Refresh",
        "Recruiting Drive",
    ],
}


def load_demo() -> str:
    """Create everything missing; leave what exists alone. Returns a summary.

    Runs as the cross-organization role from start to end, one transaction
    on one connection (it creates organizations and users, and rows that
    point at them); each organization's rows are still written inside its
    tenant context, so the ORM scope stamps and filters them.
    """
    with all_organizations(reason="demo data loader"):
        created = _load_demo()

    # A short, signed and sealed history, so the audit viewer and
    # `flask audit verify` have something to show on a fresh install. It is
    # written only into an empty log: demo data that records events of its
    # own (access reviews) comes after it.
    created["audit events"] = seed_demo_log()
    with all_organizations(reason="demo data loader: access reviews"):
        created["access reviews"] = _demo_reviews_of_acme()
        db.session.commit()
    # Last: the organization export reads everything above (committed).
    with all_organizations(reason="demo data loader: data exports"):
        created["organization exports"] = _demo_org_export()
        created["personal data exports"] = _demo_personal_export()
        db.session.commit()
    return summary(created)


# --------------------------------------------------------------------------- data exports (issue 20)
DEMO_EXPORT_REQUESTER = "owner@acme.test"
DEMO_PERSONAL_EXPORT_USER = "member@acme.test"


def _demo_org_export() -> int:
    """A finished export of Acme, built by the export job's own code
    (``run_export``: the real archive, its manifest and checksums), so the
    Data export page lists one and its archive downloads for 24 hours; then,
    like any, it expires and the row stays as history. Once: an
    organization with any export is left alone."""
    from app import audit
    from app.orgdata import services as orgdata
    from app.orgdata.models import OrgExport

    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    owner = db.session.execute(select(User).where(User.email == DEMO_EXPORT_REQUESTER)).scalar_one()
    with tenant_context(acme.id, owner.id):
        if db.session.execute(select(OrgExport.id).limit(1)).first() is not None:
            return 0
        export = OrgExport(
            id=uuid.uuid4(), requested_by=owner.id, requested_label=audit.user_label(owner), status="queued"
        )
        db.session.add(export)
        db.session.flush()
        audit.record(
            "org.export_requested",
            target=("export", str(export.id), "Organization export"),
            actor=audit.Actor.of_user(owner),
        )
        db.session.commit()
        status = orgdata.run_export(str(export.id))
        db.session.commit()
    return 1 if status == "ready" else 0


def _demo_personal_export() -> int:
    """Max Member has asked for an export of their personal data: pending,
    its job queued, so the account's "Your data" page shows it being
    prepared and a running worker builds it and mails the link (to the
    development outbox). Once: a person with any export is left alone."""
    from app import audit, jobs
    from app.privacy.models import PersonalExport
    from app.privacy.tasks import build_export

    user = db.session.execute(select(User).where(User.email == DEMO_PERSONAL_EXPORT_USER)).scalar_one()
    if db.session.execute(select(PersonalExport.id).where(PersonalExport.user_id == user.id)).first() is not None:
        return 0
    export = PersonalExport(id=uuid.uuid4(), user_id=user.id, status="pending")
    db.session.add(export)
    db.session.flush()
    jobs.enqueue(build_export, export_id=str(export.id))
    audit.record(
        "privacy.export_requested",
        target=user,
        metadata={"export_id": str(export.id)},
        actor=audit.Actor.of_user(user),
    )
    return 1


def _demo_reviews_of_acme() -> int:
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    people = {
        u.email: u
        for u in db.session.execute(
            select(User).where(User.email.in_(["owner@acme.test", "admin@acme.test"]))
        ).scalars()
    }
    return _demo_reviews(acme, people["owner@acme.test"], people["admin@acme.test"])


# What each count is called when it is one.
_SINGULAR = {
    "access reviews": "access review",
    "users": "user",
    "second factors": "second factor",
    "organizations": "organization",
    "memberships": "membership",
    "roles": "role",
    "projects": "project",
    "generated members": "generated member",
    "invitations": "invitation",
    "audit events": "audit event",
    "domains": "domain",
    "entitlement overrides": "entitlement override",
    "branded organizations": "branded organization",
    "webhook deliveries": "webhook delivery",
    "webhook endpoints": "webhook endpoint",
    "audit streams": "audit stream",
    "API keys": "API key",
    "SSO connections": "SSO connection",
    "organization exports": "organization export",
    "personal data exports": "personal data export",
}


def summary(created: dict[str, int]) -> str:
    """One line saying what the loader created: "1 role", "2 roles"; nothing
    to create (it ran before) says so."""
    parts = [f"{n} {_SINGULAR.get(what, what) if n == 1 else what}" for what, n in created.items() if n]
    if not parts:
        return "Demo data: already loaded, nothing created."
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Demo data: {listed} created."


def _load_demo() -> dict[str, int]:
    created = {"users": 0, "second factors": 0, "organizations": 0, "memberships": 0, "roles": 0, "projects": 0}
    pw_hash = None
    with all_organizations(reason="demo data loader"):
        orgs = {}
        for slug, name, plan in ORGS:
            org = db.session.execute(
                select(Organization).where(Organization.slug == slug, Organization.deleted_at.is_(None))
            ).scalar_one_or_none()
            if org is None:
                org = Organization(slug=slug, name=name, plan_key=plan)
                db.session.add(org)
                db.session.flush()
                created["organizations"] += 1
            orgs[slug] = org
        users = {}
        for email, name, superadmin, roles in USERS:
            user = db.session.execute(select(User).where(func.lower(User.email) == email)).scalar_one_or_none()
            if user is None:
                pw_hash = pw_hash or hash_password(PASSWORD)
                user = User(
                    email=email,
                    name=name,
                    password_hash=pw_hash,
                    email_verified_at=utcnow(),
                    password_changed_at=utcnow(),
                    is_superadmin=superadmin,
                )
                db.session.add(user)
                db.session.flush()
                created["users"] += 1
            users[email] = user
            if superadmin and factors.enrol_fixed_secret(user, DEMO_TOTP_SECRET):
                created["second factors"] += 1
            for slug, role in roles.items():
                org = orgs[slug]
                exists = db.session.get(Membership, (org.id, user.id))
                if exists is None:
                    db.session.add(Membership(organization_id=org.id, user_id=user.id, role=role))
                    created["memberships"] += 1
        db.session.flush()
    for slug, roles in CUSTOM_ROLES.items():
        with tenant_context(orgs[slug].id):
            have = {n.lower() for n in db.session.execute(select(Role.name)).scalars()}
            for rname, description, permissions in roles:
                if rname.lower() not in have:
                    db.session.add(Role(name=rname, description=description, permissions=permissions))
                    created["roles"] += 1
            db.session.flush()
    for slug, names in PROJECTS.items():
        org = orgs[slug]
        owner_email = next(e for e, _, _, r in USERS if r.get(slug) == "owner")
        with tenant_context(org.id):
            have = set(db.session.execute(select(Project.name)).scalars())
            for i, pname in enumerate(names):
                if pname in have:
                    continue
                db.session.add(
                    Project(
                        name=pname,
                        description=f"{pname}: a demo project of {org.name}.",
                        status="archived" if i % 9 == 8 else "active",
                        owner_id=users[owner_email].id,
                    )
                )
                created["projects"] += 1
            db.session.flush()
    created["generated members"], created["invitations"] = _demo_members(orgs["acme"], users["owner@acme.test"])
    created["webhook endpoints"] = _demo_webhook(orgs["acme"])
    created["entitlement overrides"], created["audit streams"] = _demo_stream(orgs["acme"], users)
    created["API keys"] = _demo_api_key(orgs["acme"], users["owner@acme.test"])
    created["domains"] = _demo_domain(orgs["acme"])
    created["entitlement overrides"] += _demo_override(orgs["globex"], users["super@tenantry.test"])
    created["SSO connections"] = _demo_sso(orgs["globex"])
    created["entitlement overrides"] += _demo_scim(orgs["acme"], users)
    created["branded organizations"] = _demo_branding(orgs["acme"])
    created["organizations requiring 2FA"] = _demo_require_2fa(orgs["globex"])
    created["webhook deliveries"] = _demo_deliveries(orgs["acme"])
    db.session.commit()
    return created


# --------------------------------------------------------------------------- access reviews (issue 20)
def _demo_reviews(acme, owner, admin) -> int:
    """Two access reviews in Acme: a finished one (the holders of
    ``members:remove``, two months ago, every member kept - the Owner by
    the Admin, the others by the Owner - closed) whose
    evidence can be opened and exported, and an open quarterly review of
    every member due in two weeks. Once: an organization that has any
    review is left alone."""
    from sqlalchemy import update

    from app.reviews import services as reviews
    from app.reviews.models import AccessReview, AccessReviewItem

    with tenant_context(acme.id, owner.id):
        if db.session.execute(select(AccessReview.id).limit(1)).first() is not None:
            return 0
        today = reviews.today()
        reviewers = (owner.id, admin.id)
        done = reviews.start_review(
            reviews.Plan(
                "Administrators, spring check",
                "permissions",
                ("members:remove",),
                reviewers,
                today - timedelta(days=46),
                "none",
            ),
            start=today - timedelta(days=60),
        )
        decided_at = utcnow() - timedelta(days=50)
        db.session.execute(
            update(AccessReviewItem)
            .where(AccessReviewItem.review_id == done.id)
            .values(
                decision="keep",
                decided_by=owner.id,
                decided_by_label=f"{owner.name} <{owner.email}>",
                decided_at=decided_at,
                note="Still administers Acme.",
            )
            .execution_options(synchronize_session=False)
        )
        # Nobody decides on their own access: the Admin decided on the Owner.
        db.session.execute(
            update(AccessReviewItem)
            .where(AccessReviewItem.review_id == done.id, AccessReviewItem.user_id == owner.id)
            .values(decided_by=admin.id, decided_by_label=f"{admin.name} <{admin.email}>")
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(AccessReview)
            .where(AccessReview.id == done.id)
            .values(status="closed", closed_at=decided_at, closed_by=owner.id)
            .execution_options(synchronize_session=False)
        )
        reviews.start_review(
            reviews.Plan("Quarterly access review", "all", (), reviewers, today + timedelta(days=14), "quarterly"),
            start=today,
        )
        db.session.flush()
    return 2


# --------------------------------------------------------------------------- entitlements (issue 14)
def _demo_override(globex, superadmin) -> int:
    """Globex (free plan) trials SSO for 30 days: an override the console
    shows with its source ("override until ..."). Once: an existing override
    of that name is left alone, expired or not."""
    with all_organizations(reason="demo data loader: an entitlement override"):
        if db.session.get(EntitlementOverride, (globex.id, "sso")) is not None:
            return 0
        db.session.add(
            EntitlementOverride(
                organization_id=globex.id,
                name="sso",
                kind="feature",
                enabled=True,
                until=utcnow() + timedelta(days=30),
                reason="Demo: a 30-day SSO trial before they decide on Enterprise.",
                created_by=superadmin.id,
            )
        )
        db.session.flush()
    return 1


# --------------------------------------------------------------------------- single sign-on (issue 19)
def _demo_sso(globex) -> int:
    """Globex (trialling SSO) has begun two connections, both **drafts**, never
    tested nor on (no demo identity provider answers), so nobody's sign-in
    changes:

    * an Okta OpenID Connect one, with the redirect URI to copy and the steps;
    * a Microsoft Entra ID SAML one, saved once so that our key exists: the
      portal shows our ACS URL and entity id and offers our SP metadata for
      download; the IdP's metadata is still to be uploaded.

    Each once, by protocol: an existing connection of that protocol is left
    alone. Returns the connections created."""
    from app.sso import saml_protocol
    from app.sso.models import SsoConnection

    added = 0
    with tenant_context(globex.id):
        have = set(db.session.execute(select(SsoConnection.protocol)).scalars())
        if "oidc" not in have:
            db.session.add(
                SsoConnection(
                    protocol="oidc",
                    provider="okta",
                    name="Globex Okta (example)",
                    status="draft",
                    config={
                        "default_role": "member",
                        "scopes": "openid email profile groups",
                        "groups_claim": "groups",
                    },
                )
            )
            added += 1
        if "saml" not in have:
            conn = SsoConnection(
                protocol="saml", provider="entra", name="Globex Entra ID SAML (example)", status="draft"
            )
            db.session.add(conn)
            db.session.flush()
            key, cert = saml_protocol.generate_keypair(f"tenantry-sso-{conn.id}")
            conn.config = {
                "default_role": "member",
                "idp_metadata_url": "",
                "email_attribute": "email",
                "name_attribute": "displayName",
                "groups_attribute": "groups",
                "sp_cert": cert,
            }
            conn.secret_encrypted = crypto.encrypt(key)
            added += 1
        db.session.flush()
    return added


# --------------------------------------------------------------------------- SCIM (issue 19)
DEMO_SCIM_TOKEN_NAME = "Okta (demo)"


def _demo_scim(acme, users) -> int:
    """Acme (Pro) trials SCIM: an override, a token (its secret random and
    never stored: the page shows its row; make a real one there), the group
    "Engineering Leads" mapped to Manager, and Mona Manager provisioned in it
    (her role's source shows "SCIM" on the members page). Once: nothing is
    added when the token exists. Returns the overrides created."""
    added = 0
    with all_organizations(reason="demo data loader: an entitlement override"):
        if db.session.get(EntitlementOverride, (acme.id, "scim")) is None:
            db.session.add(
                EntitlementOverride(
                    organization_id=acme.id,
                    name="scim",
                    kind="feature",
                    enabled=True,
                    until=utcnow() + timedelta(days=30),
                    reason="Demo: a 30-day SCIM provisioning trial.",
                    created_by=users["super@tenantry.test"].id,
                )
            )
            db.session.flush()
            added = 1
    with tenant_context(acme.id):
        if db.session.execute(select(ScimToken.id).where(ScimToken.name == DEMO_SCIM_TOKEN_NAME)).first() is not None:
            return added
        key_id, full = scim_tokens.new_token()
        owner = users["owner@acme.test"]
        db.session.add(
            ScimToken(
                key_id=key_id, secret_hash=scim_tokens.hash_token(full), name=DEMO_SCIM_TOKEN_NAME, created_by=owner.id
            )
        )
        db.session.add(GroupRoleMapping(source="scim", group_name="Engineering Leads", role="manager"))
        manager = users["manager@acme.test"]
        db.session.add(
            ScimUser(
                user_id=manager.id,
                user_name=manager.email,
                emails=[manager.email],
                document={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": manager.name},
            )
        )
        group = ScimGroup(
            display_name="Engineering Leads", document={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}
        )
        db.session.add(group)
        db.session.flush()
        db.session.add(ScimGroupMember(group_id=group.id, user_id=manager.id))
        m = db.session.execute(select(Membership).where(Membership.user_id == manager.id)).unique().scalar_one()
        m.role_source, m.scim_external_id = "scim", "00u-demo-mona"
        db.session.flush()
    return added


# --------------------------------------------------------------------------- settings (issue 15)
DEMO_BRAND_COLOUR = "#0f766e"  # teal: 5.5:1 with white text (WCAG AA)


def _demo_logo() -> bytes:
    """A small PNG drawn on the spot (two teal squares): no binary in the repository."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (96, 48), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((2, 6, 38, 42), radius=8, fill=(15, 118, 110, 255))
    draw.rounded_rectangle((30, 14, 58, 42), radius=6, fill=(45, 212, 191, 255))
    draw.text((64, 16), "AC", fill=(15, 118, 110, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _demo_branding(acme) -> int:
    """Acme (Pro) shows branding: a colour, a logo, a time zone and a contact
    address, once; settings someone changed since are left alone."""
    import hashlib

    from app.settings.models import OrganizationLogo

    settings = dict(acme.settings or {})
    if "brand_color" in settings:
        return 0
    data = _demo_logo()
    digest = hashlib.sha256(data).hexdigest()
    with tenant_context(acme.id):
        if db.session.get(OrganizationLogo, (acme.id,)) is None:
            db.session.add(
                OrganizationLogo(
                    organization_id=acme.id, content_type="image/png", data=data, sha256=digest, width=96, height=48
                )
            )
            db.session.flush()
    settings.update(
        brand_color=DEMO_BRAND_COLOUR,
        logo={"sha256": digest, "type": "image/png", "width": 96, "height": 48, "bytes": len(data)},
        timezone=settings.get("timezone") or "Europe/Paris",
        contact_email=settings.get("contact_email") or "ops@acme.test",
    )
    acme.settings = settings
    db.session.flush()
    return 1


# --------------------------------------------------------------------------- strong authentication (issue 18)
DEMO_GRACE_DAYS = 30


def _demo_require_2fa(globex) -> int:
    """Globex requires two-factor authentication with a 30-day grace period
    from the first load: its members (none has a factor) see the banner with
    the deadline; its members page's "without two-factor" filter lists them.
    Once: a security policy someone set since is left alone."""
    settings = dict(globex.settings or {})
    if "security" in settings:
        return 0
    settings["security"] = {
        "require_2fa": True,
        "require_2fa_grace_days": DEMO_GRACE_DAYS,
        "require_2fa_since": utcnow().isoformat(),
    }
    globex.settings = settings
    db.session.flush()
    return 1


# --------------------------------------------------------------------------- webhooks (issue 13)
DEMO_WEBHOOK_URL = "http://localhost:9000/webhooks"


def _demo_webhook(acme) -> int:
    """Acme's one demo endpoint: a receiver on this machine, **disabled**, so
    that nothing is sent until a developer starts a receiver there, runs with
    ``WEBHOOKS_ALLOW_LOOPBACK=1`` and enables it. Written directly (the SSRF
    guard would refuse loopback), once: an existing endpoint is left alone."""
    with tenant_context(acme.id):
        if db.session.execute(select(WebhookEndpoint.id).limit(1)).first() is not None:
            return 0
        db.session.add(
            WebhookEndpoint(
                url=DEMO_WEBHOOK_URL,
                description="Demo receiver on this machine (start one on port 9000, then enable).",
                event_types=["member.invited", "member.joined", "project.created", "project.updated"],
                enabled=False,
                disabled_reason="manual",
                secret_encrypted=crypto.encrypt(new_secret()),
            )
        )
        db.session.flush()
    return 1


# --------------------------------------------------------------------------- audit streaming (issue 20)
DEMO_STREAM_URL = "http://localhost:9001/audit"
DEMO_STREAM_NAME = "SIEM (demo receiver)"


def _demo_stream(acme, users) -> tuple[int, int]:
    """Acme (Pro) trials audit streaming (an override for 30 days) and has
    one example stream: HTTPS to a receiver on this machine, **disabled**, so
    nothing is sent until a developer starts a receiver on port 9001, runs
    with ``WEBHOOKS_ALLOW_LOOPBACK=1`` and enables it (it then sends the whole
    retained log from the start). Written directly (the SSRF guard refuses
    loopback), once: an existing stream or override is left alone. Returns
    ``(overrides created, streams created)``."""
    added = 0
    with all_organizations(reason="demo data loader: an entitlement override"):
        if db.session.get(EntitlementOverride, (acme.id, "audit_streaming")) is None:
            db.session.add(
                EntitlementOverride(
                    organization_id=acme.id,
                    name="audit_streaming",
                    kind="feature",
                    enabled=True,
                    until=utcnow() + timedelta(days=30),
                    reason="Demo: a 30-day audit streaming trial.",
                    created_by=users["super@tenantry.test"].id,
                )
            )
            db.session.flush()
            added = 1
    with tenant_context(acme.id):
        if db.session.execute(select(AuditStream.id).limit(1)).first() is None:
            db.session.add(
                AuditStream(
                    name=DEMO_STREAM_NAME,
                    kind="https",
                    url=DEMO_STREAM_URL,
                    secret_encrypted=crypto.encrypt(new_secret()),
                    enabled=False,
                    disabled_reason="manual",
                    cursor_seq=0,
                )
            )
            db.session.flush()
            return added, 1
    return added, 0


# --------------------------------------------------------------------------- API keys (issue 17)
DEMO_API_KEY_NAME = "Reporting script (demo)"


def _demo_api_key(acme, owner) -> int:
    """Acme's demo key, with a week of usage for the list and the meters.

    Its secret is random and never printed or stored (only its hash is):
    the demo shows a key's row, not a usable key; a developer creates a real
    one on /api-keys, where it is shown once. Written once: an existing key
    of that name is left alone."""
    with tenant_context(acme.id):
        if db.session.execute(select(ApiKey.id).where(ApiKey.name == DEMO_API_KEY_NAME)).first() is not None:
            return 0
        key_id, full = api_keys.new_key()
        now = utcnow()
        key = ApiKey(
            key_id=key_id,
            secret_hash=api_keys.hash_key(full),
            name=DEMO_API_KEY_NAME,
            scopes=["members:view", "projects:view"],
            created_by=owner.id,
            expires_at=now + timedelta(days=365),
            last_used_at=now - timedelta(minutes=7),
            last_used_ip="203.0.113.10",
        )
        db.session.add(key)
        db.session.flush()
        for days_ago in range(7):
            db.session.add(
                ApiUsageDaily(
                    api_key_id=key.id, day=(now - timedelta(days=days_ago)).date(), requests=400 + 37 * days_ago
                )
            )


# --------------------------------------------------------------------------- domains (issue 15)
DEMO_DOMAIN = "acme-corp.test"


def _demo_domain(acme) -> int:
    """Acme's demo domain, **pending**: the page shows the TXT record to
    publish. It cannot be verified without a DNS server that answers for it
    (point ``DNS_RESOLVER`` at one that does, then press "Verify now").
    Added once: an existing one is left alone, whatever its state."""
    with tenant_context(acme.id):
        if db.session.execute(select(Domain.id).where(Domain.name == DEMO_DOMAIN)).first() is not None:
            return 0
        db.session.add(Domain(name=DEMO_DOMAIN, token=secrets.token_hex(16), status="pending"))
        db.session.flush()
    return 1


def _demo_deliveries(acme, days: int = 90) -> int:
    """90 days of past deliveries to Acme's demo endpoint (mostly delivered,
    a few failed), so the analytics chart of webhook deliveries has a shape.
    Written once: an endpoint that has deliveries is left alone. Nothing is
    sent (they are history: none is pending)."""
    import json
    import random
    from datetime import timedelta

    from sqlalchemy import insert

    from app.webhooks.models import WebhookDelivery

    with tenant_context(acme.id):
        endpoint = db.session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at).limit(1)).scalar()
        if endpoint is None or db.session.execute(select(WebhookDelivery.id).limit(1)).first() is not None:
            return 0
        rnd = random.Random(13)
        now = utcnow()
        rows = []
        for d in range(days, 0, -1):
            for _ in range(rnd.choice((0, 1, 2, 3, 4, 6))):
                at = now - timedelta(days=d, seconds=rnd.randrange(86_400))
                ok = rnd.random() < 0.92
                event_type = rnd.choice(endpoint.event_types)
                rows.append(
                    {
                        "organization_id": acme.id,
                        "endpoint_id": endpoint.id,
                        "event_type": event_type,
                        "payload": json.dumps({"type": event_type, "timestamp": at.isoformat(), "data": {}}),
                        "status": "succeeded" if ok else "failed",
                        "attempts": 1 if ok else 8,
                        "round_attempts": 1 if ok else 8,
                        "created_at": at,
                        "last_attempt_at": at,
                    }
                )
        if rows:
            db.session.execute(insert(WebhookDelivery), rows)
        return len(rows)


# --------------------------------------------------------------------------- members (issue 4)
FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jon",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
LAST_NAMES = ["Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones"]
GENERATED_MEMBERS = 200
DEMO_INVITATIONS = [
    "new.hire1@acme.test",
    "new.hire2@acme.test",
    "contractor@example.test",
    "intern@acme.test",
    "auditor@example.test",
]


def _demo_member(i: int) -> tuple[str, str, str, str]:
    """The i-th generated member: (email, name, role, status), deterministic."""
    first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
    role = "viewer" if i % 10 in (6, 7, 8) else "manager" if i % 25 == 9 else "admin" if i % 97 == 5 else "member"
    status = "deactivated" if i % 17 == 3 else "active"
    return f"{first.lower()}.{last.lower()}{i}@acme.test", f"{first} {last}", role, status


def _demo_members(acme, inviter) -> tuple[int, int]:
    """Acme's 200 generated members (mostly members and viewers, some
    deactivated) and 5 pending invitations; only what is missing is added,
    in two bulk INSERTs, with one shared password hash."""

    from sqlalchemy import insert

    people = [_demo_member(i) for i in range(GENERATED_MEMBERS)]
    have = set(
        db.session.execute(
            select(func.lower(User.email)).where(func.lower(User.email).in_([p[0] for p in people]))
        ).scalars()
    )
    missing = [(i, p) for i, p in enumerate(people) if p[0] not in have]
    now = utcnow()
    if missing:
        pw_hash = hash_password(PASSWORD)
        rows = [
            {
                "id": uuid.uuid4(),
                "email": email,
                "name": name,
                "password_hash": pw_hash,
                "email_verified_at": now,
                "password_changed_at": now,
            }
            for _i, (email, name, _r, _s) in missing
        ]
        db.session.execute(insert(User), rows)
        with tenant_context(acme.id):
            db.session.execute(
                insert(Membership),
                [
                    {
                        "organization_id": acme.id,
                        "user_id": row["id"],
                        "role": role,
                        "status": status,
                        "created_at": now - timedelta(days=(i * 7) % 700, minutes=i),
                        "last_seen_at": None if i % 6 == 0 else now - timedelta(minutes=(i * 131) % 40000),
                    }
                    for row, (i, (_e, _n, role, status)) in zip(rows, missing, strict=False)
                ],
            )
    invited = 0
    with tenant_context(acme.id):
        open_ = set(
            db.session.execute(
                select(func.lower(Invitation.email)).where(
                    Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)
                )
            ).scalars()
        )
        for k, email in enumerate(DEMO_INVITATIONS):
            if email in open_:
                continue
            _token, token_hash = new_token()  # nobody holds the link: resend from the page to get one
            db.session.add(
                Invitation(
                    email=email,
                    role="viewer" if k % 2 else "member",
                    token_hash=token_hash,
                    invited_by=inviter.id,
                    expires_at=now + INVITATION_TTL,
                    sent_at=now,
                )
            )
            invited += 1
        db.session.flush()
    return len(missing), invited

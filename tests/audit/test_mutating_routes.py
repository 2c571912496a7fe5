"""Every mutating route (POST/PUT/PATCH/DELETE in the url map) writes exactly
the audit events it should when it succeeds, and none when it is refused.

``ROUTES`` maps each mutating endpoint to how to build a valid request (from
the ``world`` fixture plus what the request needs: an invitation, a custom
role, another session...), the events expected in each log ("acme", "globex",
"platform", or "new" for an organization the request creates), and a member
who lacks the permission (403, no event). A mutating endpoint missing from
the table fails ``test_every_mutating_endpoint_is_mapped``: add it when you
add the route.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import csrf_token, run_due_jobs, sign_in, url

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _in_days(n: int) -> str:
    from datetime import UTC, datetime

    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def _png() -> bytes:
    from tests.settings.images import png

    return png()


def _acme_logo(c) -> None:
    from tests.settings.images import set_logo

    set_logo(c.world)


NEW_PASSWORD = "a-brand-new-passphrase-42"


@dataclass
class Call:
    path: str
    slug: str | None = "acme"
    as_user: str | None = "admin"  # a key of world.users, a User, or None (anonymous)
    data: dict = field(default_factory=dict)
    method: str = "POST"


@dataclass
class Route:
    expect: list[tuple[str, str]]  # (log, action)
    build: Callable[[Ctx], Call]
    refused_as: str | None = None  # a member without the permission: 403 and no event
    ok: tuple = (200, 302, 303)


class Ctx:
    """What a request needs, created on demand from the world."""

    def __init__(self, app, world):
        self.app, self.world = app, world

    def user(self, key):
        return self.world.users[key]

    def in_acme(self, fn):
        from app.extensions import db
        from app.scoping import tenant_context

        with tenant_context(self.world.acme.id):
            out = fn()
            db.session.commit()
        return out

    def project(self, i=0, archived=False):
        from app.extensions import db
        from app.projects.models import Project

        def go():
            p = db.session.get(Project, (self.world.acme.id, self.world.projects["acme"][i].id))
            if archived:
                p.status = "archived"
            return str(p.id)

        return self.in_acme(go)

    def review(self, reviewers=("owner", "admin")):
        """An open acme access review of every member (its start's event comes before the request)."""
        from datetime import timedelta

        from app.members.memberships import get_membership
        from app.reviews import services

        def go():
            plan = services.check_plan(
                "Mapped review",
                "all",
                [],
                [str(self.user(k).id) for k in reviewers],
                services.today() + timedelta(days=7),
                "none",
            )
            return str(services.start_review(plan, get_membership(self.user("owner").id)).id)

        return self.in_acme(go)

    def review_item_version(self, review_id, key="member"):
        from sqlalchemy import text as sql

        with _owner().connect() as c:
            return str(
                c.execute(
                    sql("SELECT version FROM access_review_items WHERE review_id = :r AND user_id = :u"),
                    {"r": review_id, "u": self.user(key).id},
                ).scalar()
            )

    def member_id(self, key="member"):
        return str(self.user(key).id)

    def deactivated_member(self):
        u = f.make_user("dormant@acme.test", "Dora Dormant")
        f.add_member(self.world.acme, u, "member", status="deactivated")
        return str(u.id)

    def custom_role(self, name="Auditors", perms=("org:view", "audit:view")):
        from app.extensions import db
        from app.rbac.models import Role

        def go():
            r = Role(organization_id=self.world.acme.id, name=name, permissions=list(perms))
            db.session.add(r)
            db.session.flush()
            return str(r.id)

        return self.in_acme(go)

    def scim(self, what=None):
        """Acme given the scim feature; with ``what``, the id of a SCIM token or group mapping of acme's."""
        from tests.scim.conftest import acme_mapping_id, acme_scim_token_id, entitle_scim

        entitle_scim(self.world.acme.id)
        if what == "token":
            return acme_scim_token_id(self.world)
        if what == "mapping":
            return acme_mapping_id(self.world)
        return None

    def api_key(self):
        """An acme API key of the Owner's (made before the request); its row id."""
        from app.api import keys
        from app.members.memberships import get_membership

        return self.in_acme(
            lambda: str(keys.create_key("Mapped", ["members:view"], 30, get_membership(self.user("owner").id))[0].id)
        )

    def webhook(self, enabled=True, delivery=False):
        """An acme webhook endpoint at a literal public address (set up with its
        own event, before the request); with ``delivery``, ``(endpoint, delivery)``."""
        from app.webhooks import services

        def go():
            e, _ = services.create_endpoint(self.world.acme, "https://93.184.215.14/hook", "", ["role.created"])
            if not enabled:
                services.disable_endpoint(e)
            if delivery:
                return str(e.id), str(services.send_test_event(e))
            return str(e.id)

        return self.in_acme(go)

    def stream(self, enabled=True):
        """An acme audit stream on the enterprise plan (written without an
        event). Its URL is a loopback port the SSRF guard refuses, so a test
        event is refused before any connection (and still audited)."""
        from app import crypto
        from app.extensions import db
        from app.streaming.models import AuditStream

        self.enterprise()

        def go():
            s = AuditStream(
                name="SIEM",
                kind="https",
                url="http://127.0.0.1:9/stream",
                secret_encrypted=crypto.encrypt("whsec_" + "A" * 43 + "="),
                enabled=enabled,
                disabled_reason=None if enabled else "manual",
            )
            db.session.add(s)
            db.session.flush()
            return str(s.id)

        return self.in_acme(go)

    def suggested_to(self):
        """A verified person at acme's verified domain, which suggests acme to them."""
        from sqlalchemy import text as sql

        self.domain(verified=True)
        with _owner().begin() as c:
            c.execute(sql("UPDATE domains SET auto_join = 'suggest'"))
        return f.make_user("asker@acme-route.com", "Asker")

    def domain(self, verified=False, record=False, host=False):
        """An acme domain (set up without an event): pending, or ``verified``;
        with ``record`` its TXT record is published on a DNS server on
        loopback that the app asks; with ``host`` acme is served on a host at it."""
        import secrets

        from sqlalchemy import text as sql

        from app.domains.models import Domain
        from app.extensions import db
        from app.util import utcnow

        def go():
            d = Domain(
                name="acme-route.com",
                token=secrets.token_hex(16),
                status="verified" if verified else "pending",
                verified_at=utcnow() if verified else None,
            )
            db.session.add(d)
            db.session.flush()
            return str(d.id), d.record_value

        domain_id, record_value = self.in_acme(go)
        if record:
            zone = _dns_zone()
            zone.clear()
            zone.publish("_tenantry.acme-route.com", record_value)
            self.app.config["DNS_RESOLVER"] = zone.address
        if host:
            with _owner().begin() as c:
                c.execute(
                    sql(
                        "UPDATE organizations SET custom_domain = 'portal.acme-route.com',"
                        " custom_domain_verified_at = now() WHERE id = :o"
                    ),
                    {"o": self.world.acme.id},
                )
        return domain_id

    def enterprise(self):
        """Acme on the enterprise plan (single sign-on), set up without an event."""
        from sqlalchemy import text as sql

        with _owner().begin() as c:
            c.execute(sql("UPDATE organizations SET plan_key = 'enterprise' WHERE id = :o"), {"o": self.world.acme.id})

    def sso_connection(self, status="draft"):
        """An acme OIDC connection (set up without an event), on the enterprise plan."""
        from app.extensions import db
        from app.sso.models import SsoConnection

        self.enterprise()

        def go():
            conn = SsoConnection(
                protocol="oidc",
                provider="okta",
                name="Route IdP",
                status=status,
                config={"default_role": "member"},
                last_test={"ok": True, "identity": {}} if status != "draft" else None,
            )
            db.session.add(conn)
            db.session.flush()
            return str(conn.id)

        return self.in_acme(go)

    def sso_mapping(self):
        """``(connection id, mapping id)``: an acme draft connection and a group
        mapping for SSO sign-ins (set up without an event)."""
        from app.extensions import db
        from app.rbac.group_roles import GroupRoleMapping

        conn_id = self.sso_connection()

        def go():
            m = GroupRoleMapping(source="sso", group_name="Route group", role="viewer")
            db.session.add(m)
            db.session.flush()
            return str(m.id)

        return conn_id, self.in_acme(go)

    def sso_setup_link(self):
        """An acme setup link (set up without an event), on the enterprise plan."""
        from app.extensions import db
        from app.sso.models import SsoSetupLink
        from app.util import utcnow

        self.enterprise()

        def go():
            link = SsoSetupLink(token_hash="3" * 64, label="IT", expires_at=utcnow() + timedelta(hours=24))
            db.session.add(link)
            db.session.flush()
            return str(link.id)

        return self.in_acme(go)

    def org_version(self):
        from sqlalchemy import text as sql

        with _owner().connect() as c:
            return str(
                c.execute(sql("SELECT version FROM organizations WHERE id = :o"), {"o": self.world.acme.id}).scalar()
            )

    def invitation(self, email="invitee@example.test"):
        """``(invitation id, token)`` of an open invitation to acme (set up without an event)."""
        from app.extensions import db
        from app.members.invitations import new_token
        from app.members.models import Invitation
        from app.util import utcnow

        token, token_hash = new_token()

        def go():
            inv = Invitation(
                organization_id=self.world.acme.id,
                email=email,
                role="member",
                token_hash=token_hash,
                invited_by=self.user("owner").id,
                expires_at=utcnow() + timedelta(days=7),
                sent_at=utcnow(),
            )
            db.session.add(inv)
            db.session.flush()
            return str(inv.id)

        return self.in_acme(go), token

    def other_session(self, key="member"):
        """Another session of ``key``'s, which reached acme (an acme admin may end it)."""
        from app.auth.models import UserSession
        from app.extensions import db

        rec = UserSession(user_id=self.user(key).id, ip="198.51.100.9", user_agent="other device")
        db.session.add(rec)
        db.session.commit()
        f.reached(self.world.acme, rec.id, self.user(key))
        return str(rec.id)

    def reset_token(self, key="outsider"):
        from app.auth.models import PasswordReset
        from app.extensions import db
        from app.util import utcnow

        token = uuid.uuid4().hex
        db.session.add(
            PasswordReset(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                user_id=self.user(key).id,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        db.session.commit()
        return token

    def unverified(self):
        u = f.make_user("fresh@example.test", "Fresh Person", verified=False)
        return u

    def verification_token(self):
        from app.auth import services

        u = self.unverified()
        return services._serializer(services.VERIFY_SALT).dumps({"u": str(u.id), "e": u.email.lower()})

    def email_change_token(self, key="member"):
        from app.auth import services

        u = self.user(key)
        return services._serializer(services.EMAIL_CHANGE_SALT).dumps(
            {"u": str(u.id), "old": u.email.lower(), "new": "changed.address@example.test"}
        )

    # ------------------------------------------------------------------ second factors
    def with_totp(self, key="member", confirmed=True):
        """``key``'s user with a TOTP factor of ``f.TOTP_SECRET`` (pending unless ``confirmed``)."""
        from app.auth import factors
        from app.extensions import db

        u = self.user(key)
        if confirmed:
            f.enrol_totp(u)
        else:
            factors.start_totp(u, f.TOTP_SECRET)
            db.session.commit()
        return u

    def passkey_form(self, who, action: str, fields: dict) -> Call:
        """A passkey of ``who`` (a key of world.users or a User), stored as a
        registration stores it, and the ``rename``/``remove`` form posting to it."""
        from app.auth.models import WebAuthnCredential
        from app.extensions import db

        u = self.user(who) if isinstance(who, str) else who
        row = WebAuthnCredential(
            user_id=u.id, credential_id=uuid.uuid4().bytes, public_key=b"cose", name="Laptop", transports=[]
        )
        db.session.add(row)
        db.session.commit()
        prefix = ("p" if action == "rename" else "r") + row.id.hex[:8]
        data = {f"{prefix}-{k}": v for k, v in fields.items()}
        return Call(f"/account/security/passkeys/{row.id}/{action}", None, u, data)

    def between_steps(self, key="member"):
        """A client whose password step for ``key`` (with TOTP) has passed: the sign-in's second step is next."""
        u = self.with_totp(key)

        def make(app):
            c = app.test_client()
            data = {"email": u.email, "password": f.PASSWORD, "csrf_token": csrf_token(c, None)}
            assert c.post(url(None, "/login"), data=data).status_code == 302
            return c

        return make

    # ------------------------------------------------------------------ the platform console
    def superadmin(self):
        if not hasattr(self, "_superadmin"):
            self._superadmin = f.make_user("super@tenantry.test", "Sam Super", superadmin=True)
        return self._superadmin

    def acme_as(self, *, suspended=False, deleted=False):
        """acme suspended or deleted (set up without an event); its id."""
        from app.extensions import db
        from app.scoping import all_organizations
        from app.util import utcnow

        with all_organizations(reason="test: set up acme's state"):
            org = db.session.get(type(self.world.acme), self.world.acme.id)
            if suspended:
                org.status = "suspended"
            if deleted:
                org.deleted_at = utcnow()
        db.session.commit()
        return str(self.world.acme.id)

    def disabled_user(self):
        from app.extensions import db
        from app.scoping import all_organizations
        from app.util import utcnow

        u = f.make_user("disabled@example.test", "Dee Disabled")
        with all_organizations(reason="test: a disabled user"):
            u.disabled_at = utcnow()
        db.session.commit()
        return str(u.id)

    def job(self, failed=False):
        """A waiting mail job (or a failed one); its id."""
        from app.extensions import db
        from app.mail import queue_mail

        queue_mail("someone@example.test", "Hi", "reset", user=None, link="http://x/", minutes=60)
        db.session.commit()
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.app.config["DATABASE_URL"], poolclass=NullPool)
        with engine.begin() as c:
            job_id = c.execute(text("SELECT max(id) FROM procrastinate_jobs")).scalar()
            if failed:
                c.execute(text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :i"), {"i": job_id})
        engine.dispose()
        return str(job_id)


ACME, PLATFORM = "acme", "platform"

ROUTES: dict[str, Route] = {
    # ------------------------------------------------------------------ accounts (apex)
    "auth.login": Route(
        [(PLATFORM, "auth.login")],
        lambda c: Call("/login", None, None, {"email": "outsider@example.test", "password": f.PASSWORD}),
    ),
    "auth.logout": Route(
        [(ACME, "auth.logout"), (PLATFORM, "auth.logout")], lambda c: Call("/logout", "acme", "member")
    ),
    "auth.signup": Route(
        [(PLATFORM, "auth.signup"), (PLATFORM, "auth.login")],
        lambda c: Call(
            "/signup",
            None,
            None,
            {
                "name": "New Person",
                "email": "new.person@example.test",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        ),
    ),
    "auth.forgot": Route(
        [(PLATFORM, "auth.password_reset_requested")],
        lambda c: Call("/forgot-password", None, None, {"email": "outsider@example.test"}),
    ),
    "auth.reset": Route(
        [(PLATFORM, "auth.password_reset")],
        lambda c: Call(
            f"/reset-password/{c.reset_token()}", None, None, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        ),
    ),
    "auth.resend_verification": Route(
        [(PLATFORM, "auth.verification_resent")], lambda c: Call("/verify-email/resend", None, c.unverified())
    ),
    "auth.verify": Route(
        [(PLATFORM, "auth.email_verified")], lambda c: Call(f"/verify-email/{c.verification_token()}", None, None)
    ),
    "auth.confirm_email": Route(
        [(PLATFORM, "auth.email_changed")], lambda c: Call(f"/confirm-email/{c.email_change_token()}", None, None)
    ),
    "account.update_name": Route(
        [(PLATFORM, "auth.profile_updated")], lambda c: Call("/account/name", None, "member", {"name": "Max Renamed"})
    ),
    "account.change_password": Route(
        [(PLATFORM, "auth.password_changed")],
        lambda c: Call(
            "/account/password",
            None,
            "member",
            {"current_password": f.PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        ),
    ),
    "account.change_email": Route(
        [(PLATFORM, "auth.email_change_requested")],
        lambda c: Call(
            "/account/email", None, "member", {"new_email": "max.new@example.test", "email_password": f.PASSWORD}
        ),
    ),
    "account.start_totp": Route([], lambda c: Call("/account/security/totp", None, "member")),
    "account.confirm_totp": Route(
        [(PLATFORM, "auth.two_factor_enabled")],
        lambda c: Call("/account/security/totp/confirm", None, c.with_totp(confirmed=False), {"code": f.totp_code()}),
    ),
    "account.regenerate_codes": Route(
        [(PLATFORM, "auth.recovery_codes_regenerated")],
        lambda c: Call("/account/security/recovery-codes", None, c.with_totp(), {"codes_password": f.PASSWORD}),
    ),
    "account.disable_totp": Route(
        [(PLATFORM, "auth.two_factor_disabled")],
        lambda c: Call(
            "/account/security/totp/disable",
            None,
            c.with_totp(),
            {"disable_password": f.PASSWORD, "factor_code": f.totp_code()},
        ),
    ),
    # Echoes the codes just shown as a file and changes nothing; with no codes
    # of the member's it is a 422 (the download itself: tests/auth/test_two_factor.py).
    "account.download_codes": Route(
        [], lambda c: Call("/account/security/recovery-codes/download", None, "member"), ok=(422,)
    ),
    "account.update_security_mail": Route(
        [(PLATFORM, "auth.security_mail_updated")],
        lambda c: Call("/account/security/mail", None, "member", {"receive": ["new_device"]}),
    ),
    "auth.second_factor": Route(
        [(PLATFORM, "auth.login")],
        lambda c: Call("/login/second-factor", None, c.between_steps(), {"code": f.totp_code()}),
    ),
    "account.rename_passkey": Route(
        [(PLATFORM, "auth.passkey_renamed")],
        lambda c: c.passkey_form("member", "rename", {"name": "Renamed key"}),
    ),
    "account.remove_passkey": Route(
        [(PLATFORM, "auth.passkey_removed")],
        lambda c: c.passkey_form(c.with_totp("member"), "remove", {"remove_password": f.PASSWORD}),
    ),
    "auth.step_up": Route(
        [(ACME, "auth.step_up"), (PLATFORM, "auth.step_up")],
        lambda c: Call("/auth/step-up", "acme", "owner", {"password": f.PASSWORD, "next": "/"}),
    ),
    "account.revoke_session": Route(
        [(PLATFORM, "auth.session_revoked")],
        lambda c: Call(f"/account/sessions/{c.other_session('member')}/revoke", None, "member"),
    ),
    "account.revoke_others": Route(
        [(PLATFORM, "auth.sessions_revoked")],
        lambda c: (c.other_session("member"), Call("/account/sessions/revoke-others", None, "member"))[1],
    ),
    # Personal data: the export's job runs in the request's wake; the
    # erasure job starts 10 seconds later (tests/privacy covers its events).
    "privacy.request_export": Route(
        [(PLATFORM, "privacy.export_requested"), (PLATFORM, "privacy.export_ready")],
        lambda c: Call("/account/privacy/export", None, "member"),
    ),
    "privacy.delete": Route(
        [(ACME, "member.account_deleted"), (PLATFORM, "auth.account_deleted")],
        lambda c: Call(
            "/account/privacy/delete", None, "member", {"confirm": "member@acme.test", "password": f.PASSWORD}
        ),
    ),
    "orgs.new": Route(
        [("new", "org.created")],
        lambda c: Call("/organizations/new", None, "outsider", {"name": "Initech", "slug": "initech"}),
    ),
    # ------------------------------------------------------------------ dashboard
    "orgs.dismiss_getting_started": Route(
        [(ACME, "org.settings_changed")],
        lambda c: Call("/dashboard/getting-started/hide"),
        refused_as="manager",
    ),
    # ------------------------------------------------------------------ organization settings
    "settings.update": Route(
        [(ACME, "org.settings_changed")],
        lambda c: Call("/settings/general", data={"name": "Acme Renamed", "version": "1"}),
        refused_as="manager",
    ),
    "settings.update_colour": Route(
        [(ACME, "org.branding_changed")],
        lambda c: Call("/settings/branding/colour", data={"colour": "#1d4ed8", "version": "1"}),
        refused_as="manager",
    ),
    "settings.upload_logo": Route(
        [(ACME, "org.branding_changed")],
        lambda c: Call("/settings/branding/logo", data={"logo": (_png(), "logo.png"), "version": "1"}),
        refused_as="manager",
    ),
    "settings.remove_logo": Route(
        [(ACME, "org.branding_changed")],
        lambda c: (_acme_logo(c), Call("/settings/branding/logo/remove", data={"version": "2"}))[1],
        refused_as="manager",
    ),
    "settings.update_security": Route(
        [(ACME, "org.security_changed")],
        lambda c: Call(
            "/settings/security", data={"idle_minutes": "30", "sign_in_methods": "password", "version": "1"}
        ),
        refused_as="manager",
    ),
    "settings.update_notifications": Route(
        [(ACME, "org.notifications_changed")],
        lambda c: Call("/settings/notifications", data={"kinds": "member_joined", "version": "0"}),
        refused_as="member",
    ),
    "settings.delete": Route(
        [(ACME, "org.deleted")],
        lambda c: Call("/settings/delete", as_user="owner", data={"confirm": "acme"}),
        refused_as="admin",
    ),
    # ------------------------------------------------------------------ projects
    "projects.create": Route(
        [(ACME, "project.created")],
        lambda c: Call(
            "/projects/",
            as_user="member",
            data={"name": "Portable Hole", "description": "d", "owner_id": c.member_id("member")},
        ),
        refused_as="viewer",
    ),
    "projects.update": Route(
        [(ACME, "project.updated")],
        lambda c: Call(
            f"/projects/{c.project(0)}",
            as_user="member",
            data={"name": "Renamed Project", "description": "new", "owner_id": c.member_id("owner"), "version": "1"},
        ),
        refused_as="viewer",
    ),
    "projects.archive": Route(
        [(ACME, "project.archived")],
        lambda c: Call(f"/projects/{c.project(1)}/archive", as_user="member"),
        refused_as="viewer",
    ),
    "projects.unarchive": Route(
        [(ACME, "project.restored")],
        lambda c: Call(f"/projects/{c.project(1, archived=True)}/unarchive", as_user="member"),
        refused_as="viewer",
    ),
    "projects.delete": Route(
        [(ACME, "project.deleted")], lambda c: Call(f"/projects/{c.project(2)}/delete"), refused_as="manager"
    ),
    # ------------------------------------------------------------------ roles
    "rbac.create": Route(
        [(ACME, "role.created")],
        lambda c: Call(
            "/roles/",
            data={"name": "Auditors", "description": "Read the log", "permissions": ["org:view", "audit:view"]},
        ),
        refused_as="manager",
    ),
    "rbac.update": Route(
        [(ACME, "role.updated")],
        lambda c: Call(
            f"/roles/{c.custom_role()}",
            data={
                "name": "Auditors",
                "description": "More",
                "permissions": ["org:view", "audit:view", "audit:export"],
                "version": "1",
            },
        ),
        refused_as="manager",
    ),
    "rbac.duplicate": Route([(ACME, "role.created")], lambda c: Call("/roles/member/duplicate"), refused_as="manager"),
    "rbac.delete": Route(
        [(ACME, "role.deleted")], lambda c: Call(f"/roles/{c.custom_role()}/delete"), refused_as="manager"
    ),
    "rbac.assign": Route(
        [(ACME, "member.role_changed")],
        lambda c: Call("/roles/manager/members", data={"user_id": c.member_id("member")}),
        refused_as="manager",
    ),
    "rbac.transfer": Route(
        [(ACME, "org.ownership_transferred")],
        lambda c: Call("/roles/transfer", as_user="owner", data={"user_id": c.member_id("admin"), "confirm": "yes"}),
        refused_as="admin",
    ),
    # ------------------------------------------------------------------ members and invitations
    "members.update": Route(
        [(ACME, "member.role_changed")],
        lambda c: Call(f"/members/{c.member_id('member')}/role", data={"role": "viewer", "confirm": "1"}),
        refused_as="manager",
    ),
    "members.deactivate": Route(
        [(ACME, "member.deactivated")],
        lambda c: Call(f"/members/{c.member_id('member')}/deactivate"),
        refused_as="manager",
    ),
    "members.reactivate": Route(
        [(ACME, "member.reactivated")],
        lambda c: Call(f"/members/{c.deactivated_member()}/reactivate"),
        refused_as="manager",
    ),
    "members.delete": Route(
        [(ACME, "member.removed")], lambda c: Call(f"/members/{c.member_id('member')}/delete"), refused_as="manager"
    ),
    "members.remind_two_factor": Route(
        [(ACME, "member.two_factor_reminded")],
        lambda c: Call(f"/members/{c.member_id('member')}/remind-2fa"),
        refused_as="manager",
    ),
    "members.revoke_session": Route(
        [(ACME, "auth.session_revoked"), (PLATFORM, "auth.session_revoked")],
        lambda c: Call(f"/members/{c.member_id('member')}/sessions/{c.other_session('member')}/revoke"),
        refused_as="manager",
    ),
    "members.bulk": Route(
        [(ACME, "member.deactivated")],
        lambda c: Call(
            "/members/bulk", data={"action": "deactivate", "ids": [f"m:{c.member_id('member')}"], "confirm": "1"}
        ),
        refused_as="manager",
    ),
    "members.leave": Route([(ACME, "member.left")], lambda c: Call("/members/leave", as_user="member")),
    "members.create_csv": Route(
        [(ACME, "member.invited")],
        lambda c: Call(
            "/members/invite/csv",
            data={"file": (b"newcomer@example.test\n", "people.csv"), "role": "member"},
        ),
        refused_as="manager",
    ),
    "members.update_invitation_role": Route(
        [(ACME, "member.invitation_role_changed")],
        lambda c: Call(f"/members/invitations/{c.invitation()[0]}/role", data={"role": "viewer", "version": "1"}),
        refused_as="manager",
    ),
    "members.create": Route(
        [(ACME, "member.invited")],
        lambda c: Call("/members/invite", data={"emails": "newcomer@example.test", "role": "member"}),
        refused_as="manager",
    ),
    "members.resend": Route(
        [(ACME, "member.invitation_resent")],
        lambda c: Call(f"/members/invitations/{c.invitation()[0]}/resend"),
        refused_as="manager",
    ),
    "members.revoke": Route(
        [(ACME, "member.invitation_revoked")],
        lambda c: Call(f"/members/invitations/{c.invitation()[0]}/revoke"),
        refused_as="manager",
    ),
    "members.accept": Route(
        # a new person signs up through the invitation and is signed in: account
        # events (in the platform log, and in acme where they happen) and the join
        [
            (ACME, "auth.signup"),
            (PLATFORM, "auth.signup"),
            (ACME, "auth.login"),
            (PLATFORM, "auth.login"),
            (ACME, "member.joined"),
        ],
        lambda c: Call(
            f"/invitations/{c.invitation('brand.new@example.test')[1]}",
            "acme",
            None,
            {"name": "Brand New", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
    ),
    # ------------------------------------------------------------------ analytics
    "analytics.export": Route(
        [(ACME, "analytics.exported")],
        lambda c: Call("/analytics/export", data={"chart": "projects", "format": "csv", "range": "30"}),
        refused_as="viewer",
    ),
    # ------------------------------------------------------------------ compliance reports
    "reports.export": Route(
        [(ACME, "audit.report_exported")],
        lambda c: Call("/reports/access/export", data={}),
        refused_as="manager",
    ),
    # ------------------------------------------------------------------ access reviews
    "reviews.create": Route(
        [(ACME, "review.started")],
        lambda c: Call(
            "/reviews/",
            data={
                "name": "Mapped",
                "scope": "all",
                # two reviewers: a lone one among the members reviewed is refused
                "reviewers": [c.member_id("owner"), c.member_id("admin")],
                "deadline": _in_days(7),
                "recurrence": "none",
            },
        ),
        refused_as="manager",
    ),
    "reviews.decide": Route(
        # a removal through the members service: its own event, and the review's
        [(ACME, "review.decided"), (ACME, "member.removed")],
        lambda c: (
            lambda rid: Call(
                f"/reviews/{rid}/items/{c.member_id()}",
                data={"decision": "remove", "version": c.review_item_version(rid)},
            )
        )(c.review()),
        refused_as="manager",
    ),
    "reviews.close": Route(
        [(ACME, "review.closed")], lambda c: Call(f"/reviews/{c.review()}/close"), refused_as="manager"
    ),
    "reviews.export": Route(
        [(ACME, "review.exported")], lambda c: Call(f"/reviews/{c.review()}/evidence.csv"), refused_as="manager"
    ),
    # ------------------------------------------------------------------ webhooks
    "webhooks.create": Route(
        [(ACME, "webhook.created")],
        lambda c: Call("/webhooks/", data={"url": "https://93.184.215.14/new", "event_types": ["member.joined"]}),
        refused_as="manager",
        ok=(201,),
    ),
    "webhooks.update": Route(
        [(ACME, "webhook.updated")],
        lambda c: Call(
            f"/webhooks/{c.webhook()}",
            data={"url": "https://93.184.215.14/x", "event_types": ["role.created"], "version": "1"},
        ),
        refused_as="manager",
    ),
    "webhooks.delete": Route(
        [(ACME, "webhook.deleted")], lambda c: Call(f"/webhooks/{c.webhook()}/delete"), refused_as="manager"
    ),
    "webhooks.rotate": Route(
        [(ACME, "webhook.secret_rotated")], lambda c: Call(f"/webhooks/{c.webhook()}/rotate"), refused_as="manager"
    ),
    "webhooks.disable": Route(
        [(ACME, "webhook.disabled")], lambda c: Call(f"/webhooks/{c.webhook()}/disable"), refused_as="manager"
    ),
    "webhooks.enable": Route(
        [(ACME, "webhook.enabled")],
        lambda c: Call(f"/webhooks/{c.webhook(enabled=False)}/enable"),
        refused_as="manager",
    ),
    "webhooks.send_test": Route(
        [(ACME, "webhook.test_sent")], lambda c: Call(f"/webhooks/{c.webhook()}/test"), refused_as="manager"
    ),
    "webhooks.resend": Route(
        [(ACME, "webhook.redelivered")],
        lambda c: Call("/webhooks/{}/deliveries/{}/resend".format(*c.webhook(delivery=True))),
        refused_as="manager",
    ),
    "webhooks.replay": Route(
        [(ACME, "webhook.replay_started")],
        lambda c: Call(f"/webhooks/{c.webhook()}/replay", data={"since": "2020-01-01T00:00"}),
        refused_as="manager",
    ),
    # ------------------------------------------------------------------ audit streaming
    "streaming.create": Route(
        [(ACME, "audit_stream.created")],
        lambda c: (
            c.enterprise(),
            Call(
                "/audit-streams/",
                data={"name": "SIEM", "kind": "https", "url": "https://93.184.215.14/s", "start": "new"},
            ),
        )[1],
        refused_as="manager",
        ok=(201,),
    ),
    "streaming.update": Route(
        [(ACME, "audit_stream.updated")],
        lambda c: Call(
            f"/audit-streams/{c.stream()}", data={"name": "Renamed", "url": "https://93.184.215.14/s2", "version": "1"}
        ),
        refused_as="manager",
    ),
    "streaming.delete": Route(
        [(ACME, "audit_stream.deleted")], lambda c: Call(f"/audit-streams/{c.stream()}/delete"), refused_as="manager"
    ),
    "streaming.disable": Route(
        [(ACME, "audit_stream.disabled")], lambda c: Call(f"/audit-streams/{c.stream()}/disable"), refused_as="manager"
    ),
    "streaming.enable": Route(
        [(ACME, "audit_stream.enabled")],
        lambda c: Call(f"/audit-streams/{c.stream(enabled=False)}/enable"),
        refused_as="manager",
    ),
    "streaming.send_test": Route(
        [(ACME, "audit_stream.test_sent")],
        lambda c: Call(f"/audit-streams/{c.stream()}/test"),
        refused_as="manager",
    ),
    # ------------------------------------------------------------------ domains
    "scim_settings.create_token": Route(
        [(ACME, "scim.token_created")],
        lambda c: (c.scim(), Call("/settings/scim/tokens", data={"name": "Okta", "submit_key": "k1"}))[1],
        refused_as="manager",
        ok=(201,),
    ),
    "scim_settings.revoke_token": Route(
        [(ACME, "scim.token_revoked")],
        lambda c: Call(f"/settings/scim/tokens/{c.scim('token')}/revoke"),
        refused_as="manager",
    ),
    "scim_settings.create_mapping": Route(
        [(ACME, "role.group_mapped")],
        lambda c: (
            c.scim(),
            Call(
                "/settings/scim/mappings",
                data={"group": "Leads", "role": "manager", "source": "scim", "submit_key": "m1"},
            ),
        )[1],
        refused_as="manager",
    ),
    "scim_settings.update_mapping": Route(
        [(ACME, "role.group_mapping_changed")],
        lambda c: Call(
            f"/settings/scim/mappings/{c.scim('mapping')}", data={"edit-role": "member", "edit-version": "1"}
        ),
        refused_as="manager",
    ),
    "sso.create_mapping": Route(
        [(ACME, "role.group_mapped")],
        lambda c: Call(
            f"/settings/sso/{c.sso_connection()}/mappings",
            data={"group": "Leads", "role": "manager", "source": "sso", "submit_key": "m1"},
        ),
        refused_as="manager",
    ),
    "sso.update_mapping": Route(
        [(ACME, "role.group_mapping_changed")],
        lambda c: Call(
            "/settings/sso/{}/mappings/{}".format(*c.sso_mapping()), data={"edit-role": "member", "edit-version": "1"}
        ),
        refused_as="manager",
    ),
    "sso.delete_mapping": Route(
        [(ACME, "role.group_unmapped")],
        lambda c: Call("/settings/sso/{}/mappings/{}/delete".format(*c.sso_mapping())),
        refused_as="manager",
    ),
    "scim_settings.delete_mapping": Route(
        [(ACME, "role.group_unmapped")],
        lambda c: Call(f"/settings/scim/mappings/{c.scim('mapping')}/delete"),
        refused_as="manager",
    ),
    "domains.create": Route(
        [(ACME, "org.domain_added")],
        lambda c: Call("/settings/domains/", data={"name": "acme-new.com"}),
        refused_as="manager",
    ),
    "domains.verify": Route(
        [(ACME, "org.domain_verified")],
        lambda c: Call(f"/settings/domains/{c.domain(record=True)}/verify"),
        refused_as="manager",
    ),
    "domains.update": Route(
        [(ACME, "org.domain_settings_changed")],
        lambda c: Call(
            f"/settings/domains/{c.domain(verified=True)}/settings",
            data={"auto_join": "auto", "auto_join_role": "member", "version": "1"},
        ),
        refused_as="manager",
    ),
    "domains.set_host": Route(
        [(ACME, "org.custom_host_changed")],
        lambda c: Call(
            f"/settings/domains/{c.domain(verified=True)}/host",
            data={"host": "portal.acme-route.com", "version": c.org_version()},
        ),
        refused_as="manager",
    ),
    "domains.clear_host": Route(
        [(ACME, "org.custom_host_changed")],
        lambda c: c.domain(verified=True, host=True) and Call("/settings/domains/custom-host/clear"),
        refused_as="manager",
    ),
    "domain_join.ask": Route(
        [(ACME, "member.join_requested")],
        lambda c: Call(f"/join/{c.world.acme.id}", None, c.suggested_to()),
    ),
    "domains.delete": Route(
        [(ACME, "org.domain_removed")], lambda c: Call(f"/settings/domains/{c.domain()}/delete"), refused_as="manager"
    ),
    # ------------------------------------------------------------------ organization export
    "orgdata.create": Route(
        # the job runs once the request commits: the archive is ready, by the system
        [(ACME, "org.export_requested"), (ACME, "org.export_completed")],
        lambda c: Call("/settings/export/", as_user="owner"),
        refused_as="admin",  # Owner only
    ),
    # ------------------------------------------------------------------ the audit log
    "apikeys.create": Route(
        [(ACME, "api_key.created")],
        lambda c: Call(
            "/api-keys/", data={"name": "CI", "scopes": ["members:view"], "expires_in_days": "30", "submit_key": "k1"}
        ),
        ok=(200, 201, 302),  # anyone may, while the security policy lets members create keys
    ),
    "apikeys.revoke": Route(
        [(ACME, "api_key.revoked")], lambda c: Call(f"/api-keys/{c.api_key()}/revoke"), refused_as="viewer"
    ),
    "apikeys.rotate": Route(
        [(ACME, "api_key.created"), (ACME, "api_key.rotated")],
        lambda c: Call(f"/api-keys/{c.api_key()}/rotate", data={"overlap_hours": "0"}),
        refused_as="viewer",
        ok=(200, 201, 302),
    ),
    # ------------------------------------------------------------------ single sign-on
    "sso.create": Route(
        [(ACME, "sso.connection_created")],
        lambda c: (
            c.enterprise()
            or Call(
                "/settings/sso/", data={"provider": "okta", "protocol": "oidc", "name": "Okta", "submit_key": "k" * 20}
            )
        ),
        refused_as="manager",
    ),
    "sso.enable": Route(
        [(ACME, "sso.connection_enabled")],
        lambda c: Call(f"/settings/sso/{c.sso_connection('tested')}/enable", data={"version": "1"}),
        refused_as="manager",
    ),
    "sso.disable": Route(
        [(ACME, "sso.connection_disabled")],
        lambda c: Call(f"/settings/sso/{c.sso_connection('enabled')}/disable", data={"version": "1"}),
        refused_as="manager",
    ),
    "sso.test": Route(
        [],  # the test itself happens at the provider; its callback records sso.connection_tested
        lambda c: Call(f"/settings/sso/{c.sso_connection('draft')}/test"),
        refused_as="manager",
        ok=(200, 302, 422),  # 422: nothing configured yet to test with
    ),
    "sso.create_link": Route(
        [(ACME, "sso.setup_link_issued")],
        lambda c: c.enterprise() or Call("/settings/sso/links", data={"label": "it@acme.test"}),
        refused_as="manager",
    ),
    "sso.revoke_link": Route(
        [(ACME, "sso.setup_link_revoked")],
        lambda c: Call(f"/settings/sso/links/{c.sso_setup_link()}/revoke"),
        refused_as="manager",
    ),
    "auditlog.export": Route(
        [(ACME, "audit.exported")], lambda c: Call("/audit/export", data={"format": "csv"}), refused_as="viewer"
    ),
}


_ZONE = []


def _dns_zone():
    """One DNS server on loopback for the domain routes (started on first use)."""
    from tests.domains.dns_server import DnsZone

    if not _ZONE:
        _ZONE.append(DnsZone().start())
    return _ZONE[0]


def _owner():
    from flask import current_app
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(current_app.config["DATABASE_URL"], poolclass=NullPool)


def _console(path, data=None):
    return lambda c: Call(path(c), None, c.superadmin(), data or {})


ROUTES.update(
    {
        "platform.change_plan": Route(
            [(ACME, "org.plan_changed"), (PLATFORM, "platform.plan_changed")],
            _console(
                lambda c: f"/platform/organizations/{c.world.acme.id}/plan",
                {"plan-plan": "enterprise", "plan-reason": "Signed the contract", "plan-version": "1"},
            ),
        ),
        "platform.suspend": Route(
            [(ACME, "org.suspended"), (PLATFORM, "platform.org_suspended")],
            _console(lambda c: f"/platform/organizations/{c.world.acme.id}/suspend", {"suspend-reason": "Unpaid"}),
        ),
        "platform.reactivate": Route(
            [(ACME, "org.reinstated"), (PLATFORM, "platform.org_reactivated")],
            _console(
                lambda c: f"/platform/organizations/{c.acme_as(suspended=True)}/reactivate",
                {"reactivate-reason": "Paid"},
            ),
        ),
        "platform.restore": Route(
            [(ACME, "org.restored"), (PLATFORM, "platform.org_restored")],
            _console(
                lambda c: f"/platform/organizations/{c.acme_as(deleted=True)}/restore", {"restore-reason": "Mistake"}
            ),
        ),
        "platform.purge": Route(
            [(ACME, "org.purged"), (PLATFORM, "platform.org_purged")],
            _console(
                lambda c: f"/platform/organizations/{c.acme_as(deleted=True)}/purge",
                {"purge-reason": "Owner asked", "purge-confirm": "acme"},
            ),
        ),
        "platform.disable_user": Route(
            [(PLATFORM, "platform.user_disabled")],
            _console(lambda c: f"/platform/users/{c.member_id('outsider')}/disable", {"disable-reason": "Abuse"}),
        ),
        "platform.enable_user": Route(
            [(PLATFORM, "platform.user_enabled")],
            _console(lambda c: f"/platform/users/{c.disabled_user()}/enable", {"enable-reason": "Appeal"}),
        ),
        "platform.send_password_reset": Route(
            [(PLATFORM, "platform.password_reset_sent"), (PLATFORM, "auth.password_reset_requested")],
            _console(
                lambda c: f"/platform/users/{c.member_id('outsider')}/password-reset", {"reset-reason": "Locked out"}
            ),
        ),
        "platform.impersonate": Route(
            [(PLATFORM, "platform.impersonation_started")],
            _console(
                lambda c: f"/platform/users/{c.member_id('member')}/impersonate",
                {"impersonate-reason": "Ticket about exports", "impersonate-ticket": "SUP-1"},
            ),
        ),
        "platform.retry_job": Route(
            [(PLATFORM, "platform.job_retried")],
            lambda c: Call("/platform/jobs/retry", None, c.superadmin(), {"job_id": c.job(failed=True)}),
        ),
        "platform.cancel_job": Route(
            [(PLATFORM, "platform.job_cancelled")],
            lambda c: Call("/platform/jobs/cancel", None, c.superadmin(), {"job_id": c.job()}),
        ),
    }
)

# Mutating endpoints deliberately not exercised here, with the reason and the test that checks their events.
UNMAPPED: dict[str, str] = {
    **dict.fromkeys(
        (
            "auth.passkey_sign_in_options",
            "auth.passkey_sign_in",
            "auth.second_factor_passkey_options",
            "auth.second_factor_passkey",
            "auth.step_up_passkey_options",
            "auth.step_up_passkey",
            "account.passkey_options",
            "account.add_passkey",
            "account.passkey_confirm_options",
        ),
        "JSON for static/js/passkeys.js (a WebAuthn ceremony needs an authenticator's signed answer): "
        "tests/auth/test_passkeys.py and tests/auth/test_step_up.py check the events "
        "(auth.passkey_added, auth.login, auth.passkey_failed, auth.step_up, auth.step_up_failed); "
        "the options endpoints draw a challenge and record nothing",
    ),
    **{
        f"api.{name}": "the JSON API (a key, JSON bodies, no browser session): "
        "tests/api/test_audited_writes.py checks each write's events, recorded as the key"
        for name in (
            "change_role",
            "create_invitations",
            "create_project",
            "create_role",
            "create_webhook",
            "update_webhook",
            "delete_webhook",
            "rotate_webhook_secret",
            "disable_webhook",
            "enable_webhook",
            "send_test_event",
            "redeliver",
            "replay_failed",
            "deactivate_member",
            "delete_project",
            "reactivate_member",
            "remove_member",
            "resend_invitation",
            "revoke_invitation",
            "update_organization",
            "update_project",
            "update_role",
        )
    },
    "scim.endpoint": "SCIM 2.0 (a token, SCIM JSON, no browser session): tests/scim/test_protocol.py checks "
    "the events of each change and of each refusal, recorded with actor type scim",
    "platform.update_plan": "needs the plan's current version and every field of its form: "
    "tests/platform/test_plans.py checks platform.plan_updated",
    "platform.set_override": "tests/platform/test_plans.py checks org.entitlement_overridden and "
    "platform.entitlement_overridden (both logs)",
    "platform.remove_override": "tests/platform/test_plans.py checks both logs' override_removed events",
    "sso.update": "needs an issuer whose discovery document answers (a real provider): "
    "tests/sso/test_portal.py checks sso.connection_changed, and that no secret reaches the log",
    **{
        f"sso_setup.{name}": "the setup-link portal (a browser that opened a setup link, no account): "
        "tests/sso/test_portal.py checks its events, recorded as the IT contact"
        for name in ("create", "update", "test")
    },
    "saml.acs": "a SAML response signed by a real IdP for a request the flow started: tests/sso/test_saml_acs.py "
    "checks sso.saml_assertion_accepted on success and, for every hostile response, sso.sign_in_refused and "
    "nothing else",
    "sso_flow.callback": "the identity provider's answer (a real provider): tests/sso/test_oidc_sign_in.py and "
    "test_oidc_hostile.py check sso.sign_in, sso.user_provisioned, sso.sign_in_refused; test_portal.py "
    "sso.connection_tested",
    "platform.stop_impersonating": "needs a browser inside a support session, which this table's clients "
    "cannot be; tests/platform/test_support.py checks its events (platform.impersonation_ended)",
}


def mutating_endpoints(app) -> set[str]:
    return {r.endpoint for r in app.url_map.iter_rules() if (r.methods or set()) & MUTATING}


def test_every_mutating_endpoint_is_mapped(app):
    missing = mutating_endpoints(app) - set(ROUTES) - set(UNMAPPED)
    assert not missing, (
        f"mutating endpoints without an audit expectation: {sorted(missing)} - add them to ROUTES in {__file__}"
    )


def test_no_stale_entries(app):
    assert not (set(ROUTES) - mutating_endpoints(app)), "ROUTES names endpoints that no longer exist"


def _snapshot(owner_engine) -> int:
    with owner_engine.connect() as c:
        return c.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar()


def _new_events(owner_engine, world, since: int) -> list[tuple[str, str]]:
    from app.audit import PLATFORM_ORG_ID

    names = {world.acme.id: "acme", world.globex.id: "globex", PLATFORM_ORG_ID: "platform"}
    with owner_engine.connect() as c:
        rows = c.execute(
            text("SELECT organization_id, action FROM audit_events WHERE id > :s ORDER BY id"), {"s": since}
        ).all()
    return [(names.get(r.organization_id, "new"), r.action) for r in rows]


def _client(app, world, who, slug):
    if who is None:
        return app.test_client()
    if callable(who):  # a client made ready by the route's builder (Ctx.between_steps)
        return who(app)
    user = world.users[who] if isinstance(who, str) else who
    return sign_in(app, user, slug)


def _send(app, world, call: Call, as_user=None):
    who = call.as_user if as_user is None else as_user
    c = _client(app, world, who, call.slug)
    # A file is given as (bytes, name): a fresh stream each send (the refused one reads it too).
    data = {
        k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) and isinstance(v[0], bytes) else v
        for k, v in call.data.items()
    }
    data["csrf_token"] = csrf_token(c, call.slug)
    return c.open(url(call.slug, call.path), method=call.method, data=data, environ_base={"REMOTE_ADDR": "192.0.2.10"})


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_mutating_route_writes_exactly_its_events(app, world, owner_engine, endpoint):
    spec = ROUTES[endpoint]
    ctx = Ctx(app, world)
    call = spec.build(ctx)
    rule_endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert endpoint in rule_endpoints
    if spec.refused_as:
        before = _snapshot(owner_engine)
        r = _send(app, world, call, as_user=spec.refused_as)
        assert r.status_code == 403, f"{endpoint} as {spec.refused_as}: {r.status_code}"
        run_due_jobs(app)
        assert _new_events(owner_engine, world, before) == [], f"{endpoint}: a refused request wrote events"
    before = _snapshot(owner_engine)
    r = _send(app, world, call)
    assert r.status_code in spec.ok, f"{endpoint}: {r.status_code} {r.get_data(as_text=True)[:800]}"
    run_due_jobs(app)  # the events of the jobs the request enqueued count as its own (a reset request's)
    got = _new_events(owner_engine, world, before)
    assert Counter(got) == Counter(spec.expect), f"{endpoint}: expected {spec.expect}, got {got}"

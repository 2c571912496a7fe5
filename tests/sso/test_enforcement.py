"""Enforce SSO: with the security policy allowing single sign-on only, members
at a verified domain can no longer sign in with a password; break-glass
Owners still can, with their second factor, and every such sign-in is audited
and mailed to the other Owners."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import UserSession
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from tests import factories as f
from tests.conftest import csrf_token, url
from tests.sso.conftest import make_connection


def _enforce(org, break_glass=()):
    with all_organizations(reason="test: SSO-only policy"):
        db.session.refresh(org)
        org.settings = {
            **(org.settings or {}),
            "security": {"sign_in_methods": ["sso"], "break_glass_user_ids": [str(u.id) for u in break_glass]},
        }
        db.session.commit()


def _password_login(client, email, use_password=True):
    data = {"email": email, "password": f.PASSWORD, "csrf_token": csrf_token(client)}
    if use_password:
        data["use_password"] = "1"
    return client.post(url(None, "/login"), data=data)


def _sessions_of(user):
    with all_organizations(reason="test"):
        return db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).all()


def test_members_at_a_verified_domain_cannot_sign_in_with_a_password(app, client, sso_org, world, oidc_peer):
    make_connection(sso_org, oidc_peer)
    _enforce(sso_org)
    r = _password_login(client, "member@acme.test")
    assert r.status_code == 403
    assert "requires single sign-on" in r.get_data(as_text=True)
    assert _sessions_of(world.users["member"]) == []


def test_without_enforcement_the_password_still_works(app, client, sso_org, world, oidc_peer):
    make_connection(sso_org, oidc_peer)
    assert _password_login(client, "member@acme.test").status_code == 302


def test_enforcement_needs_an_enabled_connection(app, client, sso_org, world, oidc_peer):
    """A policy of SSO only, with no connection on, must not lock everyone out."""
    make_connection(sso_org, oidc_peer, status="disabled")
    _enforce(sso_org)
    assert _password_login(client, "member@acme.test").status_code == 302


def test_members_at_other_domains_keep_their_password(app, client, sso_org, world, oidc_peer):
    make_connection(sso_org, oidc_peer)
    _enforce(sso_org)
    assert _password_login(client, "consultant@example.test").status_code == 302


def test_a_break_glass_owner_signs_in_with_password_and_second_factor_and_the_other_owners_are_told(
    app, client, sso_org, world, oidc_peer, mailbox
):
    owner = world.users["owner"]
    f.enrol_totp(owner)
    other = f.make_user("owner2@acme.test", "Second Owner")
    f.add_member(sso_org, other, "owner")
    make_connection(sso_org, oidc_peer)
    _enforce(sso_org, break_glass=[owner])
    r = _password_login(client, "owner@acme.test")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/second-factor")
    r = client.post(url(None, "/login/second-factor"), data={"code": f.totp_code(), "csrf_token": csrf_token(client)})
    assert r.status_code == 302
    assert _sessions_of(owner)
    with tenant_context(sso_org.id):
        events = (
            db.session.execute(select(AuditEvent).where(AuditEvent.action == "sso.break_glass_sign_in")).scalars().all()
        )
    assert len(events) == 1 and events[0].meta["email"] == "owner@acme.test"
    msg = mailbox.last("owner2@acme.test")
    assert "Break-glass sign-in to Acme Corporation" in msg["Subject"]
    assert "owner@acme.test" in mailbox.text(msg)
    assert not [m for m in mailbox.to("owner@acme.test") if "Break-glass" in m["Subject"]]


def test_a_break_glass_owner_without_a_second_factor_is_refused(app, client, sso_org, world, oidc_peer):
    owner = world.users["owner"]
    make_connection(sso_org, oidc_peer)
    _enforce(sso_org, break_glass=[owner])
    r = _password_login(client, "owner@acme.test")
    assert r.status_code == 403 and "needs a second factor" in r.get_data(as_text=True)
    assert _sessions_of(owner) == []


def test_break_glass_is_for_owners_only(app, client, sso_org, world, oidc_peer):
    admin = world.users["admin"]
    f.enrol_totp(admin)
    make_connection(sso_org, oidc_peer)
    _enforce(sso_org, break_glass=[admin])
    assert _password_login(client, "admin@acme.test").status_code == 403


SECURITY = {"idle_minutes": "", "absolute_hours": "", "ip_allowlist": "", "sign_in_methods": "sso"}


def _policy(org):
    from app.tenancy import policy

    with all_organizations(reason="test"):
        db.session.refresh(org)
        return policy.for_org(org)


def test_an_owner_marks_break_glass_owners_on_the_security_page(app, sso_org, world, login):
    from tests.sso.conftest import post_form

    c = login(world.users["owner"], "acme")
    page = c.get(url("acme", "/settings/security")).get_data(as_text=True)
    assert "Break-glass Owners" in page and "Acme Owner (owner@acme.test)" in page
    data = {**SECURITY, "break_glass": str(world.users["owner"].id), "version": str(_org_version(sso_org))}
    assert post_form(c, "acme", "/settings/security", data).status_code == 302
    policy = _policy(sso_org)
    assert policy.break_glass_user_ids == (str(world.users["owner"].id),)
    assert policy.sign_in_methods == ("sso",)


def test_only_owners_can_be_break_glass(app, sso_org, world, login):
    from tests.sso.conftest import post_form

    c = login(world.users["owner"], "acme")
    data = {**SECURITY, "break_glass": str(world.users["admin"].id), "version": str(_org_version(sso_org))}
    r = post_form(c, "acme", "/settings/security", data)
    assert r.status_code == 422 and "Only active Owners can be break-glass" in r.get_data(as_text=True)
    assert _policy(sso_org).break_glass_user_ids == ()


def _org_version(org):
    with all_organizations(reason="test"):
        db.session.refresh(org)
        return org.version

"""OIDC sign-in against a real provider (node-oidc-provider): just-in-time
provisioning, refreshed profile, home-realm discovery, "Sign in with SSO"."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import User, UserSession
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Membership
from tests.conftest import APEX, csrf_token, url
from tests.sso.conftest import continued, make_connection, run_sign_in


def _start(org):
    return f"http://{APEX}/sso/start/{org.id}"


def _membership(org, email):
    """The membership's values (a plain object: the row cannot reload outside its organization)."""
    from types import SimpleNamespace

    db.session.expire_all()
    with tenant_context(org.id):
        m = (
            db.session.execute(select(Membership).join(User, User.id == Membership.user_id).where(User.email == email))
            .unique()
            .scalar_one_or_none()
        )
        if m is None:
            return None
        return SimpleNamespace(user_id=m.user_id, role=m.role, role_source=m.role_source, status=m.status)


def _actions(org):
    with tenant_context(org.id):
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def test_first_sso_sign_in_creates_the_user_and_membership_with_the_default_role(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer, default_role="viewer")
    r = run_sign_in(client, oidc_peer, _start(sso_org), "alice")
    assert r.status_code == 302
    assert "acme." in r.headers["Location"]  # on to the organization, through the hand-off
    m = _membership(sso_org, "alice@acme.test")
    assert m is not None and m.role == "viewer" and m.status == "active"
    with all_organizations(reason="test"):
        user = db.session.execute(select(User).where(User.email == "alice@acme.test")).scalar_one()
        assert user.name == "Alice Anders" and user.password_hash is None and user.is_verified
        assert db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).first() is not None
    actions = _actions(sso_org)
    assert {"sso.user_provisioned", "sso.sign_in", "member.joined", "auth.login"} <= set(actions)


def test_sso_sign_in_refreshes_name_and_email_each_time(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer)
    run_sign_in(client, oidc_peer, _start(sso_org), "alice")
    oidc_peer_users = oidc_peer.users
    oidc_peer_users["alice"]["name"] = "Alice Renamed"
    try:
        # The provider reads its users at start: a renamed user needs a new provider.
        from tests.sso.oidc_peer import OidcPeer

        peer2 = OidcPeer(oidc_peer.redirect_uris, {**oidc_peer_users}).start()
    finally:
        oidc_peer_users["alice"]["name"] = "Alice Anders"
    try:
        from app import crypto  # noqa: F401
        from app.sso.models import SsoConnection

        with tenant_context(sso_org.id):
            conn = db.session.execute(select(SsoConnection)).scalar_one()
            conn.config = {**conn.config, "issuer": peer2.issuer}
            db.session.commit()
        client2 = app.test_client()
        r = run_sign_in(client2, peer2, _start(sso_org), "alice")
        assert r.status_code == 302
    finally:
        peer2.stop()
    with all_organizations(reason="test"):
        names = db.session.execute(select(User.name).where(User.email == "alice@acme.test")).scalars().all()
    assert names == ["Alice Renamed"]


def test_an_idp_cannot_sign_in_an_address_outside_the_organizations_verified_domains(
    app, client, sso_org, world, oidc_peer
):
    """mallory's provider asserts owner@globex.test: never a way into that account."""
    make_connection(sso_org, oidc_peer)
    r = run_sign_in(client, oidc_peer, _start(sso_org), "mallory")
    assert r.status_code == 403
    assert "not at a domain this organization has verified" in r.get_data(as_text=True)
    assert _membership(sso_org, "owner@globex.test") is None
    with all_organizations(reason="test"):
        assert (
            db.session.execute(select(UserSession).where(UserSession.user_id == world.users["globex_owner"].id)).first()
            is None
        )
    assert "sso.sign_in_refused" in _actions(sso_org)


def test_a_disabled_connection_does_not_start_a_sign_in(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer, status="disabled")
    assert client.get(_start(sso_org)).status_code == 404


def test_a_deactivated_member_is_refused_by_sso(app, client, sso_org, oidc_peer):
    from tests import factories as f

    make_connection(sso_org, oidc_peer)
    bob = f.make_user("bob@acme.test", "Bob")
    f.add_member(sso_org, bob, "member", status="deactivated")
    r = run_sign_in(client, oidc_peer, _start(sso_org), "bob")
    assert r.status_code == 403
    assert "deactivated" in r.get_data(as_text=True)


def test_home_realm_discovery_sends_an_address_at_a_verified_sso_domain_to_its_idp(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer)
    r = client.post(
        url(None, "/login"), data={"email": "newcomer@acme.test", "password": "", "csrf_token": csrf_token(client)}
    )
    assert r.status_code == 200  # a page that moves on (a form's redirects stay on our hosts)
    assert continued(r).startswith(f"/sso/start/{sso_org.id}")
    r = client.get(urljoin_apex(continued(r)))
    assert r.status_code == 302 and r.headers["Location"].startswith(oidc_peer.issuer + "/auth")
    assert "login_hint=newcomer%40acme.test" in r.headers["Location"]


def test_an_address_elsewhere_signs_in_with_a_password_as_before(app, client, sso_org, world, oidc_peer):
    make_connection(sso_org, oidc_peer)
    r = client.post(
        url(None, "/login"),
        data={"email": "owner@globex.test", "password": "", "csrf_token": csrf_token(client)},
    )
    assert r.status_code == 422  # the password is asked for, not SSO


def test_an_org_host_visitor_is_offered_sign_in_with_sso(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer)
    r = client.get(url(None, "/login") + "?next=" + url("acme", "/projects/"))
    body = r.get_data(as_text=True)
    assert "Sign in with SSO to Acme Corporation" in body
    assert f"/sso/start/{sso_org.id}" in body


def test_no_sso_offer_without_an_enabled_connection(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer, status="tested")
    r = client.get(url(None, "/login") + "?next=" + url("acme", "/projects/"))
    assert "Sign in with SSO" not in r.get_data(as_text=True)


def urljoin_apex(path: str) -> str:
    return f"http://{APEX}{path}"


# --------------------------------------------------------------------------- groups -> roles
def _map(org, group, role):
    from app.rbac.group_roles import GroupRoleMapping

    with tenant_context(org.id):
        db.session.add(GroupRoleMapping(source="sso", group_name=group, role=role))
        db.session.commit()


def test_a_new_user_lands_with_the_role_their_groups_map_to(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer, default_role="viewer")
    _map(sso_org, "tenantry-admins", "admin")
    _map(sso_org, "engineering", "member")
    run_sign_in(client, oidc_peer, _start(sso_org), "alice")
    m = _membership(sso_org, "alice@acme.test")
    assert m.role == "admin" and m.role_source == "sso"  # most permissions wins


def test_a_managed_member_follows_their_groups_at_each_sign_in(app, client, sso_org, oidc_peer):
    make_connection(sso_org, oidc_peer, default_role="viewer")
    run_sign_in(client, oidc_peer, _start(sso_org), "carol")
    assert _membership(sso_org, "carol@acme.test").role == "viewer"  # no mapping yet: the default
    _map(sso_org, "tenantry-managers", "manager")
    run_sign_in(app.test_client(), oidc_peer, _start(sso_org), "carol")
    m = _membership(sso_org, "carol@acme.test")
    assert m.role == "manager" and m.role_source == "sso"


def test_a_manual_role_change_of_a_managed_member_holds_over_later_sso_sign_ins(
    app, client, sso_org, world, login, oidc_peer
):
    """An admin demotes an SSO-managed member by hand: the source becomes
    manual, and the next SSO sign-in (whose groups map to Manager) leaves the
    admin's choice in place."""
    from tests.sso.conftest import post_form

    make_connection(sso_org, oidc_peer)
    _map(sso_org, "tenantry-managers", "manager")
    run_sign_in(client, oidc_peer, _start(sso_org), "carol")
    carol = _membership(sso_org, "carol@acme.test")
    assert carol.role == "manager" and carol.role_source == "sso"
    admin = login(world.users["owner"], "acme")
    r = post_form(admin, "acme", f"/members/{carol.user_id}/role", {"role": "viewer", "confirm": "1"})
    assert r.status_code in (200, 302), r.status_code
    m = _membership(sso_org, "carol@acme.test")
    assert m.role == "viewer" and m.role_source == "manual"
    run_sign_in(app.test_client(), oidc_peer, _start(sso_org), "carol")
    m = _membership(sso_org, "carol@acme.test")
    assert m.role == "viewer" and m.role_source == "manual"


def _offer_href(page: str) -> str:
    import html
    import re

    m = re.search(r'<a class="btn" href="([^"]+)">Sign in with SSO to Acme Corporation</a>', page)
    assert m, page[:600]
    return html.unescape(m.group(1))


def test_a_visitor_to_the_org_host_clicks_sign_in_with_sso_and_lands_there(app, client, sso_org, oidc_peer):
    """The organization's own address → its sign-in page offers "Sign in with
    SSO" (nobody types an address) → the provider → back on the page asked for."""
    from tests.conftest import follow

    make_connection(sso_org, oidc_peer)
    r = follow(client, client.get(url("acme", "/projects/")))
    assert r.status_code == 200
    start = _offer_href(r.get_data(as_text=True))
    assert start.startswith(f"/sso/start/{sso_org.id}?next=")
    r = run_sign_in(client, oidc_peer, f"http://{APEX}{start}", "alice")
    r = follow(client, r)
    assert r.status_code == 200 and r.request.url == url("acme", "/projects/")
    assert _membership(sso_org, "alice@acme.test").status == "active"


def test_sign_in_with_sso_from_the_org_hosts_login_page_does_not_loop(app, client, sso_org, oidc_peer):
    from tests.conftest import follow

    make_connection(sso_org, oidc_peer)
    r = follow(client, client.get(url("acme", "/login")))
    start = _offer_href(r.get_data(as_text=True))
    r = follow(client, run_sign_in(client, oidc_peer, f"http://{APEX}{start}", "alice"))
    assert r.status_code == 200
    assert r.request.host.startswith("acme.")

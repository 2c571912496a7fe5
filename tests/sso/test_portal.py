"""The self-serve portal: connections created, configured against the real
provider, tested (what the provider sent is shown), enabled; bad input is a
422 beside its field with nothing changed; setup links for an IT contact."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, text, update

from app.audit.models import AuditEvent
from app.extensions import db
from app.scoping import tenant_context
from app.sso.models import SsoConnection, SsoSetupLink
from tests.conftest import APEX, url
from tests.sso.conftest import continued, make_connection, post_form
from tests.sso.oidc_peer import CLIENT_ID, CLIENT_SECRET


def _conns(org):
    with tenant_context(org.id):
        db.session.expire_all()
        return list(db.session.execute(select(SsoConnection)).scalars())


def _actions(org):
    with tenant_context(org.id):
        return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def _create(c, name="Okta"):
    r = post_form(c, "acme", "/settings/sso/", {"provider": "okta", "protocol": "oidc", "name": name})
    assert r.status_code == 302, r.get_data(as_text=True)[:400]
    return r.headers["Location"].rsplit("/", 1)[-1]


def _settings(peer, **over):
    data = {
        "name": "Okta",
        "issuer": peer.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": "openid email profile groups",
        "groups_claim": "groups",
        "default_role": "member",
        "version": "1",
    }
    data.update(over)
    return data


def test_a_plan_without_sso_gets_the_not_on_your_plan_page(app, world, login):
    c = login(world.users["owner"], "acme")  # acme is on Pro
    r = c.get(url("acme", "/settings/sso/"))
    assert r.status_code == 403
    assert "not part of the" in r.get_data(as_text=True)


def test_members_without_settings_sso_are_refused(app, sso_org, world, login):
    for role in ("manager", "member", "viewer"):
        assert login(world.users[role], "acme").get(url("acme", "/settings/sso/")).status_code == 403


def test_owner_creates_configures_tests_and_enables_an_oidc_connection(app, sso_org, world, login, oidc_peer):
    c = login(world.users["owner"], "acme")
    assert "No connection yet" in c.get(url("acme", "/settings/sso/")).get_data(as_text=True)
    cid = _create(c)
    page = c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert f"http://{APEX}/sso/callback/oidc" in page  # our redirect URI to copy
    assert "Okta Admin Console" in page  # the provider's own steps
    r = post_form(c, "acme", f"/settings/sso/{cid}", _settings(oidc_peer))
    assert r.status_code == 302, r.get_data(as_text=True)[:600]
    (conn,) = _conns(sso_org)
    assert conn.config["issuer"] == oidc_peer.issuer and conn.status == "draft"
    assert CLIENT_SECRET not in (conn.secret_encrypted or "")  # stored encrypted
    # Enabling before a test is refused, beside the button.
    r = post_form(c, "acme", f"/settings/sso/{cid}/enable", {"version": str(conn.version)})
    assert r.status_code == 422 and "Test the connection first" in r.get_data(as_text=True)
    # The test: portal -> apex -> provider -> apex callback -> back to the portal.
    r = post_form(c, "acme", f"/settings/sso/{cid}/test")
    assert urlsplit(continued(r)).netloc == APEX
    r = c.get(continued(r))
    assert r.status_code == 302 and r.headers["Location"].startswith(oidc_peer.issuer)
    back = oidc_peer.sign_in(r.headers["Location"], "alice", stop_at=f"http://{APEX}/")
    r = c.get(back)
    assert r.status_code == 302 and r.headers["Location"] == url("acme", f"/settings/sso/{cid}")
    page = c.get(url("acme", f"/settings/sso/{cid}")).get_data(as_text=True)
    assert "Test passed" in page and "alice@acme.test" in page
    assert "engineering, tenantry-admins" in page  # the groups received
    (conn,) = _conns(sso_org)
    assert conn.status == "tested"
    # Nobody was signed in by the test.
    from app.auth.models import User

    with tenant_context(sso_org.id):
        assert db.session.execute(select(User).where(User.email == "alice@acme.test")).first() is None
    r = post_form(c, "acme", f"/settings/sso/{cid}/enable", {"version": str(conn.version)})
    assert r.status_code == 302
    assert _conns(sso_org)[0].status == "enabled"
    r = post_form(c, "acme", f"/settings/sso/{cid}/disable", {"version": str(_conns(sso_org)[0].version)})
    assert r.status_code == 302 and _conns(sso_org)[0].status == "disabled"
    actions = _actions(sso_org)
    for a in (
        "sso.connection_created",
        "sso.connection_changed",
        "sso.connection_tested",
        "sso.connection_enabled",
        "sso.connection_disabled",
    ):
        assert a in actions, a


def test_the_audit_log_never_holds_the_client_secret(app, sso_org, world, login, oidc_peer, owner_engine):
    c = login(world.users["owner"], "acme")
    cid = _create(c)
    post_form(c, "acme", f"/settings/sso/{cid}", _settings(oidc_peer))
    with owner_engine.connect() as conn:
        dump = conn.execute(text("SELECT changes::text || metadata::text FROM audit_events")).scalars().all()
    assert not any(CLIENT_SECRET in d for d in dump)


def test_bad_settings_are_422_beside_the_field_and_change_nothing(app, sso_org, world, login, oidc_peer):
    c = login(world.users["owner"], "acme")
    cid = _create(c)
    cases = [
        ({"issuer": "not a url"}, "issuer", "Enter the issuer URL"),
        ({"issuer": "http://127.0.0.1:9"}, "issuer", "discovery document"),
        ({"client_id": ""}, "client_id", "Enter the client id"),
        ({"client_secret": ""}, "client_secret", "client secret"),
        ({"scopes": "email profile"}, "scopes", "openid"),
        ({"groups_claim": "gr oups!"}, "groups_claim", "claim name"),
        ({"default_role": "owner"}, "default_role", "role new members get"),
        ({"name": ""}, "name", "name"),
    ]
    for over, fieldname, message in cases:
        r = post_form(c, "acme", f"/settings/sso/{cid}", _settings(oidc_peer, **over))
        body = r.get_data(as_text=True)
        assert r.status_code == 422, (over, r.status_code)
        assert message.lower() in body.lower(), (over, body[:200])
        assert f'id="{fieldname}-error"' in body or "callout--danger" in body, over
    (conn,) = _conns(sso_org)
    assert conn.config == {"default_role": "member"} and conn.secret_encrypted is None


def test_a_stale_settings_form_is_409(app, sso_org, world, login, oidc_peer):
    c = login(world.users["owner"], "acme")
    cid = _create(c)
    assert post_form(c, "acme", f"/settings/sso/{cid}", _settings(oidc_peer)).status_code == 302
    r = post_form(c, "acme", f"/settings/sso/{cid}", _settings(oidc_peer, name="Other", version="1"))
    assert r.status_code == 409


def test_new_connection_bad_input_is_422(app, sso_org, world, login):
    c = login(world.users["owner"], "acme")
    for data, message in [
        ({"provider": "okta", "protocol": "oidc", "name": ""}, "name"),
        ({"provider": "okta", "protocol": "kerberos", "name": "X"}, "OpenID Connect or SAML"),
        ({"provider": "ping", "protocol": "oidc", "name": "X"}, "identity provider"),
    ]:
        r = post_form(c, "acme", "/settings/sso/", data)
        assert r.status_code == 422, data
        assert message in r.get_data(as_text=True)
    assert _conns(sso_org) == []


def test_only_one_connection_is_enabled_at_a_time(app, sso_org, world, login, oidc_peer):
    make_connection(sso_org, oidc_peer, status="enabled", name="First")
    second = make_connection(sso_org, oidc_peer, status="tested", name="Second")
    c = login(world.users["owner"], "acme")
    r = post_form(c, "acme", f"/settings/sso/{second.id}/enable", {"version": "1"})
    assert r.status_code == 422 and "Disable “First” first" in r.get_data(as_text=True)


def test_a_failed_test_shows_why(app, sso_org, world, login, oidc_peer):
    conn = make_connection(sso_org, oidc_peer, status="draft")
    c = login(world.users["owner"], "acme")
    r = post_form(c, "acme", f"/settings/sso/{conn.id}/test")
    r = c.get(continued(r))
    state = dict(p.split("=", 1) for p in urlsplit(r.headers["Location"]).query.split("&"))["state"]
    r = c.get(f"http://{APEX}/sso/callback/oidc?error=access_denied&state={state}")
    assert r.status_code == 302
    page = c.get(url("acme", f"/settings/sso/{conn.id}")).get_data(as_text=True)
    assert "Test failed" in page and "access_denied" in page
    assert _conns(sso_org)[0].status == "draft"


# --------------------------------------------------------------------------- setup links
def _issue_link(c) -> str:
    r = post_form(c, "acme", "/settings/sso/links", {"label": "it@acme.test"})
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    start = body.index("http://acme." + APEX + "/sso-setup/open/")
    return body[start : body.index("<", start)]


def test_a_setup_link_lets_an_it_contact_without_an_account_configure_and_test(app, sso_org, world, login, oidc_peer):
    admin = login(world.users["admin"], "acme")
    link = _issue_link(admin)
    it = app.test_client()
    r = it.get(link)
    assert r.status_code == 302
    assert "Single sign-on for Acme Corporation" in it.get(url("acme", "/sso-setup/")).get_data(as_text=True)
    r = post_form(it, "acme", "/sso-setup/", {"provider": "entra", "protocol": "oidc", "name": "Entra"})
    assert r.status_code == 302
    cid = r.headers["Location"].rsplit("/", 1)[-1]
    page = it.get(url("acme", f"/sso-setup/{cid}")).get_data(as_text=True)
    assert "Microsoft Entra admin center" in page and "An administrator of Acme Corporation turns" in page
    r = post_form(it, "acme", f"/sso-setup/{cid}", _settings(oidc_peer, name="Entra"))
    assert r.status_code == 302
    r = post_form(it, "acme", f"/sso-setup/{cid}/test")
    r = it.get(continued(r))
    back = oidc_peer.sign_in(r.headers["Location"], "alice", stop_at=f"http://{APEX}/")
    r = it.get(back)
    assert r.headers["Location"] == url("acme", f"/sso-setup/{cid}")
    assert "Test passed" in it.get(url("acme", f"/sso-setup/{cid}")).get_data(as_text=True)
    # The setup link cannot enable: that stays with the admins.
    assert post_form(it, "acme", f"/settings/sso/{cid}/enable", {"version": "3"}).status_code in (302, 404)
    assert _conns(sso_org)[0].status == "tested"
    with tenant_context(sso_org.id):
        rows = db.session.execute(
            select(AuditEvent.action, AuditEvent.actor_label).where(AuditEvent.action.like("sso.%"))
        ).all()
    labels = dict(rows)
    assert "sso.setup_link_issued" in labels and "sso.setup_link_used" in labels
    assert labels["sso.connection_created"] == "IT contact (setup link for it@acme.test)"


def test_a_setup_link_opens_once(app, sso_org, world, login):
    link = _issue_link(login(world.users["owner"], "acme"))
    assert app.test_client().get(link).status_code == 302
    assert app.test_client().get(link).status_code == 410


def test_a_revoked_setup_link_stops_working_at_once(app, sso_org, world, login):
    owner = login(world.users["owner"], "acme")
    link = _issue_link(owner)
    it = app.test_client()
    it.get(link)
    assert it.get(url("acme", "/sso-setup/")).status_code == 200
    with tenant_context(sso_org.id):
        link_id = db.session.execute(select(SsoSetupLink.id)).scalar_one()
    assert post_form(owner, "acme", f"/settings/sso/links/{link_id}/revoke").status_code == 302
    assert it.get(url("acme", "/sso-setup/")).status_code == 410
    assert "sso.setup_link_revoked" in _actions(sso_org)


def test_an_expired_setup_link_is_410(app, sso_org, world, login):
    link = _issue_link(login(world.users["owner"], "acme"))
    with tenant_context(sso_org.id):
        db.session.execute(update(SsoSetupLink).values(expires_at=SsoSetupLink.created_at - timedelta(seconds=1)))
        db.session.commit()
    assert app.test_client().get(link).status_code == 410


def test_an_unknown_setup_link_or_no_link_is_410(app, sso_org):
    it = app.test_client()
    assert it.get(url("acme", "/sso-setup/open/forged-token")).status_code == 410
    assert it.get(url("acme", "/sso-setup/")).status_code == 410


def test_a_setup_link_is_good_for_its_own_organization_only(app, sso_org, world, login):
    link = _issue_link(login(world.users["owner"], "acme"))
    token = link.rsplit("/", 1)[-1]
    assert app.test_client().get(url("globex", f"/sso-setup/open/{token}")).status_code in (404, 410)

"""Settings sections: each refuses bad input beside its field (422, nothing
changed), saves good input, and the organization's pages follow."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests.conftest import csrf_token, url
from tests.settings.images import jpeg, png


def _org_row(owner_engine, slug="acme"):
    with owner_engine.connect() as c:
        return c.execute(
            text("SELECT version, slug, name, settings FROM organizations WHERE slug = :s"), {"s": slug}
        ).one()


def _post(c, path, data, slug="acme", **kw):
    return c.post(url(slug, path), data={"csrf_token": csrf_token(c, slug), **data}, **kw)


# --------------------------------------------------------------------------- section navigation
def test_section_nav_shows_only_the_sections_the_role_may_open(world, login):
    owner = login(world.users["owner"], "acme").get(url("acme", "/settings/")).get_data(as_text=True)
    for label in ("General", "Branding", "Security", "Notifications", "Plan and usage", "Danger zone"):
        assert f">{label}</a>" in owner
    manager = login(world.users["manager"], "acme").get(url("acme", "/settings/")).get_data(as_text=True)
    assert ">Plan and usage</a>" in manager
    for label in ("General", "Branding", "Security", "Danger zone"):
        assert f">{label}</a>" not in manager


def test_a_viewer_cannot_open_settings(world, login):
    c = login(world.users["viewer"], "acme")
    for path in ("/settings/", "/settings/security", "/settings/branding", "/settings/plan"):
        assert c.get(url("acme", path)).status_code == 403


# --------------------------------------------------------------------------- general
def test_general_saves_contact_email_and_time_zone_and_dates_follow_it(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    data = {"name": "Acme Corporation", "slug": "acme", "contact_email": "Ops@Acme.test", "timezone": "Asia/Tokyo"}
    assert _post(c, "/settings/general", {**data, "version": str(v)}).status_code == 302
    row = _org_row(owner_engine)
    assert row.settings["timezone"] == "Asia/Tokyo" and row.settings["contact_email"] == "ops@acme.test"
    # The audit log shows times in the organization's zone (JST).
    assert "JST" in c.get(url("acme", "/audit/")).get_data(as_text=True)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("timezone", "Mars/Olympus", "Choose a time zone"),
        ("contact_email", "not-an-address", "Enter an e-mail address"),
        ("slug", "-bad-", "Use lower-case letters"),
        ("slug", "www", "reserved"),
        ("slug", "globex", "already taken"),
    ],
)
def test_general_refuses_bad_input_beside_the_field(world, login, owner_engine, field, value, message):
    c = login(world.users["owner"], "acme")
    before = _org_row(owner_engine)
    data = {
        "name": "Acme Corporation",
        "slug": "acme",
        "contact_email": "",
        "timezone": "",
        "version": str(before.version),
    }
    r = _post(c, "/settings/general", {**data, field: value})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and message in html
    assert f'id="{field}-error"' in html  # beside the field
    assert _org_row(owner_engine) == before


def test_a_new_slug_redirects_the_old_host_and_nobody_can_take_it(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    r = _post(c, "/settings/general", {"name": "Acme Corporation", "slug": "acme-corp", "version": str(v)})
    assert r.status_code == 200 and "acme-corp." in r.get_data(as_text=True)
    assert _org_row(owner_engine, "acme-corp").slug == "acme-corp"
    old = c.get(url("acme", "/projects/?page=2"))
    assert old.status_code == 301
    assert old.headers["Location"].startswith("http://acme-corp.") and old.headers["Location"].endswith(
        "/projects/?page=2"
    )
    # Globex may not take the old address for 30 days.
    g = login(world.users["globex_owner"], "globex")
    gv = _org_row(owner_engine, "globex").version
    r = _post(g, "/settings/general", {"name": "Globex", "slug": "acme", "version": str(gv)}, slug="globex")
    assert r.status_code == 422 and "already taken" in r.get_data(as_text=True)
    # Nor may a new organization.
    from app.errors import UserError
    from app.tenancy import services

    with pytest.raises(UserError, match="already taken"):
        services.create_organization("Another Acme", "acme", world.users["outsider"])


def test_an_old_slug_tells_only_members_where_the_organization_went(world, login, owner_engine, client):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    _post(c, "/settings/general", {"name": "Acme Corporation", "slug": "acme-corp", "version": str(v)})
    # Anonymous: sent to sign in, exactly as on an address nobody ever had.
    anon = client.get(url("acme", "/projects/"))
    never = client.get(url("no-such-org-ever", "/projects/"))
    assert anon.status_code == never.status_code == 302
    assert "acme-corp" not in anon.headers["Location"] and "acme-corp" not in anon.get_data(as_text=True)
    # Signed in but not a member: the same "not a member" 404 as anywhere.
    o = login(world.users["outsider"], "acme")
    r = o.get(url("acme", "/projects/"))
    assert r.status_code == 404 and "acme-corp" not in r.get_data(as_text=True)
    # A member follows it.
    assert c.get(url("acme", "/projects/")).status_code == 301


def test_an_old_slug_stops_redirecting_after_30_days(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    _post(c, "/settings/general", {"name": "Acme Corporation", "slug": "acme-corp", "version": str(v)})
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE retired_slugs SET expires_at = now() - interval '1 second' WHERE slug = 'acme'"))
    assert c.get(url("acme", "/projects/")).status_code in (302, 404)  # no redirect to acme-corp any more
    from app.tenancy.services import slug_taken

    assert slug_taken("acme") is False


# --------------------------------------------------------------------------- branding
def test_colour_that_fails_aa_is_refused_with_its_ratio(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    before = _org_row(owner_engine)
    r = _post(c, "/settings/branding/colour", {"colour": "#ffeb3b", "version": str(before.version)})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "1.2" in html and ":1" in html and "4.5:1" in html
    assert _org_row(owner_engine) == before


@pytest.mark.parametrize("colour", ["blue", "#12345", "#ggg000", "rgb(0,0,0)"])
def test_a_colour_that_is_not_hex_is_refused(world, login, owner_engine, colour):
    c = login(world.users["owner"], "acme")
    before = _org_row(owner_engine)
    r = _post(c, "/settings/branding/colour", {"colour": colour, "version": str(before.version)})
    assert r.status_code == 422 and "#rrggbb" in r.get_data(as_text=True)
    assert _org_row(owner_engine) == before


def test_colour_is_applied_through_the_org_stylesheet(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    assert _post(c, "/settings/branding/colour", {"colour": "#1D4ED8", "version": str(v)}).status_code == 302
    page = c.get(url("acme", "/projects/")).get_data(as_text=True)
    assert "/settings/branding/theme.css?v=1d4ed8" in page
    css = c.get(url("acme", "/settings/branding/theme.css?v=1d4ed8"))
    assert css.content_type.startswith("text/css") and "--accent: #1d4ed8" in css.get_data(as_text=True)
    # Globex pages do not get acme's colours.
    g = login(world.users["globex_owner"], "globex")
    assert "theme.css" not in g.get(url("globex", "/projects/")).get_data(as_text=True)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<html><script>alert(1)</script></html>", "Upload a PNG or JPEG"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>", "not a readable PNG"),
        (png(8, 8), "16 to 2048"),
        (png(4000, 20), "16 to 2048"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (600 * 1024), "the most is 512 KB"),
    ],
    ids=["html", "svg-script", "png-that-is-html", "too-small", "too-wide", "oversized"],
)
def test_a_bad_logo_is_refused_beside_the_field(world, login, owner_engine, data, message):
    import io

    c = login(world.users["owner"], "acme")
    before = _org_row(owner_engine)
    r = _post(
        c,
        "/settings/branding/logo",
        {"logo": (io.BytesIO(data), "logo.png"), "version": str(before.version)},
        content_type="multipart/form-data",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and message in html and 'id="logo-error"' in html
    assert _org_row(owner_engine) == before
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organization_logos")).scalar() == 0


@pytest.mark.parametrize("make, content_type", [(png, "image/png"), (jpeg, "image/jpeg")])
def test_a_logo_is_stored_and_served_with_its_type_and_nosniff(world, login, owner_engine, make, content_type):
    import io

    c = login(world.users["owner"], "acme")
    data = make()
    v = _org_row(owner_engine).version
    r = _post(
        c,
        "/settings/branding/logo",
        {"logo": (io.BytesIO(data), "picture.gif"), "version": str(v)},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    page = c.get(url("acme", "/projects/")).get_data(as_text=True)
    assert 'data-testid="org-logo"' in page
    served = c.get(url("acme", "/settings/branding/logo"))
    assert served.status_code == 200 and served.data == data
    assert served.headers["Content-Type"] == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    # Another organization's member never gets it: globex has none (404), acme's is not reachable there.
    g = login(world.users["globex_owner"], "globex")
    assert g.get(url("globex", "/settings/branding/logo")).status_code == 404


def test_branding_is_403_with_a_clear_page_on_a_plan_without_it(world, login):
    c = login(world.users["globex_owner"], "globex")
    r = c.get(url("globex", "/settings/branding"))
    assert r.status_code == 403 and "not part of the Free plan" in r.get_data(as_text=True)
    r = _post(c, "/settings/branding/colour", {"colour": "#1d4ed8", "version": "1"}, slug="globex")
    assert r.status_code == 403


# --------------------------------------------------------------------------- security
SECURITY = {"idle_minutes": "", "absolute_hours": "", "ip_allowlist": "", "sign_in_methods": "password"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("ip_allowlist", "10.0.0.0/33", "not an IP address or CIDR range"),
        ("ip_allowlist", "example.com", "not an IP address or CIDR range"),
        ("ip_allowlist", "2001:db8::/129", "not an IP address or CIDR range"),
        ("idle_minutes", "-5", "whole number"),
        ("idle_minutes", "999999", "at most"),
        ("absolute_hours", "abc", "whole number"),
        ("sign_in_methods", "", "at least one way"),
        ("require_2fa_grace_days", "abc", "whole number of days from 0 to 90"),
        ("require_2fa_grace_days", "-1", "whole number of days from 0 to 90"),
        ("require_2fa_grace_days", "91", "whole number of days from 0 to 90"),
    ],
)
def test_security_refuses_bad_input_beside_the_field(world, login, owner_engine, field, value, message):
    c = login(world.users["admin"], "acme")
    before = _org_row(owner_engine)
    data = {**SECURITY, field: value, "version": str(before.version)}
    if field == "require_2fa_grace_days":
        data["require_2fa"] = "y"
    r = _post(c, "/settings/security", data)
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert _org_row(owner_engine) == before


def test_an_allowlist_without_my_address_needs_confirmation(world, login, owner_engine):
    c = login(world.users["admin"], "acme")
    before = _org_row(owner_engine)
    data = {**SECURITY, "ip_allowlist": "203.0.113.0/24", "version": str(before.version)}
    r = _post(c, "/settings/security", data)
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "lock you out" in html and 'name="confirm_lockout"' in html
    assert _org_row(owner_engine) == before
    assert _post(c, "/settings/security", {**data, "confirm_lockout": "y"}).status_code == 302
    assert _org_row(owner_engine).settings["security"]["ip_allowlist"] == ["203.0.113.0/24"]


def test_the_allowlist_blocks_other_addresses_with_a_page_naming_the_policy(world, login, owner_engine):
    c = login(world.users["admin"], "acme")
    v = _org_row(owner_engine).version
    data = {**SECURITY, "ip_allowlist": "127.0.0.1\n2001:db8::/32", "version": str(v)}
    assert _post(c, "/settings/security", data).status_code == 302
    assert c.get(url("acme", "/projects/")).status_code == 200  # from 127.0.0.1
    r = c.get(url("acme", "/projects/"), environ_base={"REMOTE_ADDR": "198.51.100.7"})
    html = r.get_data(as_text=True)
    assert r.status_code == 403 and "IP allowlist" in html and "198.51.100.7" in html
    assert "Acme Project" not in html
    assert c.get(url("acme", "/projects/"), environ_base={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    # Globex has no policy: the same address is welcome there.
    g = login(world.users["consultant"], "globex")
    assert g.get(url("globex", "/projects/"), environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 200


def test_an_org_idle_lifetime_signs_out_an_older_session(world, login, owner_engine):
    c = login(world.users["admin"], "acme")
    v = _org_row(owner_engine).version
    assert _post(c, "/settings/security", {**SECURITY, "idle_minutes": "15", "version": str(v)}).status_code == 302
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE user_sessions SET last_seen_at = now() - interval '20 minutes' WHERE id = :id"),
            {"id": c.user_session_id},
        )
    r = c.get(url("acme", "/projects/"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    with owner_engine.connect() as conn:
        revoked = conn.execute(
            text("SELECT revoked_at FROM user_sessions WHERE id = :id"), {"id": c.user_session_id}
        ).scalar()
    assert revoked is not None


def test_members_may_create_api_keys_is_readable_through_the_policy(world, login, owner_engine):
    from app.tenancy import policy

    c = login(world.users["admin"], "acme")
    v = _org_row(owner_engine).version
    assert _post(c, "/settings/security", {**SECURITY, "version": str(v)}).status_code == 302  # box unticked
    from app.tenancy.policy import from_settings

    assert from_settings(_org_row(owner_engine).settings).members_may_create_api_keys is False
    assert policy.SecurityPolicy().members_may_create_api_keys is True


# --------------------------------------------------------------------------- notifications
def test_security_change_mails_only_the_admins_who_opted_in(world, login, owner_engine, mailbox):
    admin = login(world.users["admin"], "acme")
    # The owner turns "security policy changed" off; the admin keeps it.
    owner = login(world.users["owner"], "acme")
    kinds = ["member_joined", "role_changed", "webhook_disabled", "domain_unverified"]
    assert _post(owner, "/settings/notifications", {"kinds": kinds, "version": "0"}).status_code == 302
    mailbox.clear()
    v = _org_row(owner_engine).version
    assert _post(admin, "/settings/security", {**SECURITY, "idle_minutes": "60", "version": str(v)}).status_code == 302
    to = sorted(m["To"] for m in mailbox.messages)
    assert "admin@acme.test" in to and "owner@acme.test" not in to
    assert all(not t.endswith("@globex.test") for t in to)


def test_recipients_follow_role_and_choice(world, login):
    from app.extensions import db
    from app.scoping import tenant_context
    from app.tenancy import notify
    from app.tenancy.models import Organization

    with tenant_context(world.acme.id):
        org = db.session.get(Organization, world.acme.id)
        emails = sorted(m.user.email for m in notify.recipients(org, "role_changed"))
    assert emails == ["admin@acme.test", "owner@acme.test"]  # managers and below may not change roles
    with pytest.raises(KeyError):
        notify.recipients(org, "no_such_kind")


# --------------------------------------------------------------------------- plan and usage
def test_plan_page_shows_labelled_meters_and_turns_red_at_the_limit(world, login, owner_engine):
    c = login(world.users["manager"], "acme")
    html = c.get(url("acme", "/settings/plan")).get_data(as_text=True)
    assert "<meter" in html and 'aria-labelledby="meter-1-label"' in html
    assert "Seats (members and pending invitations)" in html and "Webhook endpoints" in html
    assert "API requests" in html and "Single sign-on (SAML, OIDC)" in html
    # Globex (Free) at its seat limit: red, with what happens.
    # (plans are seeded once, not reset between tests: put it back)
    with owner_engine.begin() as conn:
        was = conn.execute(text("SELECT max_members FROM plans WHERE key = 'free'")).scalar()
        conn.execute(text("UPDATE plans SET max_members = 3 WHERE key = 'free'"))
    try:
        g = login(world.users["globex_owner"], "globex")
        html = g.get(url("globex", "/settings/plan")).get_data(as_text=True)
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("UPDATE plans SET max_members = :m WHERE key = 'free'"), {"m": was})
    assert "usage--full" in html and "At the limit" in html and "refused until a seat is freed" in html


def test_member_joined_and_role_changed_mail_the_admins_who_opted_in(world, login, mailbox):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    owner = login(world.users["owner"], "acme")
    kinds = ["role_changed", "webhook_disabled", "domain_unverified", "security_changed"]  # not member_joined
    assert _post(owner, "/settings/notifications", {"kinds": kinds, "version": "0"}).status_code == 302
    mailbox.clear()
    with tenant_context(world.acme.id):
        audit.record("member.joined", target=world.users["outsider"], actor="system")
        db.session.commit()
    assert sorted(m["To"] for m in mailbox.messages) == ["admin@acme.test"]
    assert "joined Acme Corporation" in mailbox.messages[0]["Subject"]
    mailbox.clear()
    with tenant_context(world.acme.id):
        audit.record(
            "member.role_changed",
            target=world.users["member"],
            before={"role": "member"},
            after={"role": "manager"},
            actor="system",
        )
        db.session.rollback()  # a change that rolls back mails nobody
    assert mailbox.messages == []


def test_a_refused_save_keeps_its_section_marked_in_the_nav(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    v = _org_row(owner_engine).version
    html = _post(c, "/settings/branding/colour", {"colour": "nope", "version": str(v)}).get_data(as_text=True)
    assert 'is-active" href="/settings/branding" aria-current="page"' in html


def test_the_domains_pages_sit_in_the_settings_navigation(world, login):
    html = login(world.users["owner"], "acme").get(url("acme", "/settings/domains/")).get_data(as_text=True)
    assert 'aria-label="Settings sections"' in html
    assert 'is-active" href="/settings/domains/" aria-current="page"' in html


def test_the_usage_hook_answers_named_limits_only(world):
    """The platform looks every answer up as a limit (a plan change compares
    them): an area that answers another name breaks it."""
    from app import hooks
    from app.extensions import db
    from app.scoping import tenant_context
    from app.tenancy import entitlements
    from app.tenancy.models import Organization

    with tenant_context(world.acme.id):
        org = db.session.get(Organization, world.acme.id)
        answers = hooks.usage_of.send(org)
    names = set().union(*(set(a or {}) for a in answers))
    assert names and names <= set(entitlements.limit_names())


def test_keys_without_expiry_are_a_policy_switch_saved_and_audited(world, login, owner_engine):
    c = login(world.users["admin"], "acme")
    v = _org_row(owner_engine).version
    data = {**SECURITY, "members_may_create_api_keys": "y", "api_keys_may_never_expire": "y", "version": str(v)}
    assert _post(c, "/settings/security", data).status_code == 302
    assert _org_row(owner_engine).settings["security"]["api_keys_may_never_expire"] is True
    page = c.get(url("acme", "/settings/security")).get_data(as_text=True)
    box = re.search(r'<input[^>]*name="api_keys_may_never_expire"[^>]*>', page).group(0)
    assert "checked" in box
    with owner_engine.connect() as conn:
        changes = conn.exec_driver_sql(
            "SELECT changes::text FROM audit_events WHERE action = 'org.security_changed' ORDER BY id DESC LIMIT 1"
        ).scalar_one()
    assert "api_keys_may_never_expire" in changes

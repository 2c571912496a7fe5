"""Webhook endpoints: create (secret shown once, stored encrypted), bad input
of every kind is 422 beside the field with nothing saved, the plan's limit,
permissions, isolation, edit versions, rotation, disable and enable."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from app import crypto
from app.scoping import tenant_context
from app.webhooks import services
from tests.conftest import UNKNOWN_ID, url

PUBLIC = "https://93.184.215.14/hooks"  # a literal public address: no DNS needed


def endpoints(owner_engine, org_id=None):
    sql = "SELECT * FROM webhook_endpoints" + (" WHERE organization_id = :o" if org_id else "") + " ORDER BY created_at"
    with owner_engine.connect() as c:
        return c.execute(text(sql), {"o": org_id}).mappings().all()


def audit_actions(owner_engine, org_id):
    with owner_engine.connect() as c:
        return (
            c.execute(
                text(
                    "SELECT action FROM audit_events WHERE organization_id = :o AND action LIKE 'webhook.%' ORDER BY id"
                ),
                {"o": org_id},
            )
            .scalars()
            .all()
        )


def create(post, c, slug="acme", **data):
    form = {"url": PUBLIC, "description": "CRM sync", "event_types": ["project.created", "member.joined"]}
    form.update(data)
    return post(c, slug, "/webhooks/", form)


# --------------------------------------------------------------------------- create
def test_admin_creates_an_endpoint_and_sees_its_secret_once_stored_encrypted(world, login, post, owner_engine):
    c = login(world.users["admin"], "acme")
    assert c.get(url("acme", "/webhooks/new")).status_code == 200
    r = create(post, c)
    assert r.status_code == 201
    secret = re.search(rb'value="(whsec_[A-Za-z0-9+/=]+)"', r.data).group(1).decode()
    [row] = endpoints(owner_engine, world.acme.id)
    assert (
        row["url"] == PUBLIC and row["enabled"] and sorted(row["event_types"]) == ["member.joined", "project.created"]
    )
    assert secret not in row["secret_encrypted"]
    assert crypto.decrypt(row["secret_encrypted"]).decode() == secret
    # The secret is never shown again.
    page = c.get(url("acme", f"/webhooks/{row['id']}"))
    assert page.status_code == 200 and secret.encode() not in page.data
    assert audit_actions(owner_engine, world.acme.id) == ["webhook.created"]


def test_a_double_submit_creates_one_endpoint(world, login, post, owner_engine):
    c = login(world.users["admin"], "acme")
    key = "k" * 32
    assert create(post, c, submit_key=key).status_code == 201
    again = create(post, c, submit_key=key)
    assert again.status_code == 302 and "/webhooks/" in again.headers["Location"]
    assert len(endpoints(owner_engine, world.acme.id)) == 1


BAD = [
    ({"url": ""}, "url", "Enter the URL that receives the webhooks."),
    ({"url": "not a url"}, "url", "Enter a valid URL"),
    ({"url": "ftp://93.184.215.14/x"}, "url", "Enter a valid URL"),
    ({"url": "https://"}, "url", "Enter a valid URL"),
    ({"url": "https://93.184.215.14:99999/x"}, "url", "Enter a valid URL"),
    ({"url": "https://user:pw@93.184.215.14/x"}, "url", "Leave credentials out"),
    ({"url": "https://no-such-host.invalid/hook"}, "url", "cannot be found"),
    ({"url": "https://" + "a" * 2000 + ".com/"}, "url", "Use at most 2,000 characters."),
    ({"event_types": []}, "event_types", "Choose at least one event to send."),
    ({"event_types": ["project.created", "project.launched"]}, "event_types", "is not an event webhooks can send"),
    ({"event_types": ["<script>"]}, "event_types", "is not an event webhooks can send"),
    ({"description": "d" * 501}, "description", "Use at most 500 characters."),
]


@pytest.mark.parametrize("data, field, message", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_422_beside_the_field_and_saves_nothing(world, login, post, owner_engine, data, field, message):
    c = login(world.users["admin"], "acme")
    r = create(post, c, **data)
    assert r.status_code == 422
    html = r.get_data(as_text=True).replace("&#39;", "'")
    error = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', html)
    assert error and message in error.group(1), html[:3000]
    assert endpoints(owner_engine) == []
    assert audit_actions(owner_engine, world.acme.id) == []


# Every range the guard refuses, as literal addresses (IPv4, IPv6, IPv4-mapped)
# and a name that resolves to loopback. The suite runs with the guard on.
BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("[::1]", "loopback"),
    ("localhost", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.0.10", "private"),
    ("[fc00::1]", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("[fd00:ec2::254]", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("169.254.10.1", "link-local"),
    ("[fe80::1]", "link-local"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("100.64.0.1", "special-purpose"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:169.254.169.254]", "cloud metadata"),
    ("[64:ff9b::a00:1]", "reserved"),
    ("[2002:a00:1::]", "special-purpose"),
]


@pytest.mark.parametrize("host, kind", BLOCKED, ids=[b[0] for b in BLOCKED])
def test_a_blocked_address_is_refused_when_saved(world, login, post, owner_engine, host, kind):
    c = login(world.users["admin"], "acme")
    r = create(post, c, url=f"https://{host}:8443/hook")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    error = re.search(r'id="url-error"[^>]*>([^<]*)<', html)
    assert error and "cannot be sent to" in error.group(1) and kind in error.group(1), error and error.group(1)
    assert endpoints(owner_engine) == []


def test_plain_http_is_refused_outside_development(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "DEVELOPMENT", False)
    from app.errors import UserError
    from app.webhooks import guard

    with pytest.raises(UserError, match="https://"):
        guard.check_url("http://93.184.215.14/hook")
    guard.check_url("https://93.184.215.14/hook")  # passes


def test_loopback_is_never_allowed_in_production_even_when_asked(app, world, monkeypatch):
    from app.webhooks import guard

    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK", True)
    monkeypatch.setitem(app.config, "DEVELOPMENT", False)
    with pytest.raises(guard.BlockedAddress):
        guard.check_url("https://127.0.0.1/hook")
    monkeypatch.setitem(app.config, "DEVELOPMENT", True)
    guard.check_url("https://127.0.0.1/hook")  # development with the setting: allowed


def test_the_plans_endpoint_limit_holds(world, login, post, owner_engine):
    c = login(world.users["globex_owner"], "globex")  # Free: one endpoint
    assert create(post, c, "globex").status_code == 201
    r = create(post, c, "globex", url="https://93.184.215.15/other")
    assert r.status_code == 422
    assert "Your plan allows 1 webhook endpoint" in r.get_data(as_text=True)
    assert len(endpoints(owner_engine, world.globex.id)) == 1


# --------------------------------------------------------------------------- access and isolation
def test_who_sees_and_who_changes(world, login, post, make_endpoint):
    eid, _ = make_endpoint(world.acme, PUBLIC)
    viewer = login(world.users["member"], "acme")
    assert viewer.get(url("acme", "/webhooks/")).status_code == 403
    admin = login(world.users["admin"], "acme")
    assert admin.get(url("acme", "/webhooks/")).status_code == 200
    assert admin.get(url("acme", f"/webhooks/{eid}")).status_code == 200
    manager = login(world.users["manager"], "acme")
    assert manager.get(url("acme", "/webhooks/new")).status_code == 403
    assert post(manager, "acme", f"/webhooks/{eid}/rotate").status_code == 403


def test_another_organizations_endpoint_is_404(world, login, post, make_endpoint):
    eid, _ = make_endpoint(world.globex, PUBLIC)
    c = login(world.users["admin"], "acme")
    for path in (f"/webhooks/{eid}", f"/webhooks/{eid}/edit", f"/webhooks/{UNKNOWN_ID}", "/webhooks/nope"):
        assert c.get(url("acme", path)).status_code == 404
    assert post(c, "acme", f"/webhooks/{eid}/rotate").status_code == 404
    assert post(c, "acme", f"/webhooks/{eid}/delete").status_code == 404
    assert b"93.184.215.14" not in c.get(url("acme", "/webhooks/")).data


# --------------------------------------------------------------------------- edit, delete
def test_edit_saves_and_a_stale_edit_is_409(world, login, post, make_endpoint, owner_engine):
    eid, _ = make_endpoint(world.acme, PUBLIC)
    c = login(world.users["admin"], "acme")
    form = {"url": "https://93.184.215.20/new", "description": "x", "event_types": ["role.created"], "version": "1"}
    r = post(c, "acme", f"/webhooks/{eid}", form)
    assert r.status_code == 302
    [row] = endpoints(owner_engine)
    assert row["url"] == "https://93.184.215.20/new" and row["event_types"] == ["role.created"] and row["version"] == 2
    stale = post(c, "acme", f"/webhooks/{eid}", dict(form, description="y"))
    assert stale.status_code == 409
    assert endpoints(owner_engine)[0]["description"] == "x"
    bad = post(c, "acme", f"/webhooks/{eid}", dict(form, url="https://10.0.0.1/", version="2"))
    assert bad.status_code == 422 and endpoints(owner_engine)[0]["url"] == "https://93.184.215.20/new"
    assert audit_actions(owner_engine, world.acme.id) == ["webhook.created", "webhook.updated"]


def test_delete_removes_the_endpoint_and_is_audited(world, login, post, make_endpoint, owner_engine):
    eid, _ = make_endpoint(world.acme, PUBLIC)
    c = login(world.users["admin"], "acme")
    assert c.get(url("acme", f"/webhooks/{eid}/delete")).status_code == 200
    assert post(c, "acme", f"/webhooks/{eid}/delete").status_code == 302
    assert endpoints(owner_engine) == []
    assert audit_actions(owner_engine, world.acme.id)[-1] == "webhook.deleted"


# --------------------------------------------------------------------------- rotation, disable
def test_rotation_shows_a_new_secret_once_and_keeps_the_old_one_for_24_hours(
    world, login, post, make_endpoint, owner_engine
):
    eid, old = make_endpoint(world.acme, PUBLIC)
    c = login(world.users["admin"], "acme")
    r = post(c, "acme", f"/webhooks/{eid}/rotate")
    assert r.status_code == 200
    new = re.search(rb'value="(whsec_[A-Za-z0-9+/=]+)"', r.data).group(1).decode()
    assert new != old
    [row] = endpoints(owner_engine)
    assert crypto.decrypt(row["secret_encrypted"]).decode() == new
    assert crypto.decrypt(row["previous_secret_encrypted"]).decode() == old
    with owner_engine.connect() as conn:
        grace = conn.execute(text("SELECT previous_secret_expires_at - now() FROM webhook_endpoints")).scalar()
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)
    assert audit_actions(owner_engine, world.acme.id)[-1] == "webhook.secret_rotated"


def test_disable_and_enable_are_audited(world, login, post, make_endpoint, owner_engine):
    eid, _ = make_endpoint(world.acme, PUBLIC)
    c = login(world.users["admin"], "acme")
    assert post(c, "acme", f"/webhooks/{eid}/disable").status_code == 302
    assert endpoints(owner_engine)[0]["enabled"] is False
    assert post(c, "acme", f"/webhooks/{eid}/enable").status_code == 302
    assert endpoints(owner_engine)[0]["enabled"] is True
    assert audit_actions(owner_engine, world.acme.id)[-2:] == ["webhook.disabled", "webhook.enabled"]


def test_the_events_offered_are_the_audit_catalogue(world, login):
    from app.audit import catalogue

    c = login(world.users["admin"], "acme")
    html = c.get(url("acme", "/webhooks/new")).get_data(as_text=True)
    offered = set(re.findall(r'name="event_types" value="([^"]+)"', html))
    assert offered == set(catalogue.ALL)
    with tenant_context(world.acme.id):
        assert [g for g, _ in services.event_groups()] == [g for g, _ in catalogue.groups()]

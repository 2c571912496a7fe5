"""Step-up: each sensitive action is refused (and audited, nothing changed)
without a sign-in in the last 10 minutes; the person is sent to confirm it
is them on the same host, comes back to the action's form, and the action
then goes through. The return address never leaves the host."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text, update

from app.auth.models import UserSession
from app.extensions import db
from app.scoping import all_organizations
from app.tenancy import lifecycle
from app.util import utcnow
from tests import factories as f
from tests.auth import authenticator
from tests.auth.conftest import post
from tests.auth.test_passkeys import jpost, register
from tests.conftest import host, url

PW = f.PASSWORD


def age(client, minutes: int = 11) -> None:
    """Make ``client``'s sign-in ``minutes`` old (its last full authentication)."""
    db.session.execute(
        update(UserSession)
        .where(UserSession.id == client.user_session_id)
        .values(authenticated_at=utcnow() - timedelta(minutes=minutes))
    )
    db.session.commit()


def step_up_target(response) -> str:
    """The ``next`` of a redirect to the step-up page (asserting it is one)."""
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    parts = urlsplit(response.headers["Location"])
    assert parts.path == "/auth/step-up" and not parts.netloc
    return parse_qs(parts.query)["next"][0]


@dataclass
class Action:
    slug: str | None
    actor: object
    path: str
    data: dict
    back: str  # the form the person returns to
    done: object  # () -> bool: did the action happen?
    ok: int = 302
    code: bool = False  # the actor has an authenticator app


def _scalar(owner_engine, sql, **params):
    with owner_engine.connect() as c:
        return c.execute(text(sql), params).scalar()


def _actions(world, owner_engine) -> dict:
    admin = world.users["admin"]
    root = f.make_user("root@tenantry.test", "Root", superadmin=True)
    with all_organizations(reason="test: a deleted organization to purge"):
        lifecycle.delete(world.globex)
    db.session.commit()
    acme, globex = world.acme.id, world.globex.id
    member = world.users["member"]
    return {
        "delete organization": Action(
            "acme",
            world.users["owner"],
            "/settings/delete",
            {"confirm": "acme"},
            "/settings/danger",
            lambda: _scalar(owner_engine, "SELECT deleted_at FROM organizations WHERE id = :o", o=acme) is not None,
        ),
        "transfer ownership": Action(
            "acme",
            world.users["owner"],
            "/roles/transfer",
            {"user_id": str(admin.id), "confirm": "yes"},
            "/roles/transfer",
            lambda: (
                _scalar(
                    owner_engine,
                    "SELECT role FROM memberships WHERE organization_id = :o AND user_id = :u",
                    o=acme,
                    u=admin.id,
                )
                == "owner"
            ),
        ),
        "security policy": Action(
            "acme",
            world.users["owner"],
            "/settings/security",
            {
                "idle_minutes": "30",
                "absolute_hours": "",
                "ip_allowlist": "",
                "sign_in_methods": "password",
                "version": str(world.acme.version),
            },
            "/settings/security",
            lambda: (
                "30"
                in json.dumps(_scalar(owner_engine, "SELECT settings FROM organizations WHERE id = :o", o=acme) or {})
            ),
        ),
        "API key with administrative scopes": Action(
            "acme",
            admin,
            "/api-keys/",
            {"name": "Ops", "scopes": ["members:invite"], "expires_in_days": "30", "submit_key": "k-ops"},
            "/api-keys/new",
            lambda: _scalar(owner_engine, "SELECT count(*) FROM api_keys WHERE organization_id = :o", o=acme) == 1,
            ok=201,
        ),
        "purge (platform)": Action(
            None,
            root,
            f"/platform/organizations/{globex}/purge",
            {"purge-reason": "Owner asked", "purge-confirm": "globex"},
            f"/platform/organizations/{globex}",
            lambda: _scalar(owner_engine, "SELECT purged_at FROM organizations WHERE id = :o", o=globex) is not None,
            code=True,
        ),
        "impersonate (platform)": Action(
            None,
            root,
            f"/platform/users/{member.id}/impersonate",
            {"impersonate-reason": "Ticket 9", "impersonate-ticket": "SUP-9"},
            f"/platform/users/{member.id}",
            lambda: _scalar(owner_engine, "SELECT count(*) FROM user_sessions WHERE impersonator_id IS NOT NULL") == 1,
            code=True,
        ),
    }


NAMES = [
    "delete organization",
    "transfer ownership",
    "security policy",
    "API key with administrative scopes",
    "purge (platform)",
    "impersonate (platform)",
]


@pytest.mark.parametrize("name", NAMES)
def test_sensitive_action_is_refused_without_a_recent_sign_in_and_allowed_after_step_up(
    name, world, login, owner_engine, audit_log
):
    action = _actions(world, owner_engine)[name]
    client = login(action.actor, action.slug)
    age(client)
    r = post(client, action.path, action.data, slug=action.slug)
    assert step_up_target(r) == action.back
    assert not action.done()
    refused = audit_log.last("auth.step_up_required")
    assert refused["metadata"]["support_session"] is False
    # The step-up page, on the same host.
    page = client.get(url(action.slug, r.headers["Location"]))
    assert page.status_code == 200 and "Confirm it is you" in page.get_data(as_text=True)
    data = {"password": PW, "next": action.back}
    if action.code:
        data["code"] = f.totp_code()
    r = post(client, "/auth/step-up", data, slug=action.slug)
    assert r.status_code == 302 and r.headers["Location"] == action.back
    assert audit_log.last("auth.step_up")["metadata"]["method"].startswith("password")
    # Back at the form, the action goes through.
    assert client.get(url(action.slug, action.back)).status_code == 200
    r = post(client, action.path, action.data, slug=action.slug)
    assert r.status_code == action.ok, r.get_data(as_text=True)[:800]
    assert action.done()


def test_a_sign_in_within_ten_minutes_needs_no_step_up(world, login, owner_engine):
    client = login(world.users["owner"], "acme")
    age(client, minutes=9)
    r = post(client, "/settings/delete", {"confirm": "acme"}, slug="acme")
    assert r.status_code == 302 and "step-up" not in r.headers["Location"]


def test_an_api_key_without_administrative_scopes_needs_no_step_up(world, login, owner_engine):
    admin = login(world.users["admin"], "acme")
    age(admin)
    data = {"name": "CI", "scopes": ["projects:view"], "expires_in_days": "30", "submit_key": "k-ci"}
    assert post(admin, "/api-keys/", data, slug="acme").status_code == 201


def test_a_get_is_sent_back_to_the_same_address(world, login):
    client = login(world.users["owner"], "acme")
    age(client)
    r = client.get(url("acme", "/roles/transfer?x=1"))
    assert step_up_target(r) == "/roles/transfer?x=1"


def test_an_htmx_request_is_redirected_with_hx_redirect(world, login):
    client = login(world.users["owner"], "acme")
    age(client)
    r = client.get(url("acme", "/roles/transfer"), headers={"HX-Request": "true"})
    assert "/auth/step-up" in r.headers.get("HX-Redirect", "")


@pytest.mark.parametrize(
    "target",
    ["https://evil.test/", "//evil.test/x", "/\\evil.test", "http://acme.tenantry.localhost/x", "javascript:alert(1)"],
)
def test_the_step_up_page_only_returns_to_a_path_on_its_own_host(world, login, target):
    client = login(world.users["owner"], "acme")
    age(client)
    page = client.get(url("acme", "/auth/step-up"), query_string={"next": target}).get_data(as_text=True)
    assert "evil" not in page and "javascript:" not in page
    r = post(client, "/auth/step-up", {"password": PW, "next": target}, slug="acme")
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_a_wrong_password_at_step_up_is_422_audited_and_changes_nothing(world, login, audit_log):
    client = login(world.users["owner"], "acme")
    age(client)
    r = post(client, "/auth/step-up", {"password": "not-the-password", "next": "/settings/danger"}, slug="acme")
    assert r.status_code == 422 and "not your current password" in r.get_data(as_text=True)
    assert "auth.step_up_failed" in audit_log.actions()
    r = post(client, "/settings/delete", {"confirm": "acme"}, slug="acme")
    assert step_up_target(r) == "/settings/danger"


def test_an_account_with_an_authenticator_app_steps_up_with_password_and_code(world, login, audit_log):
    owner = world.users["owner"]
    f.enrol_totp(owner)
    client = login(owner, "acme")
    age(client)
    r = post(client, "/auth/step-up", {"password": PW, "next": "/settings/danger"}, slug="acme")
    assert r.status_code == 422 and "code from your authenticator app" in r.get_data(as_text=True)
    r = post(client, "/auth/step-up", {"password": PW, "code": "000000", "next": "/settings/danger"}, slug="acme")
    assert r.status_code == 422
    assert post(client, "/settings/delete", {"confirm": "acme"}, slug="acme").status_code == 302
    r = post(client, "/auth/step-up", {"password": PW, "code": f.totp_code(), "next": "/"}, slug="acme")
    assert r.status_code == 302
    assert audit_log.last("auth.step_up")["metadata"]["method"] == "password+totp"


def test_a_passkey_steps_up_on_an_organization_host(world, login, audit_log, owner_engine):
    owner = world.users["owner"]
    pk = register(login(owner))
    client = login(owner, "acme")
    age(client)
    page = client.get(url("acme", "/auth/step-up?next=/settings/danger")).get_data(as_text=True)
    assert "Confirm with a passkey" in page
    options = jpost(client, "/auth/step-up/passkey/options", slug="acme").get_json()
    r = jpost(
        client,
        "/auth/step-up/passkey",
        {"credential": authenticator.get(pk, options, f"http://{host('acme')}"), "next": "/settings/danger"},
        slug="acme",
    )
    assert r.status_code == 200 and r.get_json()["redirect"] == "/settings/danger"
    assert audit_log.last("auth.step_up")["metadata"]["method"] == "passkey"
    assert post(client, "/settings/delete", {"confirm": "acme"}, slug="acme").status_code == 302
    assert _scalar(owner_engine, "SELECT deleted_at FROM organizations WHERE id = :o", o=world.acme.id) is not None


def test_a_step_up_passkey_response_from_another_session_is_refused(world, login, audit_log):
    owner = world.users["owner"]
    pk = register(login(owner))
    first, second = login(owner, "acme"), login(owner, "acme")
    age(first)
    age(second)
    options = jpost(first, "/auth/step-up/passkey/options", slug="acme").get_json()
    cred = authenticator.get(pk, options, f"http://{host('acme')}")
    r = jpost(second, "/auth/step-up/passkey", {"credential": cred, "next": "/"}, slug="acme")
    assert r.status_code == 422
    assert "auth.step_up_failed" in audit_log.actions()
    rec = db.session.execute(select(UserSession).where(UserSession.id == second.user_session_id)).scalar_one()
    db.session.refresh(rec)
    assert utcnow() - rec.authenticated_at > timedelta(minutes=10)


def test_a_support_session_cannot_step_up(world, login, audit_log):
    root = f.make_user("root@tenantry.test", "Root", superadmin=True)
    console = login(root)
    member = world.users["owner"]
    data = {"impersonate-reason": "Ticket 9", "impersonate-ticket": "SUP-9"}
    assert post(console, f"/platform/users/{member.id}/impersonate", data).status_code == 302
    # The support session (on the apex) acts as the owner; go to the org through the hand-off.
    r = console.get(url(None, "/auth/step-up"))
    assert r.status_code == 403 and "support session" in r.get_data(as_text=True)
    r = post(console, "/auth/step-up", {"password": PW})
    assert r.status_code == 403

"""record(): same transaction, complete catalogue, context captured, no secrets."""

from __future__ import annotations

import uuid

import pytest

from app.scoping import all_organizations
from tests.conftest import csrf_token, url


def test_rolled_back_change_leaves_no_event(world, events):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        audit.record("project.created", target=world.projects["acme"][0], after={"name": "X"})
        db.session.rollback()
    assert events(world.acme) == []


def test_committed_change_has_its_event(world, events):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        project = world.projects["acme"][0]
        pid, pname = project.id, project.name
        ev = audit.record("project.updated", target=project, before={"name": "Old"}, after={"name": "New"})
        db.session.commit()
    rows = events(world.acme)
    assert [r["id"] for r in rows] == [ev.id]
    row = rows[0]
    assert row["action"] == "project.updated"
    assert (row["target_type"], row["target_id"], row["target_label"]) == ("project", str(pid), pname)
    assert row["changes"] == {"name": ["Old", "New"]}
    assert row["actor_type"] == "system"
    assert events(world.globex) == []


def test_event_and_change_commit_together(world, events):
    """The change and its event are one transaction: a commit writes both."""
    from app import audit
    from app.extensions import db
    from app.projects.models import Project
    from app.scoping import tenant_context

    with tenant_context(world.acme.id):
        pid = world.projects["acme"][1].id
        p = db.session.get(Project, (world.acme.id, pid))
        p.name = "Renamed"
        audit.record("project.updated", target=p, before={"name": "x"}, after={"name": "Renamed"})
        db.session.rollback()
        assert db.session.get(Project, (world.acme.id, pid)).name != "Renamed"
    assert events(world.acme) == []


def test_unknown_action_is_refused(world):
    from app import audit
    from app.scoping import tenant_context

    with tenant_context(world.acme.id), pytest.raises(ValueError, match="catalogue"):
        audit.record("project.teleported", target=world.projects["acme"][0])


def test_org_action_outside_any_organization_is_refused(app):
    from app import audit

    with pytest.raises(audit.AuditError):
        audit.record("project.created", target=("project", "1", "x"))


def test_secrets_are_never_stored(world, events, owner_engine):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    secrets = ["hunter2-password", "tok_abcdef123456", "whsec_s3cr3t", "argon2$hash$value", "sk_live_key"]
    with tenant_context(world.acme.id):
        audit.record(
            "webhook.updated",
            target=("webhook", "w1", "Endpoint"),
            before={"url": "https://a.test", "signing_secret": secrets[2], "password": secrets[0]},
            after={"url": "https://b.test", "signing_secret": "whsec_new", "password": "new-" + secrets[0]},
            metadata={
                "api_key": secrets[4],
                "nested": {"accessToken": secrets[1], "password_hash": secrets[3]},
                "plan_key": "pro",
            },
        )
        db.session.commit()
    (row,) = events(world.acme)
    assert row["changes"]["url"] == ["https://a.test", "https://b.test"]
    assert row["changes"]["signing_secret"] == [audit.REDACTED, audit.REDACTED]
    assert row["changes"]["password"] == [audit.REDACTED, audit.REDACTED]
    assert row["metadata"]["api_key"] == audit.REDACTED
    assert row["metadata"]["nested"] == {"accessToken": audit.REDACTED, "password_hash": audit.REDACTED}
    assert row["metadata"]["plan_key"] == "pro"  # allow-listed: not a secret
    from sqlalchemy import text

    with owner_engine.connect() as c:
        dump = c.execute(text("SELECT row_to_json(e)::text FROM audit_events e")).scalar_one()
    for s in secrets:
        assert s not in dump


@pytest.mark.parametrize(
    "name,secret",
    [
        ("password", True),
        ("new_password", True),
        ("passwordHash", True),
        ("api_key", True),
        ("apiKey", True),
        ("token", True),
        ("reset_token_hash", True),
        ("client_secret", True),
        ("totp_secret", True),
        ("recovery_codes", True),
        ("private_key", True),
        ("plan_key", False),
        ("name", False),
        ("email", False),
        ("role", False),
        ("monkey", False),
        ("keyboard_layout", False),
        ("key_prefix", False),
    ],
)
def test_secret_denylist_by_word(name, secret):
    from app.audit import is_secret_field

    assert is_secret_field(name) is secret


def test_request_context_is_captured(world, login, events):
    """Actor, IP, user agent and request id of the request that made the change."""
    c = login(world.users["admin"], "acme")
    rid = "req-" + uuid.uuid4().hex[:12]
    r = c.post(
        url("acme", "/settings/general"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "Acme Renamed", "version": "1"},
        headers={"User-Agent": "AuditTest/1.0", "X-Request-ID": rid},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert r.status_code in (302, 303), r.data[:500]
    (row,) = events(world.acme, "org.settings_changed")
    assert row["actor_type"] == "user"
    assert row["actor_id"] == world.users["admin"].id
    assert "admin@acme.test" in row["actor_label"]
    assert str(row["ip"]) == "203.0.113.7"
    assert row["user_agent"] == "AuditTest/1.0"
    assert row["request_id"] == rid
    assert row["changes"] == {"name": ["Acme Corporation", "Acme Renamed"]}
    assert row["impersonator_id"] is None


def test_support_actor_records_both_identities(world, login, events):
    """A super-admin acting as a user: actor is the user, type support, impersonator kept."""
    from app.auth.models import UserSession
    from app.extensions import db
    from tests import factories as f

    sup = f.make_user("super@tenantry.test", "Sam Super", superadmin=True)
    c = login(world.users["admin"], "acme")
    rec = db.session.get(UserSession, c.user_session_id)
    with all_organizations(reason="test: the platform starts support impersonation"):
        rec.impersonator_id = sup.id
    db.session.commit()
    r = c.post(
        url("acme", "/settings/general"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "Acme Support", "version": "1"},
    )
    assert r.status_code in (302, 303)
    (row,) = events(world.acme, "org.settings_changed")
    assert row["actor_type"] == "support"
    assert row["actor_id"] == world.users["admin"].id
    assert row["impersonator_id"] == sup.id
    assert "super@tenantry.test" in row["actor_label"]


def test_account_event_goes_to_platform_log_and_the_current_organization(world, events):
    from app import audit
    from app.extensions import db
    from app.scoping import tenant_context

    user = world.users["member"]
    audit.record("auth.password_changed", target=user, actor=user)  # apex: no organization
    with tenant_context(world.acme.id):
        audit.record("auth.logout", target=user, actor=user)  # on acme's host
    db.session.commit()
    platform = events(audit.PLATFORM_ORG_ID)
    assert [r["action"] for r in platform] == ["auth.password_changed", "auth.logout"]
    assert [r["action"] for r in events(world.acme)] == ["auth.logout"]
    assert events(world.globex) == []  # the consultant's other organization learns nothing


def test_failed_login_for_unknown_email_is_recorded_without_the_address(client, world, events):
    from app import audit

    typed = "nobody-here@nowhere.test"
    r = client.post(
        url(None, "/login"), data={"csrf_token": csrf_token(client), "email": typed, "password": "my-secret-guess"}
    )
    assert r.status_code == 422
    rows = events(audit.PLATFORM_ORG_ID, "auth.login_failed")
    assert len(rows) == 1
    row = rows[0]
    assert row["actor_type"] == "anonymous"
    assert row["metadata"]["email_domain"] == "nowhere.test"
    assert len(row["metadata"]["email_fingerprint"]) == 16
    flat = repr(row)
    assert typed not in flat and "my-secret-guess" not in flat
    assert events(world.acme) == [] and events(world.globex) == []


def test_catalogue_lists_every_action_recorded_by_the_code():
    """Every literal ``audit.record("x.y", ...)`` in app/ names a catalogued action."""
    import pathlib
    import re

    from app.audit import catalogue

    root = pathlib.Path(__file__).resolve().parents[2] / "app"
    found = set()
    for path in root.rglob("*.py"):
        for m in re.finditer(r"audit\.record\(\s*\n?\s*\"([a-z_]+\.[a-z_]+)\"", path.read_text()):
            found.add(m.group(1))
    missing = found - catalogue.ALL
    assert not missing, f"add to app/audit/catalogue.py: {sorted(missing)}"

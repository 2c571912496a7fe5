"""``flask --app wsgi create-superadmin EMAIL``."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from tests import factories as f


def test_create_superadmin_prompts_for_the_password(app):
    runner = app.test_cli_runner()
    pw = "plum-orbit-cactus-42"
    result = runner.invoke(
        args=["create-superadmin", "Root@Example.test", "--name", "Rita Root"], input=f"{pw}\n{pw}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created super-admin root@example.test" in result.output
    db.session.expire_all()
    user = db.session.execute(select(User).where(User.email == "root@example.test")).scalar_one()
    assert user.is_superadmin and user.is_verified and user.name == "Rita Root"
    client = app.test_client()
    from tests.auth.conftest import post

    assert post(client, "/login", {"email": "root@example.test", "password": pw}).status_code == 302


def test_create_superadmin_refuses_a_weak_password(app):
    result = app.test_cli_runner().invoke(args=["create-superadmin", "root@example.test"], input="password\npassword\n")
    assert result.exit_code == 2 and "too common" in result.output
    assert db.session.execute(select(User)).first() is None


def test_create_superadmin_promotes_an_existing_user(app):
    user = f.make_user("ann@example.test")
    result = app.test_cli_runner().invoke(
        args=["create-superadmin", "ann@example.test"], input="plum-orbit-cactus-42\nplum-orbit-cactus-42\n"
    )
    assert result.exit_code == 0 and "promoted" in result.output
    db.session.expire_all()
    assert db.session.get(User, user.id).is_superadmin


def test_create_superadmin_is_recorded_in_the_platform_log(app, owner_engine, login):
    from sqlalchemy import text

    from app.audit import PLATFORM_ORG_ID, catalogue

    pw = "plum-orbit-cactus-42"
    runner = app.test_cli_runner()
    assert (
        runner.invoke(
            args=["create-superadmin", "root@example.test", "--name", "Rita Root"], input=f"{pw}\n{pw}\n"
        ).exit_code
        == 0
    )
    ann = f.make_user("ann@example.test", "Ann Able")
    assert runner.invoke(args=["create-superadmin", "ann@example.test"], input=f"{pw}\n{pw}\n").exit_code == 0
    with owner_engine.connect() as c:
        rows = [
            dict(r._mapping)
            for r in c.execute(
                text("SELECT * FROM audit_events WHERE action = 'platform.superadmin_granted' ORDER BY id")
            )
        ]
    assert [r["organization_id"] for r in rows] == [PLATFORM_ORG_ID, PLATFORM_ORG_ID]
    root, promoted = rows
    assert (root["actor_type"], root["actor_label"]) == ("system", "flask create-superadmin")
    assert (root["target_type"], root["target_label"]) == ("user", "Rita Root <root@example.test>")
    assert root["metadata"] == {"account": "created", "via": "command line"}
    assert promoted["target_id"] == str(ann.id) and promoted["metadata"]["account"] == "existing"
    assert catalogue.describe(root["action"]) == "Granted super-admin rights"
    # What a super-admin reads in the platform log.
    db.session.expire_all()
    user = db.session.execute(select(User).where(User.email == "root@example.test")).scalar_one()
    f.enrol_totp(user)  # the console needs a second factor
    html = login(user).get("http://tenantry.localhost/platform/audit").get_data(as_text=True)
    assert "Granted super-admin rights" in html and "Ann Able" in html

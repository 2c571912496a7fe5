"""Account deletion: refused for an organization's only owner and for a
wrong confirmation; otherwise the person is erased everywhere while every
audit chain still verifies (the real ``flask audit verify``)."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import select, text

from app import audit
from app.auth.models import User
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import url

EMAIL = "zelda.quux@acme.test"
NAME = "Zelda Quux"
IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64) ZeldaBrowser/9.9"


def _events_as(app, user, org, project, n: int) -> None:
    """``n`` events by ``user`` in ``org`` from a request with their IP and
    browser: project edits quoting their address, role changes of them,
    profile changes (their old and new name)."""
    with app.test_request_context(environ_base={"REMOTE_ADDR": IP}, headers={"User-Agent": UA}):
        with tenant_context(org.id):
            for i in range(n):
                kind = i % 3
                if kind == 0:
                    audit.record(
                        "project.updated",
                        target=project,
                        before={"description": f"v{i}"},
                        after={"description": f"v{i + 1}, ask {EMAIL}"},
                        actor=user,
                    )
                elif kind == 1:
                    audit.record(
                        "member.role_changed",
                        target=("member", str(user.id), f"{NAME} <{EMAIL}>"),
                        before={"role": "viewer"},
                        after={"role": "member"},
                        actor=user,
                    )
                else:
                    audit.record(
                        "auth.profile_updated", target=user, before={"name": "Zed"}, after={"name": NAME}, actor=user
                    )
        db.session.commit()


def _access_review_of(world) -> None:
    """An access review of every acme member (started by the Owner)."""
    from datetime import timedelta

    from app.members.memberships import get_membership
    from app.reviews import services as reviews

    with tenant_context(world.acme.id, world.users["owner"].id):
        plan = reviews.check_plan(
            "Before the deletion",
            "all",
            [],
            # Two reviewers: nobody decides on their own access (app.reviews).
            [str(world.users["owner"].id), str(world.users["admin"].id)],
            reviews.today() + timedelta(days=7),
            "none",
        )
        reviews.start_review(plan, get_membership(world.users["owner"].id))
        db.session.commit()


def _every_text_column(owner_engine) -> list[tuple[str, str]]:
    with owner_engine.connect() as c:
        return [
            (r.table_name, r.column_name)
            for r in c.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
                    " AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'inet', 'ARRAY', 'tsvector')"
                    " ORDER BY 1, 2"
                )
            )
        ]


def _where_found(owner_engine, needle: str) -> list[str]:
    found = []
    with owner_engine.connect() as c:
        for table, column in _every_text_column(owner_engine):
            n = c.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), :n) > 0'),
                {"n": needle.lower()},
            ).scalar()
            if n:
                found.append(f"{table}.{column}: {n}")
    return found


def _verify(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def test_deleting_a_member_with_hundreds_of_events_keeps_every_audit_chain_verifiable_and_erases_them(
    app, world, login, settle_erasure, owner_engine
):
    zelda = f.make_user(EMAIL, NAME)
    f.add_member(world.acme, zelda, "admin")
    f.add_member(world.globex, zelda, "member")
    project = world.projects["acme"][0]
    _events_as(app, zelda, world.acme, project, 150)
    app.test_cli_runner().invoke(args=["audit", "seal"])  # half of them sealed before the deletion ...
    _events_as(app, zelda, world.acme, project, 150)  # ... half still waiting for the sealer
    with tenant_context(world.acme.id):
        with app.test_request_context():
            audit.record(
                "member.invited", target=("invitation", "x", EMAIL), after={"email": EMAIL}, actor=world.users["owner"]
            )
        db.session.commit()
    code, out = _verify(app)
    assert code == 0, out
    with owner_engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM audit_events")).scalar()

    zid = zelda.id
    client = login(zelda)
    r = post(client, "/account/privacy/delete", {"confirm": EMAIL.upper(), "password": f.PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    settle_erasure()

    code, out = _verify(app)
    assert code == 0, out
    assert "personal data erased" in out
    with owner_engine.connect() as c:
        # Every event stayed (plus the deletion's own and the erasure's record) ...
        after = c.execute(text("SELECT count(*) FROM audit_events")).scalar()
        assert after >= before + 3
        # ... under the pseudonymous subject, with the labels, address and browser gone.
        own = c.execute(
            text("SELECT actor_label, ip, user_agent FROM audit_events WHERE actor_id = :u"), {"u": zid}
        ).all()
        assert len(own) >= 300
        assert {(r.actor_label, r.ip, r.user_agent) for r in own} == {("Deleted user", None, None)}
        redactions = c.execute(text("SELECT count(*) FROM audit_redactions")).scalar()
        assert redactions >= 301
        assert c.execute(text("SELECT count(*) FROM users WHERE id = :u"), {"u": zid}).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM memberships WHERE user_id = :u"), {"u": zid}).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM user_sessions WHERE user_id = :u"), {"u": zid}).scalar() == 0
        done = c.execute(text("SELECT completed_at, labels_encrypted FROM account_deletions")).one()
        assert done.completed_at is not None and done.labels_encrypted is None
    # Not one text column of any table still holds the address, the name, the IP or the browser.
    for needle in (EMAIL, NAME, IP, "ZeldaBrowser"):
        assert _where_found(owner_engine, needle) == [], needle


def _pg_dump() -> str:
    """The pg_dump of the embedded server's own version when it runs (the
    system one refuses a newer server), else the one on the PATH."""
    import os

    import pgserver

    bundled = os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin", "pg_dump")
    return bundled if os.environ.get("TEST_DATABASE_URL") is None and os.path.exists(bundled) else "pg_dump"


def test_a_database_dump_after_the_erasure_holds_no_trace_of_the_address(app, world, login, settle_erasure):
    zelda = f.make_user(EMAIL, NAME)
    f.add_member(world.acme, zelda, "member")
    _events_as(app, zelda, world.acme, world.projects["acme"][0], 30)
    _access_review_of(world)  # its evidence holds her name and address
    assert post(login(zelda), "/account/privacy/delete", {"confirm": EMAIL, "password": f.PASSWORD}).status_code == 302
    settle_erasure()
    dump = subprocess.run(
        [_pg_dump(), "--data-only", app.config["DATABASE_URL"].replace("postgresql+psycopg", "postgresql")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    ).stdout
    assert "zelda" not in dump.lower()
    assert IP not in dump


def test_an_edit_of_an_erased_event_is_still_detected(app, world, login, settle_erasure, owner_engine):
    zelda = f.make_user(EMAIL, NAME)
    f.add_member(world.acme, zelda, "member")
    _events_as(app, zelda, world.acme, world.projects["acme"][0], 9)
    assert post(login(zelda), "/account/privacy/delete", {"confirm": EMAIL, "password": f.PASSWORD}).status_code == 302
    settle_erasure()
    assert _verify(app)[0] == 0
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE audit_events SET target_label = 'Someone else' WHERE id = (SELECT min(event_id) FROM audit_redactions)"
            )
        )
    code, out = _verify(app)
    assert code != 0 and "edited" in out, out
    with owner_engine.begin() as c:  # a statement of our own, without the key, does not help either
        c.execute(text("UPDATE audit_events SET target_label = 'Deleted user' WHERE target_label = 'Someone else'"))
        c.execute(
            text("UPDATE audit_redactions SET fields = 'changes' WHERE id = (SELECT min(id) FROM audit_redactions)")
        )
    code, out = _verify(app)
    assert code != 0 and "redaction" in out, out


def test_the_audit_viewer_shows_deleted_user_for_an_erased_member(app, world, login, settle_erasure):
    zelda = f.make_user(EMAIL, NAME)
    f.add_member(world.acme, zelda, "member")
    _events_as(app, zelda, world.acme, world.projects["acme"][0], 6)
    assert post(login(zelda), "/account/privacy/delete", {"confirm": EMAIL, "password": f.PASSWORD}).status_code == 302
    settle_erasure()
    page = login(world.users["owner"], "acme").get(url("acme", "/audit/")).get_data(as_text=True)
    assert "Deleted user" in page and EMAIL not in page and NAME not in page


def _unchanged(user, owner_engine) -> None:
    db.session.expire_all()
    with all_organizations(reason="test: the account is untouched"):
        row = db.session.execute(select(User).where(User.id == user.id)).scalar_one()
    assert row.email == user.email and row.password_hash
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM account_deletions")).scalar() == 0
        assert c.execute(
            text("SELECT count(*) FROM user_sessions WHERE user_id = :u AND revoked_at IS NULL"), {"u": user.id}
        ).scalar()


def test_the_only_owner_of_an_organization_cannot_delete_their_account(world, login, owner_engine):
    owner = world.users["owner"]
    client = login(owner)
    page = client.get(url(None, "/account/privacy")).get_data(as_text=True)
    assert "You are the only owner of this organization" in page and "Acme Corporation" in page
    r = post(client, "/account/privacy/delete", {"confirm": owner.email, "password": f.PASSWORD})
    assert r.status_code == 409
    assert "You are the only owner of Acme Corporation" in r.get_data(as_text=True)
    _unchanged(owner, owner_engine)


def test_a_second_owner_lifts_the_refusal(world, login, settle_erasure):
    owner = world.users["owner"]
    f.add_member(world.acme, f.make_user("second@acme.test", "Second Owner"), "owner")
    r = post(login(owner), "/account/privacy/delete", {"confirm": owner.email, "password": f.PASSWORD})
    assert r.status_code == 302


def test_a_wrong_confirmation_is_422_beside_the_field_and_changes_nothing(world, login, owner_engine):
    member = world.users["member"]
    r = post(login(member), "/account/privacy/delete", {"confirm": "someone@else.test", "password": f.PASSWORD})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'id="confirm-error"' in body and "Type your e-mail address exactly as shown" in body
    _unchanged(member, owner_engine)


def test_a_wrong_password_is_422_beside_the_field_and_changes_nothing(world, login, owner_engine):
    member = world.users["member"]
    r = post(login(member), "/account/privacy/delete", {"confirm": member.email, "password": "not-the-password"})
    assert r.status_code == 422
    assert 'id="password-error"' in r.get_data(as_text=True)
    _unchanged(member, owner_engine)


def test_an_account_with_two_factor_needs_a_current_code(world, login, owner_engine):
    member = f.enrol_totp(world.users["member"])
    client = login(member)
    r = post(client, "/account/privacy/delete", {"confirm": member.email, "password": f.PASSWORD})
    assert r.status_code == 422 and 'id="code-error"' in r.get_data(as_text=True)
    r = post(client, "/account/privacy/delete", {"confirm": member.email, "password": f.PASSWORD, "code": "000000"})
    assert r.status_code == 422
    _unchanged(member, owner_engine)
    r = post(
        client, "/account/privacy/delete", {"confirm": member.email, "password": f.PASSWORD, "code": f.totp_code()}
    )
    assert r.status_code == 302


def test_a_deleted_account_cannot_sign_in_and_its_sessions_end(world, login, settle_erasure, client):
    member = world.users["member"]
    other_session = login(member, "acme")
    assert (
        post(login(member), "/account/privacy/delete", {"confirm": member.email, "password": f.PASSWORD}).status_code
        == 302
    )
    assert other_session.get(url("acme", "/projects/")).status_code in (302, 401)
    r = post(client, "/login", {"email": "member@acme.test", "password": f.PASSWORD})
    assert r.status_code in (200, 401, 422) and "Incorrect" in r.get_data(as_text=True) or r.status_code != 302

"""Personal data export: a job builds the ZIP, an e-mailed link downloads
it for 24 hours, only for its owner; every step is audited; the archive is
deleted when it expires."""

from __future__ import annotations

import io
import json
import time
import zipfile

from itsdangerous.timed import TimestampSigner
from sqlalchemy import text

from tests import factories as f
from tests.auth.conftest import link_in, path_of, post
from tests.conftest import url


def _ask(client, mailbox, user) -> str:
    r = post(client, "/account/privacy/export")
    assert r.status_code == 302
    return path_of(link_in(mailbox.last(user.email)))


def _actions(owner_engine) -> list[str]:
    with owner_engine.connect() as c:
        return (
            c.execute(text("SELECT action FROM audit_events WHERE action LIKE 'privacy.%' ORDER BY id")).scalars().all()
        )


def test_a_member_downloads_a_zip_of_everything_about_them_through_the_mailed_link(world, login, mailbox, owner_engine):
    member = world.users["consultant"]
    client = login(member)
    page = client.get(url(None, "/account/privacy")).get_data(as_text=True)
    assert "You have not asked for an export yet" in page
    link = _ask(client, mailbox, member)
    assert "Ready" in client.get(url(None, "/account/privacy")).get_data(as_text=True)

    r = client.get(url(None, link))
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert "attachment" in r.headers["Content-Disposition"] and r.headers["Cache-Control"] == "no-store"
    z = zipfile.ZipFile(io.BytesIO(r.data))
    assert set(z.namelist()) >= {
        "README.json",
        "profile.json",
        "memberships.json",
        "sessions.json",
        "second_factors.json",
        "audit_events.json",
        "invitations.json",
        "api_keys.json",
    }
    profile = json.loads(z.read("profile.json"))
    assert profile["email"] == "consultant@example.test" and "password_hash" not in profile
    orgs = {m["organization"] for m in json.loads(z.read("memberships.json"))}
    assert orgs == {"acme", "globex"}
    events = json.loads(z.read("audit_events.json"))
    assert "privacy.export_requested" in {e["action"] for e in events}
    assert all("mac" not in e for e in events)
    blob = z.read("second_factors.json").decode() + z.read("api_keys.json").decode()
    assert "secret" not in blob and "hash" not in blob
    assert _actions(owner_engine) == ["privacy.export_requested", "privacy.export_ready", "privacy.export_downloaded"]


def test_the_link_is_refused_to_another_account(world, login, mailbox, owner_engine):
    member = world.users["member"]
    link = _ask(login(member), mailbox, member)
    r = login(world.users["admin"]).get(url(None, link))
    assert r.status_code == 403
    assert "belongs to another account" in r.get_data(as_text=True)
    assert r.mimetype == "text/html"
    assert "privacy.export_downloaded" not in _actions(owner_engine)
    assert _actions(owner_engine)[-1] == "privacy.export_refused"


def test_an_anonymous_visitor_is_sent_to_sign_in(world, login, mailbox, client):
    member = world.users["member"]
    link = _ask(login(member), mailbox, member)
    r = client.get(url(None, link))
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_link_older_than_24_hours_is_refused(world, login, mailbox, monkeypatch, owner_engine):
    member = world.users["member"]
    client = login(member)
    _ask(client, mailbox, member)
    # The same link, signed 25 hours ago.
    from app.privacy import services
    from app.privacy.models import PersonalExport

    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 25 * 3600)
    with client.application.test_request_context():
        export = services.latest_export(member)
        old = services.download_token(export)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    assert isinstance(export, PersonalExport)
    r = client.get(url(None, f"/account/privacy/exports/{old}"))
    assert r.status_code == 410
    assert "This download link has expired: links work for 24 hours" in r.get_data(as_text=True)
    assert _actions(owner_engine)[-1] == "privacy.export_refused"


def test_an_expired_export_is_deleted_and_its_link_refused(world, login, mailbox, owner_engine, run_jobs):
    member = world.users["member"]
    client = login(member)
    link = _ask(client, mailbox, member)
    with owner_engine.begin() as c:
        c.execute(text("UPDATE personal_exports SET expires_at = now() - interval '1 minute'"))
    from app.privacy.services import purge_expired_exports

    assert purge_expired_exports() == 1
    from app.extensions import db

    db.session.commit()
    with owner_engine.connect() as c:
        row = c.execute(text("SELECT status, archive FROM personal_exports")).one()
    assert row.status == "expired" and row.archive is None
    r = client.get(url(None, link))
    assert r.status_code == 410 and "exports are kept for 24 hours" in r.get_data(as_text=True)
    assert "privacy.export_expired" in _actions(owner_engine)


def test_a_tampered_link_is_404(world, login):
    r = login(world.users["member"]).get(url(None, "/account/privacy/exports/not-a-real-token"))
    assert r.status_code == 404 and "not valid" in r.get_data(as_text=True)


def test_a_second_request_while_one_is_being_built_is_409(world, login, owner_engine):
    client = login(world.users["member"])
    assert post(client, "/account/privacy/export").status_code == 302
    r = post(client, "/account/privacy/export")
    assert r.status_code == 409 and "already being prepared" in r.get_data(as_text=True)
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM personal_exports")).scalar() == 1


def test_the_export_job_twice_builds_one_archive(world, login, run_jobs, owner_engine):
    from app.privacy.services import build_export

    client = login(world.users["member"])
    assert post(client, "/account/privacy/export").status_code == 302
    run_jobs()
    with owner_engine.connect() as c:
        export_id = c.execute(text("SELECT id FROM personal_exports")).scalar()
    with client.application.test_request_context():
        assert build_export(str(export_id)) is False
    f.make_user()  # nothing left half-done: the session still works

"""Without MAIL_URL, mail lands in the development outbox and a dev-only page lists it."""

from __future__ import annotations

import pytest

from app import crypto
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import APEX, run_due_jobs, url
from tests.ops.conftest import make_app


@pytest.fixture
def dev_app(database_url, tmp_path):
    return make_app(database_url, tmp_path, MAIL_URL=None, DEVELOPMENT=True)


def test_mail_without_mail_url_lands_in_the_outbox_and_is_listed(dev_app, tmp_path, mailbox):
    f.make_user("ann@example.test", "Ann Example")
    c = dev_app.test_client()
    assert post(c, "/forgot-password", {"email": "ann@example.test"}).status_code == 200
    run_due_jobs(dev_app)  # the reset job and its mail job, with this app's settings
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1 and mailbox.messages == []  # nothing went over SMTP
    page = c.get(url(None, "/_dev/outbox/"))
    assert page.status_code == 200 and b"Reset your password" in page.data and b"ann@example.test" in page.data
    one = c.get(url(None, f"/_dev/outbox/{files[0].stem}"))
    assert one.status_code == 200 and b"/reset-password/" in one.data
    assert c.get(url(None, "/_dev/outbox/..%2Fsecret_key")).status_code == 404


def test_outbox_page_does_not_exist_when_mail_goes_over_smtp(client):
    assert client.get(url(None, "/_dev/outbox/")).status_code == 404


def test_outbox_route_is_not_registered_outside_development(database_url, tmp_path):
    prod = make_app(
        database_url,
        tmp_path,
        ENV_NAME="production",
        MAIL_URL="smtp://127.0.0.1:1",
        ENCRYPTION_KEYS=[crypto.generate_key()],
    )
    assert prod.config["DEVELOPMENT"] is False
    assert not [r.rule for r in prod.url_map.iter_rules() if r.rule.startswith("/_dev")]
    assert prod.test_client().get(f"https://{APEX}/_dev/outbox/").status_code == 404


@pytest.mark.parametrize("remote", ["203.0.113.7", "10.0.0.2", "::ffff:192.0.2.1"])
def test_outbox_answers_only_requests_from_loopback(dev_app, remote):
    c = dev_app.test_client()
    assert c.get(url(None, "/_dev/outbox/"), environ_base={"REMOTE_ADDR": remote}).status_code == 404
    assert c.get(url(None, "/_dev/outbox/x"), environ_base={"REMOTE_ADDR": remote}).status_code == 404
    assert c.get(url(None, "/_dev/outbox/"), environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert c.get(url(None, "/_dev/outbox/"), environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200

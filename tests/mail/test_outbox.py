"""Without MAIL_URL, mail lands in the development outbox and a dev-only page lists it."""

from __future__ import annotations

import re

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


def _one_mail(dev_app, tmp_path):
    f.make_user("ann@example.test", "Ann Example")
    c = dev_app.test_client()
    assert post(c, "/forgot-password", {"email": "ann@example.test"}).status_code == 200
    run_due_jobs(dev_app)
    (path,) = (tmp_path / "outbox").glob("*.eml")
    return c, path.stem


def test_outbox_shows_the_html_part_in_a_sandboxed_frame_and_keeps_the_strict_policy(dev_app, tmp_path):
    from app.ops import csp_for

    c, msg_id = _one_mail(dev_app, tmp_path)
    page = c.get(url(None, f"/_dev/outbox/{msg_id}"))
    html = page.get_data(as_text=True)
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert f'src="/_dev/outbox/{msg_id}/html"' in frame
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert page.headers["Content-Security-Policy"] == csp_for("apex", "http", APEX)

    part = c.get(url(None, f"/_dev/outbox/{msg_id}/html"))
    assert part.status_code == 200 and part.mimetype == "text/html"
    csp = part.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp and part.headers["X-Frame-Options"] == "SAMEORIGIN"
    body = part.get_data(as_text=True)
    assert '<base target="_blank">' in body  # links open outside the frame
    assert re.search(r'<a [^>]*href="http://[^"]+/reset-password/[^"]+"', body)


def test_outbox_plain_text_links_are_whole_and_clickable(dev_app, tmp_path):
    c, msg_id = _one_mail(dev_app, tmp_path)
    html = c.get(url(None, f"/_dev/outbox/{msg_id}")).get_data(as_text=True)
    (link,) = re.findall(r'<a href="(http://[^"]*/reset-password/[^"]*)">([^<]*)</a>', html)
    assert link[0] == link[1] and len(link[0]) > 60  # the whole token, shown whole
    assert not link[0].endswith(".")


def test_linkify_escapes_text_and_leaves_the_sentence_stop_outside_the_link():
    from app.mail.views import linkify

    out = str(linkify('Go to https://a.example/x?y=1&z=2. <b>not bold</b> "q"'))
    assert '<a href="https://a.example/x?y=1&amp;z=2">https://a.example/x?y=1&amp;z=2</a>.' in out
    assert "&lt;b&gt;not bold&lt;/b&gt;" in out


def test_outbox_html_part_is_guarded_like_the_outbox(dev_app, tmp_path, client):
    c, msg_id = _one_mail(dev_app, tmp_path)
    assert (
        c.get(url(None, f"/_dev/outbox/{msg_id}/html"), environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 404
    )
    assert c.get(url(None, "/_dev/outbox/..%2Fx/html")).status_code == 404
    assert client.get(url(None, f"/_dev/outbox/{msg_id}/html")).status_code == 404  # mail over SMTP: no outbox

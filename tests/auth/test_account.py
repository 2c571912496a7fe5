"""The account page: name, password and e-mail address changes."""

from __future__ import annotations

from app.auth.models import User, UserSession
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import follow_link, link_in, post
from tests.conftest import url

PW = f.PASSWORD
NEW_PW = "granite-meadow-violin-7"


def fresh(user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def test_account_page_needs_a_sign_in(client):
    r = client.get(url(None, "/account"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_account_page_shows_the_three_forms(login):
    c = login(f.make_user("ann@example.test", "Ann Example"))
    r = c.get(url(None, "/account"))
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    for marker in ('name="name"', 'name="current_password"', 'name="new_email"', "ann@example.test", "Verified"):
        assert marker in body


def test_account_pages_live_on_the_apex(world, login):
    c = login(world.users["member"], "acme")
    r = c.get(url("acme", "/account/sessions"))
    assert r.status_code == 302 and r.headers["Location"] == "http://tenantry.localhost/account/sessions"
    assert post(c, "/account/name", {"name": "X"}, slug="acme").status_code == 404


def test_change_name(login, audit_log):
    user = f.make_user("ann@example.test", "Ann Example")
    c = login(user)
    r = post(c, "/account/name", {"name": "  Ann   Other  "})
    assert r.status_code == 302
    assert fresh(user).name == "Ann Other"
    assert audit_log.last("auth.profile_updated")["after"] == {"name": "Ann Other"}
    assert b"Your name was saved." in c.get(url(None, "/account")).data


def test_bad_name_is_422_and_saves_nothing(login):
    user = f.make_user("ann@example.test", "Ann Example")
    c = login(user)
    for bad, message in (("", "Enter your name."), ("   ", "Enter your name."), ("x" * 121, "120")):
        r = post(c, "/account/name", {"name": bad})
        assert r.status_code == 422 and 'id="name-error"' in r.get_data(as_text=True)
        assert message in r.get_data(as_text=True)
    assert fresh(user).name == "Ann Example"


def test_change_password_needs_the_current_one_and_signs_out_the_other_sessions(login, audit_log):
    user = f.make_user("ann@example.test")
    here, elsewhere = login(user), login(user)
    wrong = post(
        here,
        "/account/password",
        {"current_password": "nope-nope-nope", "new_password": NEW_PW, "confirm_password": NEW_PW},
    )
    assert wrong.status_code == 422 and 'id="current_password-error"' in wrong.get_data(as_text=True)
    assert elsewhere.get(url(None, "/account")).status_code == 200
    r = post(here, "/account/password", {"current_password": PW, "new_password": NEW_PW, "confirm_password": NEW_PW})
    assert r.status_code == 302
    assert here.get(url(None, "/account")).status_code == 200  # this session stays
    assert elsewhere.get(url(None, "/account")).status_code == 302  # the other one ended
    assert db.session.get(UserSession, elsewhere.user_session_id).revoked_at is not None
    assert audit_log.last("auth.password_changed")["metadata"] == {"sessions_revoked": 1}
    c = here.application.test_client()
    assert post(c, "/login", {"email": "ann@example.test", "password": NEW_PW}).status_code == 302


def test_bad_new_password_is_422_and_changes_nothing(login):
    user = f.make_user("ann@example.test")
    c = login(user)
    old = user.password_hash
    for data, field, message in (
        ({"new_password": "password123", "confirm_password": "password123"}, "new_password", "too common"),
        ({"new_password": "short", "confirm_password": "short"}, "new_password", "at least 8"),
        ({"new_password": NEW_PW, "confirm_password": "different-thing-1"}, "confirm_password", "do not match"),
        ({"new_password": PW, "confirm_password": PW}, "new_password", "different from your current"),
        ({"new_password": "", "confirm_password": ""}, "new_password", "Choose a new password."),
    ):
        r = post(c, "/account/password", {"current_password": PW, **data})
        body = r.get_data(as_text=True)
        assert r.status_code == 422 and f'id="{field}-error"' in body and message in body, (data, body[:200])
    assert fresh(user).password_hash == old


def test_current_password_guesses_are_throttled_like_log_ins(login):
    user = f.make_user("ann@example.test")
    c = login(user)
    for _ in range(5):
        post(
            c,
            "/account/password",
            {"current_password": "guess-guess", "new_password": NEW_PW, "confirm_password": NEW_PW},
        )
    r = post(c, "/account/password", {"current_password": PW, "new_password": NEW_PW, "confirm_password": NEW_PW})
    assert r.status_code == 429 and b"Too many attempts" in r.data
    assert fresh(user).password_hash == user.password_hash


def test_change_email_happens_only_when_the_link_is_followed(login, mailbox, audit_log):
    user = f.make_user("ann@example.test", verified=True)
    c = login(user)
    r = post(c, "/account/email", {"new_email": "Ann.New@Example.test", "email_password": PW})
    assert r.status_code == 302
    assert fresh(user).email == "ann@example.test"
    msg = mailbox.last("ann.new@example.test")
    assert msg["Subject"] == "Confirm your new e-mail address"
    assert mailbox.to("ann@example.test") == []
    link = link_in(msg)
    # Opening the link only asks (mail scanners open links too) …
    page = c.get(link)
    assert page.status_code == 200 and b"ann.new@example.test" in page.data
    assert fresh(user).email == "ann@example.test" and mailbox.to("ann@example.test") == []
    # … the button changes the address.
    page = follow_link(c, link)
    assert page.status_code == 200 and b"E-mail address changed" in page.data
    u = fresh(user)
    assert u.email == "ann.new@example.test" and u.is_verified
    notice = mailbox.last("ann@example.test")
    assert notice["Subject"] == "Your e-mail address was changed"
    assert "ann.new@example.test" in notice.get_body(preferencelist=("plain",)).get_content()
    assert audit_log.last("auth.email_changed")["before"] == {"email": "ann@example.test"}
    # once only
    assert c.get(link).status_code == 410
    # logging in now takes the new address
    other = c.application.test_client()
    assert post(other, "/login", {"email": "ann.new@example.test", "password": PW}).status_code == 302


def test_change_email_link_works_in_another_browser(login, client, mailbox):
    user = f.make_user("ann@example.test")
    post(login(user), "/account/email", {"new_email": "ann2@example.test", "email_password": PW})
    r = follow_link(client, link_in(mailbox.last("ann2@example.test")))
    assert r.status_code == 200 and fresh(user).email == "ann2@example.test"


def test_change_email_bad_input_is_422_and_sends_nothing(login, mailbox):
    user = f.make_user("ann@example.test")
    f.make_user("taken@example.test")
    c = login(user)
    for data, field, message in (
        (
            {"new_email": "new@example.test", "email_password": "wrong-password"},
            "email_password",
            "not your current password",
        ),
        ({"new_email": "not an address", "email_password": PW}, "new_email", "valid e-mail address"),
        ({"new_email": "TAKEN@example.test", "email_password": PW}, "new_email", "another account"),
        ({"new_email": "ann@example.test", "email_password": PW}, "new_email", "already your e-mail"),
        ({"new_email": "", "email_password": PW}, "new_email", "Enter your e-mail address."),
    ):
        r = post(c, "/account/email", data)
        body = r.get_data(as_text=True)
        assert r.status_code == 422 and f'id="{field}-error"' in body and message in body, (data, body[:300])
    assert mailbox.messages == []
    assert fresh(user).email == "ann@example.test"


def test_email_change_link_dies_when_the_address_changed_meanwhile(login, mailbox):
    user = f.make_user("ann@example.test")
    c = login(user)
    post(c, "/account/email", {"new_email": "first@example.test", "email_password": PW})
    first = link_in(mailbox.last("first@example.test"))
    post(c, "/account/email", {"new_email": "second@example.test", "email_password": PW})
    assert follow_link(c, link_in(mailbox.last("second@example.test"))).status_code == 200
    assert c.get(first).status_code == 410
    assert fresh(user).email == "second@example.test"


def test_email_change_link_refused_when_someone_took_the_address(login, mailbox):
    user = f.make_user("ann@example.test")
    c = login(user)
    post(c, "/account/email", {"new_email": "wanted@example.test", "email_password": PW})
    f.make_user("wanted@example.test")
    r = c.get(link_in(mailbox.last("wanted@example.test")))
    assert r.status_code == 410 and b"another account" in r.data
    assert fresh(user).email == "ann@example.test"


def test_unverified_user_sees_the_resend_button(login):
    c = login(f.make_user("ann@example.test", verified=False))
    body = c.get(url(None, "/account")).get_data(as_text=True)
    assert "Not verified" in body and "/verify-email/resend" in body

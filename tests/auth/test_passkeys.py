"""Passkeys: registering several, naming, renaming, removing; signing in with
a passkey alone or after the password; and every bad answer a browser (or
someone pretending to be one) can send, refused with a clear message and
nothing changed. The answers come from a software authenticator
(``tests/auth/authenticator.py``) with real keys and signatures; the app
checks them with the ``webauthn`` library as it checks a browser's."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from app.auth import factors, passkeys
from app.auth.models import UserSession, WebAuthnCredential
from app.extensions import db
from tests import factories as f
from tests.auth import authenticator
from tests.auth.conftest import post
from tests.conftest import APEX, csrf_token, host, url

PW = f.PASSWORD
ORIGIN = f"http://{APEX}"


def jpost(client, path: str, body=None, slug: str | None = None, raw: str | None = None):
    """POST JSON as ``static/js/passkeys.js`` does (CSRF token in the header)."""
    headers = {"X-CSRFToken": csrf_token(client, slug)}
    if raw is not None:
        return client.post(url(slug, path), data=raw, headers=headers, content_type="application/json")
    return client.post(url(slug, path), json=body or {}, headers=headers)


def register(client, name: str = "Laptop", **kw) -> authenticator.Passkey:
    """Register a passkey through the account page's endpoints."""
    options = jpost(client, "/account/security/passkeys/options").get_json()
    pk, cred = authenticator.create(options, ORIGIN, **kw)
    r = jpost(client, "/account/security/passkeys", {"credential": cred, "name": name})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["redirect"].endswith("/account/security#passkeys")
    return pk


def stored(user) -> list[WebAuthnCredential]:
    db.session.expire_all()
    return passkeys.passkeys_of(user)


def sessions_of(user) -> int:
    return len(db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).all())


def sign_in_options(client) -> dict:
    return jpost(client, "/login/passkey/options").get_json()


def detail(r) -> str:
    assert r.mimetype == "application/problem+json", r.get_data(as_text=True)
    return r.get_json()["detail"]


# --------------------------------------------------------------------------- registering and naming
def test_several_passkeys_are_registered_named_and_stored_with_their_keys(login, owner_engine, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    first = register(client, "Laptop")
    register(client, "  Phone   in  pocket ")
    rows = stored(user)
    assert [r.name for r in rows] == ["Laptop", "Phone in pocket"]
    assert rows[0].credential_id == first.credential_id
    assert rows[0].public_key == first.cose_public_key()
    assert rows[0].transports == ["internal"] and rows[0].sign_count == 0 and rows[0].last_used_at is None
    assert factors.has_second_factor(user)
    assert audit_log.actions().count("auth.passkey_added") == 2
    page = client.get(url(None, "/account/security")).get_data(as_text=True)
    assert "Laptop" in page and "Phone in pocket" in page
    assert "<script>" not in page  # the page's behaviour is the static file's


def test_registration_options_ask_for_a_discoverable_passkey_for_the_apex_and_exclude_existing(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    pk = register(client)
    options = jpost(client, "/account/security/passkeys/options").get_json()
    assert options["rp"]["id"] == APEX  # the registrable apex: every org subdomain is under it
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert [c["id"] for c in options["excludeCredentials"]] == [pk.id]
    assert options["user"]["name"] == "ann@example.test"


def test_a_passkey_is_renamed_and_a_bad_name_is_422_beside_the_field(login, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    register(client)
    row = stored(user)[0]
    prefix = f"p{row.id.hex[:8]}"
    r = post(client, f"/account/security/passkeys/{row.id}/rename", {f"{prefix}-name": "Work laptop"})
    assert r.status_code == 302
    assert stored(user)[0].name == "Work laptop"
    assert audit_log.last("auth.passkey_renamed")["after"] == {"name": "Work laptop"}
    r = post(client, f"/account/security/passkeys/{row.id}/rename", {f"{prefix}-name": "x" * 61})
    assert r.status_code == 422
    assert "at most 60" in r.get_data(as_text=True)
    assert stored(user)[0].name == "Work laptop"


def test_another_persons_passkey_cannot_be_renamed_or_removed(login):
    ann, bob = f.make_user("ann@example.test"), f.make_user("bob@example.test")
    register(login(ann))
    row = stored(ann)[0]
    client = login(bob)
    prefix = f"p{row.id.hex[:8]}"
    assert post(client, f"/account/security/passkeys/{row.id}/rename", {f"{prefix}-name": "Mine"}).status_code == 404
    r = post(client, f"/account/security/passkeys/{row.id}/remove", {f"r{row.id.hex[:8]}-remove_password": PW})
    assert r.status_code == 404
    assert stored(ann)[0].name == "Laptop"


def test_registration_with_an_empty_name_is_refused_and_saves_nothing(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    options = jpost(client, "/account/security/passkeys/options").get_json()
    _, cred = authenticator.create(options, ORIGIN)
    r = jpost(client, "/account/security/passkeys", {"credential": cred, "name": "   "})
    assert r.status_code == 422 and "name" in detail(r)
    assert stored(user) == []


# --------------------------------------------------------------------------- removing
def test_removing_a_passkey_that_is_not_the_last_factor_needs_the_password(login, audit_log):
    user = f.make_user("ann@example.test", totp=True)
    client = login(user)
    register(client)
    row = stored(user)[0]
    field = f"r{row.id.hex[:8]}-remove_password"
    r = post(client, f"/account/security/passkeys/{row.id}/remove", {field: "wrong password!"})
    assert r.status_code == 422 and "not your current password" in r.get_data(as_text=True)
    assert len(stored(user)) == 1
    r = post(client, f"/account/security/passkeys/{row.id}/remove", {field: PW})
    assert r.status_code == 302
    assert stored(user) == []
    assert audit_log.last("auth.passkey_removed")["metadata"]["passkey"] == "Laptop"


def test_removing_the_last_second_factor_needs_the_password_and_the_passkey_itself(login, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    pk = register(client)
    row = stored(user)[0]
    path = f"/account/security/passkeys/{row.id}/remove"
    field = f"r{row.id.hex[:8]}-remove_password"
    page = client.get(url(None, "/account/security")).get_data(as_text=True)
    assert "data-passkey-confirm" in page and "last second factor" in page
    # The password alone is not enough.
    r = post(client, path, {field: PW})
    assert r.status_code == 422 and "last second factor" in r.get_data(as_text=True)
    assert len(stored(user)) == 1
    # A confirmation for another challenge is not either.
    options = jpost(client, "/account/security/passkeys/confirm-options").get_json()
    bad = authenticator.get(pk, options, ORIGIN, challenge=authenticator.other_challenge())
    r = post(client, path, {field: PW, f"r{row.id.hex[:8]}-passkey_response": __import__("json").dumps(bad)})
    assert r.status_code == 422 and "another request" in r.get_data(as_text=True)
    assert len(stored(user)) == 1
    # Password and a fresh confirmation with the passkey: removed.
    options = jpost(client, "/account/security/passkeys/confirm-options").get_json()
    good = authenticator.get(pk, options, ORIGIN)
    r = post(client, path, {field: PW, f"r{row.id.hex[:8]}-passkey_response": __import__("json").dumps(good)})
    assert r.status_code == 302
    assert stored(user) == [] and not factors.has_second_factor(user)
    assert "auth.passkey_removed" in audit_log.actions()


def test_turning_off_the_authenticator_app_when_it_is_the_last_factor_needs_password_and_code(login):
    user = f.make_user("ann@example.test", totp=True)
    client = login(user)
    r = post(client, "/account/security/totp/disable", {"disable_password": PW, "factor_code": "000000"})
    assert r.status_code == 422
    assert factors.has_second_factor(user)
    r = post(
        client, "/account/security/totp/disable", {"disable_password": "nope-nope-nope", "factor_code": f.totp_code()}
    )
    assert r.status_code == 422
    assert factors.has_second_factor(user)
    r = post(client, "/account/security/totp/disable", {"disable_password": PW, "factor_code": f.totp_code()})
    assert r.status_code == 302
    assert not factors.has_second_factor(user)


# --------------------------------------------------------------------------- signing in
def test_a_passkey_signs_in_alone_without_an_email_or_password(login, client, audit_log):
    user = f.make_user("ann@example.test")
    pk = register(login(user))
    before = sessions_of(user)
    page = client.get(url(None, "/login")).get_data(as_text=True)
    assert "Sign in with a passkey" in page
    options = sign_in_options(client)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    r = jpost(client, "/login/passkey", {"credential": authenticator.get(pk, options, ORIGIN), "next": "/account"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["redirect"] == "/account"
    assert sessions_of(user) == before + 1
    assert client.get(url(None, "/account")).status_code == 200
    login_event = audit_log.last("auth.login")
    assert login_event["metadata"]["second_factor"] == "passkey"
    rec = db.session.get(UserSession, __import__("uuid").UUID(login_event["metadata"]["session_id"]))
    assert rec.authenticated_at is not None  # a full authentication: no step-up asked right after
    row = stored(user)[0]
    assert row.sign_count == 1 and row.last_used_at is not None


def test_passkey_sign_in_next_cannot_leave_the_product(login, client):
    user = f.make_user("ann@example.test")
    pk = register(login(user))
    options = sign_in_options(client)
    r = jpost(
        client, "/login/passkey", {"credential": authenticator.get(pk, options, ORIGIN), "next": "https://evil.test/"}
    )
    assert r.status_code == 200
    assert "evil" not in r.get_json()["redirect"]


def test_passkey_as_the_second_factor_after_the_password(login, client, audit_log):
    user = f.make_user("ann@example.test")
    pk = register(login(user))
    r = post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/second-factor")
    before = sessions_of(user)
    page = client.get(url(None, "/login/second-factor")).get_data(as_text=True)
    assert "Use a passkey" in page and 'name="code"' not in page  # no app: no code form
    options = jpost(client, "/login/second-factor/passkey/options").get_json()
    assert [c["id"] for c in options["allowCredentials"]] == [pk.id]
    r = jpost(client, "/login/second-factor/passkey", {"credential": authenticator.get(pk, options, ORIGIN)})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert sessions_of(user) == before + 1
    assert audit_log.last("auth.login")["metadata"]["second_factor"] == "passkey"


def test_second_factor_passkey_needs_the_password_step_first(client):
    r = jpost(client, "/login/second-factor/passkey/options")
    assert r.status_code == 403 and "Log in again" in detail(r)


def test_a_passkey_is_enough_second_factor_for_the_platform_console(login):
    admin = f.make_user("root@example.test", superadmin=True, totp=False)
    client = login(admin)
    assert client.get(url(None, "/platform/")).status_code == 302  # sent to enrol
    register(client)
    assert client.get(url(None, "/platform/")).status_code == 200


def test_passkeys_work_from_an_organization_subdomain(login):
    org = f.make_org("acme", "Acme")
    user = f.make_user("ann@example.test")
    f.add_member(org, user, "owner")
    pk = register(login(user))
    client = login(user, "acme")
    client.get(url("acme", "/settings/danger"))
    options = jpost(client, "/auth/step-up/passkey/options", slug="acme").get_json()
    assert options["rpId"] == APEX
    r = jpost(
        client,
        "/auth/step-up/passkey",
        {"credential": authenticator.get(pk, options, f"http://{host('acme')}"), "next": "/settings/danger"},
        slug="acme",
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["redirect"] == "/settings/danger"


# --------------------------------------------------------------------------- bad answers: refused, nothing changed
@pytest.fixture
def ann_with_passkey(login):
    user = f.make_user("ann@example.test")
    pk = register(login(user))
    return user, pk


def _refused_sign_in(client, user, credential, message: str):
    before = sessions_of(user)
    row = stored(user)[0]
    count, used = row.sign_count, row.last_used_at
    r = jpost(client, "/login/passkey", {"credential": credential})
    assert r.status_code == 422, r.get_data(as_text=True)
    assert message in detail(r)
    assert sessions_of(user) == before
    row = stored(user)[0]
    assert (row.sign_count, row.last_used_at) == (count, used)
    assert client.get(url(None, "/account")).status_code == 302


def test_a_response_for_another_challenge_is_refused(ann_with_passkey, client, audit_log):
    user, pk = ann_with_passkey
    options = sign_in_options(client)
    cred = authenticator.get(pk, options, ORIGIN, challenge=authenticator.other_challenge())
    _refused_sign_in(client, user, cred, "answers another request")
    assert audit_log.last("auth.passkey_failed")["metadata"]["during"] == "sign_in"


def test_a_response_made_for_another_origin_is_refused(ann_with_passkey, client):
    user, pk = ann_with_passkey
    options = sign_in_options(client)
    _refused_sign_in(client, user, authenticator.get(pk, options, "https://evil.test"), "another website")


def test_a_response_from_an_unknown_passkey_is_refused(ann_with_passkey, client):
    user, _ = ann_with_passkey
    stranger = authenticator.Passkey(rp_id=APEX, user_handle=user.id.bytes)
    options = sign_in_options(client)
    _refused_sign_in(client, user, authenticator.get(stranger, options, ORIGIN), "not registered")


def test_a_removed_passkey_no_longer_signs_in(ann_with_passkey, client, login):
    user, pk = ann_with_passkey
    f.enrol_totp(user)
    account = login(user)
    row = stored(user)[0]
    r = post(account, f"/account/security/passkeys/{row.id}/remove", {f"r{row.id.hex[:8]}-remove_password": PW})
    assert r.status_code == 302, r.get_data(as_text=True)
    options = sign_in_options(client)
    r = jpost(client, "/login/passkey", {"credential": authenticator.get(pk, options, ORIGIN)})
    assert r.status_code == 422 and "not registered" in detail(r)


def test_a_replayed_or_regressed_signature_counter_is_refused(ann_with_passkey, client, login):
    user, pk = ann_with_passkey
    options = sign_in_options(client)
    assert (
        jpost(client, "/login/passkey", {"credential": authenticator.get(pk, options, ORIGIN, count=5)}).status_code
        == 200
    )
    other = login(f.make_user("x@example.test"))  # a fresh, anonymous-looking browser for the next try
    anon = other.application.test_client()
    options = sign_in_options(anon)
    _refused_sign_in(anon, user, authenticator.get(pk, options, ORIGIN, count=5), "signature counter")
    options = sign_in_options(anon)
    _refused_sign_in(anon, user, authenticator.get(pk, options, ORIGIN, count=3), "signature counter")


def test_the_same_response_cannot_be_posted_twice(ann_with_passkey, app):
    user, pk = ann_with_passkey
    first, second = app.test_client(), app.test_client()
    options = sign_in_options(first)
    cred = authenticator.get(pk, options, ORIGIN)
    assert jpost(first, "/login/passkey", {"credential": cred}).status_code == 200
    # Replayed in the same browser: its challenge is spent.
    r = jpost(first, "/login/passkey", {"credential": cred})
    assert r.status_code == 422 and "expired or was already used" in detail(r)
    # Replayed in another browser, with a challenge of its own: not the one signed.
    sign_in_options(second)
    r = jpost(second, "/login/passkey", {"credential": cred})
    assert r.status_code == 422 and "another request" in detail(r)


def test_another_users_passkey_is_refused_as_the_second_factor(login, client):
    ann = f.make_user("ann@example.test")
    register(login(ann))
    bob = f.make_user("bob@example.test")
    bob_pk = register(login(bob))
    post(client, "/login", {"email": "ann@example.test", "password": PW})
    before = sessions_of(ann)
    options = jpost(client, "/login/second-factor/passkey/options").get_json()
    r = jpost(client, "/login/second-factor/passkey", {"credential": authenticator.get(bob_pk, options, ORIGIN)})
    assert r.status_code == 422 and "another account" in detail(r)
    assert sessions_of(ann) == before


def test_a_passkey_answering_with_another_users_handle_is_refused(ann_with_passkey, client):
    user, pk = ann_with_passkey
    options = sign_in_options(client)
    cred = authenticator.get(pk, options, ORIGIN, user_handle=b"\x00" * 16)
    _refused_sign_in(client, user, cred, "another account")


def test_sign_in_without_user_verification_is_refused(ann_with_passkey, client):
    user, pk = ann_with_passkey
    options = sign_in_options(client)
    _refused_sign_in(client, user, authenticator.get(pk, options, ORIGIN, verified=False), "did not verify you")


@pytest.mark.parametrize(
    "raw",
    [
        "not json at all",
        '"a string"',
        '{"credential": "x"}',
        '{"credential": {"id": 1}}',
        '{"credential": {"response": {}}}',
    ],
)
def test_malformed_json_is_a_clear_problem_not_a_500(ann_with_passkey, client, raw):
    user, _ = ann_with_passkey
    sign_in_options(client)
    r = jpost(client, "/login/passkey", raw=raw)
    assert r.status_code == 422
    assert "could not be read" in detail(r)
    assert client.get(url(None, "/account")).status_code == 302


def test_malformed_or_foreign_registration_is_refused_and_saves_nothing(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    jpost(client, "/account/security/passkeys/options")
    r = jpost(client, "/account/security/passkeys", raw="{nope")
    assert r.status_code == 422 and "could not be read" in detail(r)
    options = jpost(client, "/account/security/passkeys/options").get_json()
    _, cred = authenticator.create(options, "https://evil.test")
    r = jpost(client, "/account/security/passkeys", {"credential": cred, "name": "Evil"})
    assert r.status_code == 422 and "another website" in detail(r)
    options = jpost(client, "/account/security/passkeys/options").get_json()
    _, cred = authenticator.create(options, ORIGIN, challenge=authenticator.other_challenge())
    r = jpost(client, "/account/security/passkeys", {"credential": cred, "name": "Other"})
    assert r.status_code == 422 and "another request" in detail(r)
    assert stored(user) == []


def test_a_registration_challenge_is_bound_to_the_session_it_was_drawn_in(login, app):
    user = f.make_user("ann@example.test")
    client = login(user)
    options = jpost(client, "/account/security/passkeys/options").get_json()
    _, cred = authenticator.create(options, ORIGIN)
    # The same person's other session (another browser) holds no such challenge.
    other = login(user)
    with client.session_transaction(base_url=f"http://{APEX}") as s:
        held = dict(s["webauthn"])
    with other.session_transaction(base_url=f"http://{APEX}") as s:
        s["webauthn"] = held  # even with the first browser's challenge id copied over
    r = jpost(other, "/account/security/passkeys", {"credential": cred, "name": "Copied"})
    assert r.status_code == 422 and "expired or was already used" in detail(r)
    assert stored(user) == []


def test_the_database_stores_only_public_keys(ann_with_passkey, owner_engine):
    with owner_engine.connect() as c:
        cols = set(c.execute(text("SELECT * FROM webauthn_credentials LIMIT 1")).keys())
    assert not {c for c in cols if re.search("private|secret", c)}

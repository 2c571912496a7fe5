"""Two-factor authentication: TOTP enrolment, recovery codes, the sign-in's
second step, turning it off, and the platform console's requirement."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select, text

from app.auth import factors
from app.auth.models import RecoveryCode, TotpFactor, UserSession
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import url

PW = f.PASSWORD


def error_of(response, field: str) -> str:
    body = response.get_data(as_text=True)
    m = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', body)
    assert m, body
    return m.group(1)


def enrol(client) -> tuple[str, list[str]]:
    """Enrol TOTP through the pages: the secret read from the page, the codes shown once."""
    assert post(client, "/account/security/totp").status_code == 302
    page = client.get(url(None, "/account/security")).get_data(as_text=True)
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)
    assert "<svg" in page
    r = post(client, "/account/security/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", r.get_data(as_text=True))
    return secret, codes


def sessions_of(user) -> int:
    return len(db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).all())


def test_enrolment_stores_the_secret_encrypted_and_confirms_with_a_code(login, owner_engine, audit_log):
    user = f.make_user("ann@example.test")
    secret, codes = enrol(login(user))
    assert len(codes) == 10 and len(set(codes)) == 10
    with owner_engine.connect() as c:
        stored = c.execute(text("SELECT secret_encrypted, confirmed_at FROM totp_factors")).one()
        hashes = c.execute(text("SELECT code_hash FROM recovery_codes")).scalars().all()
    assert secret not in stored.secret_encrypted and stored.confirmed_at is not None
    assert not {c.replace("-", "") for c in codes} & set(hashes)  # only hashes are stored
    assert factors.has_second_factor(user)
    assert audit_log.last("auth.two_factor_enabled")["target"].id == user.id


def test_wrong_confirmation_code_is_422_and_leaves_two_factor_off(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    post(client, "/account/security/totp")
    r = post(client, "/account/security/totp/confirm", {"code": "000000"})
    assert r.status_code == 422
    assert "not right" in error_of(r, "code")
    assert not factors.has_second_factor(user)


def test_login_with_two_factor_needs_a_code_before_any_session(client):
    user = f.make_user("ann@example.test", totp=True)
    r = post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/second-factor")
    assert sessions_of(user) == 0
    assert client.get(url(None, "/account")).status_code == 302  # not signed in yet
    r = post(client, "/login/second-factor", {"code": f.totp_code()})
    assert r.status_code == 302
    assert sessions_of(user) == 1
    assert client.get(url(None, "/account")).status_code == 200


def test_a_totp_code_cannot_be_used_twice(client, app):
    f.make_user("ann@example.test", totp=True)
    code = f.totp_code()
    post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert post(client, "/login/second-factor", {"code": code}).status_code == 302
    other = app.test_client()
    post(other, "/login", {"email": "ann@example.test", "password": PW})
    r = post(other, "/login/second-factor", {"code": code})
    assert r.status_code == 422
    assert "already used" in error_of(r, "code")
    # The next step's code still works.
    assert post(other, "/login/second-factor", {"code": f.totp_code(ahead=1)}).status_code == 302


def test_wrong_second_factor_is_422_audited_and_starts_nothing(client, audit_log):
    user = f.make_user("ann@example.test", totp=True)
    post(client, "/login", {"email": "ann@example.test", "password": PW})
    for bad in ("123456", "abcde-fghij", "x" * 64):
        r = post(client, "/login/second-factor", {"code": bad})
        assert r.status_code == 422, bad
    assert sessions_of(user) == 0
    assert audit_log.actions().count("auth.second_factor_failed") == 3


def test_second_factor_guesses_are_throttled(client):
    f.make_user("ann@example.test", totp=True)
    post(client, "/login", {"email": "ann@example.test", "password": PW})
    for _ in range(5):
        post(client, "/login/second-factor", {"code": "111111"})
    r = post(client, "/login/second-factor", {"code": f.totp_code()})
    assert r.status_code == 429


def test_second_step_without_a_password_goes_back_to_login(client):
    f.make_user("ann@example.test", totp=True)
    r = post(client, "/login/second-factor", {"code": f.totp_code()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_recovery_code_signs_in_once_and_mails_the_user(login, app, mailbox, audit_log):
    user = f.make_user("ann@example.test")
    _, codes = enrol(login(user))
    client = app.test_client()
    post(client, "/login", {"email": "ann@example.test", "password": PW})
    assert post(client, "/login/second-factor", {"code": codes[0].upper()}).status_code == 302
    assert audit_log.last("auth.recovery_code_used")["metadata"] == {"codes_left": 9}
    # (This browser is new to ann as well: that mail arrives beside it.)
    assert "A recovery code was used" in [m["Subject"] for m in mailbox.to("ann@example.test")]
    again = app.test_client()
    post(again, "/login", {"email": "ann@example.test", "password": PW})
    r = post(again, "/login/second-factor", {"code": codes[0]})
    assert r.status_code == 422
    assert "already used" in error_of(r, "code")
    assert factors.recovery_codes_left(user) == 9


def test_regenerating_recovery_codes_invalidates_the_old_ones(login, app, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    _, old = enrol(client)
    r = post(client, "/account/security/recovery-codes", {"codes_password": "wrong-password"})
    assert r.status_code == 422 and factors.recovery_codes_left(user) == 10
    r = post(client, "/account/security/recovery-codes", {"codes_password": PW})
    new = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", r.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert audit_log.last("auth.recovery_codes_regenerated")
    other = app.test_client()
    post(other, "/login", {"email": "ann@example.test", "password": PW})
    assert post(other, "/login/second-factor", {"code": old[1]}).status_code == 422
    assert post(other, "/login/second-factor", {"code": new[1]}).status_code == 302


def test_turning_off_needs_password_and_a_current_factor(login, audit_log):
    user = f.make_user("ann@example.test")
    client = login(user)
    secret, _ = enrol(client)
    code = pyotp.TOTP(secret).at(__import__("time").time() + 30)
    r = post(client, "/account/security/totp/disable", {"disable_password": "wrong", "factor_code": code})
    assert r.status_code == 422 and "not your current password" in error_of(r, "disable_password")
    r = post(client, "/account/security/totp/disable", {"disable_password": PW, "factor_code": "000000"})
    assert r.status_code == 422 and "not right" in error_of(r, "factor_code")
    assert factors.has_second_factor(user)
    r = post(client, "/account/security/totp/disable", {"disable_password": PW, "factor_code": code})
    assert r.status_code == 302
    assert not factors.has_second_factor(user) and factors.recovery_codes_left(user) == 0
    assert audit_log.last("auth.two_factor_disabled")["target"].id == user.id
    rows = db.session.execute(select(TotpFactor).where(TotpFactor.user_id == user.id)).scalars().all()
    assert [r.removed_at is not None for r in rows] == [True]
    assert db.session.execute(select(RecoveryCode).where(RecoveryCode.revoked_at.is_(None))).first() is None


def test_superadmin_without_second_factor_is_sent_to_enrol(login):
    sup = f.make_user("root@example.test", superadmin=True, totp=False)
    r = login(sup).get(url(None, "/platform/"))
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/security")


def test_non_superadmin_still_gets_404_from_the_console(login):
    r = login(f.make_user("ann@example.test")).get(url(None, "/platform/"))
    assert r.status_code == 404


def test_superadmin_with_second_factor_reaches_the_console(login):
    sup = f.make_user("root@example.test", superadmin=True)
    assert login(sup).get(url(None, "/platform/")).status_code == 200


def test_qr_code_is_inline_svg_without_script(login):
    client = login(f.make_user("ann@example.test"))
    post(client, "/account/security/totp")
    page = client.get(url(None, "/account/security")).get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "<script" not in svg and "<?xml" not in page


def _require_2fa(owner_engine, org_id):
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE organizations SET settings = jsonb_set(coalesce(settings, '{}'::jsonb), '{security}',"
                " '{\"require_2fa\": true}'::jsonb) WHERE id = :o"
            ),
            {"o": org_id},
        )


def test_org_requiring_2fa_sends_a_member_without_one_to_enrol(world, login, owner_engine):
    _require_2fa(owner_engine, world.acme.id)
    member = world.users["member"]
    r = login(member, "acme").get(url("acme", "/dashboard"))
    assert r.status_code == 403
    body = r.get_data(as_text=True)
    assert "requires two-factor authentication" in body and "/account/security" in body
    f.enrol_totp(member)
    assert login(member, "acme").get(url("acme", "/dashboard")).status_code == 200


def test_org_not_requiring_2fa_lets_a_member_without_one_in(world, login):
    assert login(world.users["member"], "acme").get(url("acme", "/dashboard")).status_code == 200


def test_demo_superadmin_has_the_printed_totp_secret_and_no_one_else_has_a_factor(app):
    from app.auth.models import User
    from app.demo import DEMO_TOTP_SECRET, load_demo

    load_demo()
    assert "Demo data: already loaded" in load_demo()  # idempotent
    users = db.session.execute(select(User)).scalars().all()
    with_factor = {u.email for u in users if factors.has_second_factor(u)}
    assert with_factor == {"super@tenantry.test"}
    sup = next(u for u in users if u.email == "super@tenantry.test")
    assert factors.secret_of(factors.active_totp(sup)) == DEMO_TOTP_SECRET


def test_recovery_codes_download_as_a_text_file_never_cached(login):
    user = f.make_user("ann@example.test")
    client = login(user)
    secret, codes = enrol(client)
    r = post(client, "/account/security/recovery-codes/download", {"codes": codes})
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"] == 'attachment; filename="tenantry-recovery-codes.txt"'
    assert r.mimetype == "text/plain"
    text_file = r.get_data(as_text=True)
    assert all(c in text_file for c in codes) and "ann@example.test" in text_file
    # The page that showed them is not cached either.
    assert client.get(url(None, "/account/security")).headers["Cache-Control"] == "no-store"


def test_recovery_codes_download_echoes_only_the_users_unused_codes(login, app):
    user = f.make_user("ann@example.test")
    client = login(user)
    _, codes = enrol(client)
    for bad in (["aaaaa-bbbbb"], codes + ["aaaaa-bbbbb"], ["<script>alert(1)</script>"], []):
        r = post(client, "/account/security/recovery-codes/download", {"codes": bad})
        assert r.status_code == 422, bad
        assert "not your current recovery codes" in r.get_data(as_text=True)
        assert "attachment" not in r.headers.get("Content-Disposition", "")
    # Someone else's codes are not echoed for ann.
    other = login(f.make_user("bob@example.test"))
    assert post(other, "/account/security/recovery-codes/download", {"codes": codes}).status_code == 422

"""Bad requests get a clear page, never a 500."""

from __future__ import annotations

from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import APEX, bind_cookie, url


def test_unknown_url_is_a_404_page(client):
    r = client.get(url(None, "/no/such/page"))
    assert r.status_code == 404 and b"Page not found" in r.data and b"<html" in r.data


def test_wrong_method_is_405_with_allow(client):
    r = client.get(url(None, "/logout"))
    assert r.status_code == 405 and b"Method not allowed" in r.data
    assert "POST" in r.headers["Allow"]
    assert client.put(url(None, "/login")).status_code == 405


def test_post_without_csrf_token_is_a_400_page(client):
    f.make_user("ann@example.test")
    r = client.post(url(None, "/login"), data={"email": "ann@example.test", "password": f.PASSWORD})
    assert r.status_code == 400 and b"did not come from this site" in r.data


def test_post_with_a_wrong_csrf_token_is_400(client):
    r = client.post(url(None, "/signup"), data={"csrf_token": "forged", "name": "X"})
    assert r.status_code == 400


def test_tampered_session_cookie_is_treated_as_signed_out(client, login):
    user = f.make_user("ann@example.test")
    c = login(user)
    cookie = c.get_cookie("tenantry_session", domain=APEX)
    value = cookie.value
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    c.set_cookie("tenantry_session", tampered, domain=APEX)
    r = c.get(url(None, "/account"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    c.set_cookie("tenantry_session", "not even base64 ~~~", domain=APEX)
    assert c.get(url(None, "/account")).status_code == 302
    assert c.get(url(None, "/")).status_code == 200


def test_cookie_naming_a_session_that_does_not_exist_is_signed_out(client):
    bind_cookie(client, "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert client.get(url(None, "/account")).status_code == 302
    bind_cookie(client, "definitely-not-a-uuid")
    assert client.get(url(None, "/account")).status_code == 302


def test_expired_and_reused_links_are_410(client):
    for path in ("/verify-email/nope", "/reset-password/nope", "/confirm-email/nope"):
        r = client.get(url(None, path))
        assert r.status_code == 410 and b"no longer valid" in r.data, path


def test_oversized_fields_are_422_not_500(client):
    r = post(client, "/login", {"email": "a" * 5000 + "@example.test", "password": "x" * 5000})
    assert r.status_code == 422
    r = post(client, "/signup", {"name": "n" * 5000, "email": "b" * 300, "password": "p" * 300, "confirm": "p" * 300})
    assert r.status_code == 422

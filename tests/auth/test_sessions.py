"""Your sessions: list, revoke one, revoke the others; lifetimes; tampered cookies."""

from __future__ import annotations

from sqlalchemy import text

from app.auth.models import UserSession
from app.auth.services import describe_user_agent
from app.extensions import db
from tests import factories as f
from tests.auth.conftest import post
from tests.conftest import APEX, bind_cookie, follow, host, url

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def set_agent(owner_engine, session_id, ua):
    with owner_engine.begin() as c:
        c.execute(text("UPDATE user_sessions SET user_agent = :ua WHERE id = :id"), {"ua": ua, "id": session_id})


def test_sessions_page_lists_your_live_sessions_and_marks_this_one(login, owner_engine):
    ann = f.make_user("ann@example.test")
    here, phone, gone = login(ann), login(ann), login(ann)
    set_agent(owner_engine, phone.user_session_id, IPHONE)
    set_agent(owner_engine, here.user_session_id, FIREFOX)
    with owner_engine.begin() as c:
        c.execute(text("UPDATE user_sessions SET revoked_at = now() WHERE id = :id"), {"id": gone.user_session_id})
    bob = login(f.make_user("bob@example.test"))
    r = here.get(url(None, "/account/sessions"))
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f"session-{here.user_session_id}" in body and f"session-{phone.user_session_id}" in body
    assert f"session-{gone.user_session_id}" not in body and f"session-{bob.user_session_id}" not in body
    assert body.count("This session") == 1
    assert "Firefox on Linux" in body and "Safari on iPhone" in body and "127.0.0.1" in body


def test_revoking_a_session_signs_it_out_on_every_host(world, login, audit_log):
    member = world.users["member"]
    laptop = login(member)
    phone = login(member, "acme")  # the phone's sign-in also reached acme's host
    bind_cookie(phone, phone.user_session_id)  # …and the apex, with the same session
    assert phone.get(url("acme", "/dashboard")).status_code == 200
    assert phone.get(url(None, "/account")).status_code == 200
    r = post(laptop, f"/account/sessions/{phone.user_session_id}/revoke")
    assert r.status_code == 302
    assert phone.get(url("acme", "/dashboard")).status_code == 302
    assert phone.get(url(None, "/account")).status_code == 302
    assert laptop.get(url(None, "/account")).status_code == 200
    revoked = audit_log.last("auth.session_revoked")
    assert revoked["target"].id == member.id and revoked["metadata"]["session_id"] == str(phone.user_session_id)


def _replay(client, cookie_value: str, slug: str | None):
    client.set_cookie("tenantry_session", cookie_value, domain=host(slug))


def test_a_cookie_is_good_only_on_the_host_it_was_issued_for(world, client, count_queries):
    """The apex's cookie, copied onto acme's host, is anonymous there (the
    server-side session is shared by every host the sign-in reached, the
    cookie is not); the hand-off still signs in on acme."""
    assert post(client, "/login", {"email": "member@acme.test", "password": f.PASSWORD}).status_code == 302
    apex_cookie = client.get_cookie("tenantry_session", domain=APEX).value
    thief = client.application.test_client()
    _replay(thief, apex_cookie, "acme")
    with count_queries() as replayed:
        r = thief.get(url("acme", "/dashboard"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # Decided before any statement: the statements of an anonymous visit
    # (less the scope's set_config, which follows the test's shared session).
    with count_queries() as anonymous:
        client.application.test_client().get(url("acme", "/dashboard"))

    def reads(q):
        return [s for s in q.statements if "set_config" not in s]

    assert reads(replayed) == reads(anonymous), replayed.report()
    assert not any("user_sessions" in s for s in replayed.statements), replayed.report()
    # The product's own way across hosts still works, and binds acme's cookie to acme.
    r = follow(client, client.get(url(None, "/go"), query_string={"to": url("acme", "/dashboard")}))
    assert r.status_code == 200 and r.request.host == host("acme")
    acme_cookie = client.get_cookie("tenantry_session", domain=host("acme")).value
    _replay(thief, acme_cookie, "globex")
    assert thief.get(url("globex", "/dashboard")).status_code == 302
    _replay(thief, acme_cookie, None)
    assert thief.get(url(None, "/account")).status_code == 302
    _replay(thief, acme_cookie, "acme")
    assert thief.get(url("acme", "/dashboard")).status_code == 200  # on its own host it is the session


def test_a_custom_domain_gets_a_cookie_of_its_own_through_the_hand_off(world, client, owner_engine):
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE organizations SET custom_domain = 'acme-corp.test',"
                " custom_domain_verified_at = now() WHERE slug = 'acme'"
            )
        )
    assert post(client, "/login", {"email": "member@acme.test", "password": f.PASSWORD}).status_code == 302
    r = follow(client, client.get(url(None, "/go"), query_string={"to": "http://acme-corp.test/dashboard"}))
    assert r.status_code == 200 and r.request.host == "acme-corp.test"
    subdomain = client.application.test_client()
    _replay(subdomain, client.get_cookie("tenantry_session", domain="acme-corp.test").value, "acme")
    assert subdomain.get(url("acme", "/dashboard")).status_code == 302


def test_another_users_session_cannot_be_revoked(login):
    ann, bob = login(f.make_user("ann@example.test")), login(f.make_user("bob@example.test"))
    assert post(ann, f"/account/sessions/{bob.user_session_id}/revoke").status_code == 404
    assert post(ann, "/account/sessions/not-a-uuid/revoke").status_code == 404
    assert db.session.get(UserSession, bob.user_session_id).revoked_at is None
    assert bob.get(url(None, "/account")).status_code == 200


def test_revoking_this_session_signs_you_out(login):
    c = login(f.make_user("ann@example.test"))
    r = post(c, f"/account/sessions/{c.user_session_id}/revoke")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert c.get(url(None, "/account")).status_code == 302


def test_sign_out_all_other_sessions_keeps_this_one(login, audit_log):
    ann = f.make_user("ann@example.test")
    here, a, b = login(ann), login(ann), login(ann)
    bob = login(f.make_user("bob@example.test"))
    r = post(here, "/account/sessions/revoke-others")
    assert r.status_code == 302
    page = here.get(url(None, "/account/sessions"))
    assert page.status_code == 200 and b"2 other sessions signed out." in page.data
    assert a.get(url(None, "/account")).status_code == 302 and b.get(url(None, "/account")).status_code == 302
    assert bob.get(url(None, "/account")).status_code == 200
    assert audit_log.last("auth.sessions_revoked")["metadata"] == {"count": 2}


def test_htmx_revoke_answers_the_sessions_fragment(login):
    ann = f.make_user("ann@example.test")
    here, other = login(ann), login(ann)
    r = post(here, f"/account/sessions/{other.user_session_id}/revoke", headers={"HX-Request": "true"})
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    assert body.lstrip().startswith("{#") is False and "<html" not in body and 'id="sessions"' in body
    assert f"session-{other.user_session_id}" not in body


def test_htmx_revoke_of_this_session_redirects_to_log_in(login):
    c = login(f.make_user("ann@example.test"))
    r = post(c, f"/account/sessions/{c.user_session_id}/revoke", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Redirect"].endswith("/login")


def test_idle_session_expires(login, app, owner_engine):
    c = login(f.make_user("ann@example.test"))
    idle = app.config["SESSION_IDLE_TIMEOUT"]
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE user_sessions SET last_seen_at = now() - :d + interval '1 minute'"), {"d": idle})
    assert c.get(url(None, "/account")).status_code == 200
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE user_sessions SET last_seen_at = now() - :d - interval '1 minute'"), {"d": idle})
    assert c.get(url(None, "/account")).status_code == 302


def test_absolute_lifetime_ends_even_an_active_session(login, app, owner_engine):
    c = login(f.make_user("ann@example.test"))
    life = app.config["SESSION_ABSOLUTE_TIMEOUT"]
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE user_sessions SET created_at = now() - :d - interval '1 minute', last_seen_at = now()"),
            {"d": life},
        )
    assert c.get(url(None, "/account")).status_code == 302


def test_activity_refreshes_last_seen(login, owner_engine):
    c = login(f.make_user("ann@example.test"))
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE user_sessions SET last_seen_at = now() - interval '2 hours'"))
    c.get(url(None, "/account"))
    with owner_engine.begin() as conn:
        age = conn.execute(text("SELECT now() - last_seen_at FROM user_sessions")).scalar_one()
    assert age.total_seconds() < 60


def test_user_agent_summary():
    assert describe_user_agent(FIREFOX) == "Firefox on Linux"
    assert describe_user_agent(IPHONE) == "Safari on iPhone"
    assert (
        describe_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36 Edg/126.0"
        )
        == "Edge on Windows"
    )
    assert describe_user_agent("curl/8.5.0") == "curl/8.5.0"
    assert describe_user_agent(None) == "Unknown device"

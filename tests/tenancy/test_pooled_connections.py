"""One pooled connection, requests for two organizations in turn: each sees
only its own rows, and nothing of the previous request stays on the
connection (the settings are transaction-local)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, text

from tests.conftest import sign_in, url
from tests.fresh_client import FreshContextClient

CONFIG_KEYS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "TENANTRY_SERVER_NAME",
    "MAIL_URL",
    "INSTANCE_DIR",
    "ENV_NAME",
    "TESTING",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_KIB",
    "RATELIMIT_ENABLED",
)


@pytest.fixture
def one_connection_app(app):
    """The same application, with a pool of exactly one connection."""
    from app import create_app
    from app.extensions import db

    single = create_app(
        {
            **{k: app.config[k] for k in CONFIG_KEYS},
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_pre_ping": False},
        }
    )
    single.test_client_class = FreshContextClient
    with single.app_context():
        engine = db.engine
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda dbapi_conn, rec, proxy: checkouts.append(id(dbapi_conn)))
    single.checkouts = checkouts
    single.engine = engine
    yield single
    engine.dispose()


def project_names(body: bytes) -> set[str]:
    return set(re.findall(r'<a href="/projects/[0-9a-f-]{36}">([^<]+)</a>', body.decode()))


ACME = {"Acme Project 0", "Acme Project 1", "Acme Project 2"}
GLOBEX = {"Globex Secret 0", "Globex Secret 1", "Globex Secret 2"}


def test_one_connection_serves_acme_then_globex_each_seeing_only_its_own(world, one_connection_app):
    single = one_connection_app
    acme = sign_in(single, world.users["owner"], "acme")
    globex = sign_in(single, world.users["globex_owner"], "globex")
    consultant_acme = sign_in(single, world.users["consultant"], "acme")
    consultant_globex = sign_in(single, world.users["consultant"], "globex")
    for client, slug, expected in [
        (acme, "acme", ACME),
        (globex, "globex", GLOBEX),
        (acme, "acme", ACME),
        # The same person in both organizations, back to back on one connection.
        (consultant_acme, "acme", ACME),
        (consultant_globex, "globex", GLOBEX),
        (consultant_acme, "acme", ACME),
    ]:
        r = client.get(url(slug, "/projects/"))
        assert r.status_code == 200
        assert project_names(r.data) == expected, slug
        frag = client.get(url(slug, "/projects/"), headers={"HX-Request": "true"})
        assert project_names(frag.data) == expected, slug
    assert single.engine.pool.size() == 1
    assert len(set(single.checkouts)) == 1, "the requests did not share one connection"
    assert len(single.checkouts) >= 12


def test_the_pooled_connection_carries_no_org_after_a_request(world, one_connection_app):
    single = one_connection_app
    client = sign_in(single, world.users["owner"], "acme")
    assert client.get(url("acme", "/projects/")).status_code == 200
    with single.engine.connect() as conn:  # the very connection the request used
        assert conn.execute(text("SELECT current_setting('app.org_id', true)")).scalar() in ("", None)
        assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in ("", None)
        assert conn.execute(text("SELECT count(*) FROM projects")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() == 0
    assert len(set(single.checkouts)) == 1

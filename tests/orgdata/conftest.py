"""A second Tenantry database, for imports: its own app on its own
database (the suite's database name with ``_import``), migrated once and
emptied before every test that uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests import db as testdb


@pytest.fixture(scope="session")
def second_app(app, tmp_path_factory):
    """Another installation: same code and keys, another database."""
    from flask_migrate import upgrade

    from app import create_app

    url = make_url(app.config["DATABASE_URL"])
    name = url.database + "_import"
    admin = create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    cfg = {
        k: app.config[k]
        for k in ("SECRET_KEY", "TENANTRY_SERVER_NAME", "MAIL_URL", "ENV_NAME", "TESTING", "ARGON2_TIME_COST")
    }
    cfg.update(
        DATABASE_URL=url.set(database=name).render_as_string(hide_password=False),
        INSTANCE_DIR=str(tmp_path_factory.mktemp("instance-import")),
        ARGON2_MEMORY_KIB=1024,
        DNS_RESOLVER="127.0.0.1:9",
    )
    second = create_app(cfg)
    with second.app_context():
        upgrade(revision="heads")
    return second


@pytest.fixture
def second_owner(second_app):
    """The second database's owner engine, its tables emptied (plans kept)."""
    engine = create_engine(second_app.config["DATABASE_URL"], poolclass=NullPool)
    testdb.truncate_all(engine)
    yield engine
    engine.dispose()

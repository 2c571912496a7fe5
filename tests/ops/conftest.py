"""Second applications for the operations tests (another database, another environment)."""

from __future__ import annotations

import pytest

from tests.conftest import APEX, free_port


def make_app(database_url: str, instance_dir, **overrides):
    """Another app like the suite's, with ``overrides``. Keeps the rate limiter
    enabled: its state is shared by every app in the process."""
    from app import create_app

    cfg = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "TENANTRY_SERVER_NAME": APEX,
        "INSTANCE_DIR": str(instance_dir),
        "TESTING": True,
        "LOG_JSON": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 1024,
        "RATELIMIT_ENABLED": True,
    }
    cfg.update(overrides)
    return create_app(cfg)


@pytest.fixture
def app_without_database(tmp_path):
    """An app whose database is a closed port on loopback."""
    port = free_port()
    return make_app(
        f"postgresql+psycopg://nobody:nothing@127.0.0.1:{port}/nowhere",
        tmp_path,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": {"connect_timeout": 2}},
    )

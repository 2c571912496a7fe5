"""Configuration fails closed: production is the default, and production
refuses to start without the settings that keep it safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import config
from app.config import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def _env(**values):
    env = {k: v for k, v in os.environ.items() if k not in {"TENANTRY_ENV", "SECRET_KEY", "MAIL_URL", "DATABASE_URL"}}
    env.update(values)
    return env


def test_production_is_the_default_when_tenantry_env_is_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("TENANTRY_ENV", raising=False)
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    cfg = config.load()
    assert cfg["ENV_NAME"] == "production" and cfg["DEVELOPMENT"] is False
    assert cfg["SESSION_COOKIE_SECURE"] is True
    # No key is generated on disk outside development.
    assert cfg["SECRET_KEY"] is None and not (tmp_path / "secret_key").exists()


FERNET_KEY = "a" * 43 + "="  # 32 bytes, url-safe base64


@pytest.mark.parametrize(
    "missing, needle",
    [("SECRET_KEY", "SECRET_KEY"), ("MAIL_URL", "MAIL_URL"), ("ENCRYPTION_KEYS", "ENCRYPTION_KEYS")],
)
def test_production_refuses_to_start_without_a_required_setting(monkeypatch, tmp_path, missing, needle):
    monkeypatch.delenv("TENANTRY_ENV", raising=False)
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MAIL_URL", "smtp://127.0.0.1:1")
    monkeypatch.setenv("ENCRYPTION_KEYS", FERNET_KEY)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=needle):
        config.check(config.load())


def test_a_complete_production_configuration_passes_the_check(monkeypatch, tmp_path):
    monkeypatch.delenv("TENANTRY_ENV", raising=False)
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MAIL_URL", "smtp://127.0.0.1:1")
    monkeypatch.setenv("ENCRYPTION_KEYS", FERNET_KEY)
    config.check(config.load())  # raises nothing


def test_production_refuses_an_encryption_key_that_is_not_a_fernet_key(monkeypatch, tmp_path):
    monkeypatch.delenv("TENANTRY_ENV", raising=False)
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MAIL_URL", "smtp://127.0.0.1:1")
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{FERNET_KEY},too-short")
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        config.check(config.load())


def test_production_refuses_webhooks_to_loopback(monkeypatch, tmp_path):
    monkeypatch.delenv("TENANTRY_ENV", raising=False)
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MAIL_URL", "smtp://127.0.0.1:1")
    monkeypatch.setenv("ENCRYPTION_KEYS", FERNET_KEY)
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "1")
    with pytest.raises(ConfigurationError, match="WEBHOOKS_ALLOW_LOOPBACK"):
        config.check(config.load())


def test_development_derives_a_stable_encryption_key_when_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANTRY_ENV", "development")
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first, second = config.load()["ENCRYPTION_KEYS"], config.load()["ENCRYPTION_KEYS"]
    assert len(first) == 1 and first == second  # same key after a restart: stored secrets stay readable


def test_an_unknown_environment_name_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANTRY_ENV", "dev")  # a typo must not silently mean production or development
    monkeypatch.setenv("TENANTRY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MAIL_URL", "smtp://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="TENANTRY_ENV"):
        config.check(config.load())


def test_wsgi_refuses_to_start_with_one_line_naming_the_setting(tmp_path):
    # The check runs before the database is touched: no server is needed.
    r = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(TENANTRY_INSTANCE_DIR=str(tmp_path), MAIL_URL="smtp://127.0.0.1:1"),
    )
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tenantry: refusing to start") and "SECRET_KEY" in lines[0]

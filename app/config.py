"""Configuration. This module is the only code that reads the environment.

Production is the default: development conveniences (a generated secret
key, the mail outbox, plain-HTTP cookies) are on only when ``TENANTRY_ENV`` is
set to ``development`` or ``test`` explicitly (``make run`` and the test suite
do). In production ``check()`` refuses to start without ``SECRET_KEY`` or
``MAIL_URL``, with one line saying what to set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _secret_key(instance_dir: Path) -> str:
    """A stable development key: generated once and kept in ``instance/``.

    Production must set ``SECRET_KEY``; a key written to disk is only for a
    developer's machine, where it keeps sessions valid across restarts.
    """
    path = instance_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


def _encryption_keys(value: str | None, secret_key: str | None, development: bool) -> list[str]:
    """``ENCRYPTION_KEYS`` as a list (first encrypts, all decrypt: app/crypto.py).

    Unset in development or test: one key derived from ``SECRET_KEY``, stable
    across restarts. Unset in production: empty, and ``check()`` refuses.
    """
    keys = [k.strip() for k in (value or "").split(",") if k.strip()]
    if keys or not development or not secret_key:
        return keys
    digest = hashlib.sha256(b"tenantry-encryption-key|" + secret_key.encode()).digest()
    return [base64.urlsafe_b64encode(digest).decode()]


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


DEVELOPMENT_ENVS = {"development", "test"}


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely; the message says what to set."""


def check(cfg: dict) -> None:
    """Refuse a production configuration that would run unsafely.

    Raises ``ConfigurationError`` with a one-line message naming the
    variable to set. Development and test configurations always pass.
    """
    if cfg.get("DEVELOPMENT"):
        return
    env_name = cfg.get("ENV_NAME")
    if env_name != "production":
        raise ConfigurationError(
            f"TENANTRY_ENV={env_name!r} is not known: use 'production' (the default), 'development' or 'test'."
        )
    if not cfg.get("SECRET_KEY"):
        raise ConfigurationError(
            "SECRET_KEY is not set: production needs a long random secret "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or set TENANTRY_ENV=development on a developer's machine."
        )
    if not cfg.get("MAIL_URL"):
        raise ConfigurationError(
            "MAIL_URL is not set: production sends mail over SMTP (smtp://user:pass@host:587?starttls=1), "
            "or set TENANTRY_ENV=development to use the development outbox."
        )
    keys = cfg.get("ENCRYPTION_KEYS") or []
    if not keys:
        raise ConfigurationError(
            "ENCRYPTION_KEYS is not set: production encrypts stored secrets (webhook signing secrets) with it; "
            "generate one with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
        )
    if not all(_is_fernet_key(k) for k in keys):
        raise ConfigurationError(
            "ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes); "
            "list keys comma-separated, the current one first."
        )
    if cfg.get("WEBHOOKS_ALLOW_LOOPBACK"):
        raise ConfigurationError(
            "WEBHOOKS_ALLOW_LOOPBACK is set: production never delivers webhooks to this machine's own addresses; "
            "unset it (it exists for a developer's local receiver)."
        )


def load(overrides: dict | None = None) -> dict:
    """Return the application's configuration as a plain dict.

    ``overrides`` (used by tests) win over the environment.
    """
    env = os.environ
    instance_dir = Path(env.get("TENANTRY_INSTANCE_DIR") or BASE_DIR / "instance")
    env_name = (env.get("TENANTRY_ENV") or "production").strip().lower()
    if overrides and "ENV_NAME" in overrides:
        env_name = overrides["ENV_NAME"]
    development = env_name in DEVELOPMENT_ENVS
    port = _int(env.get("PORT"), 5000)
    # The apex follows PORT in development, so `PORT=8000 make run` serves
    # http://localhost:8000 and http://acme.localhost:8000 without more set-up.
    server_name = env.get("SERVER_NAME") or f"localhost:{port}"
    redis_timeout_ms = max(1, _int(env.get("REDIS_TIMEOUT_MS"), 150))
    secret_key = env.get("SECRET_KEY") or (_secret_key(instance_dir) if development else None)
    cfg = {
        "ENV_NAME": env_name,
        "DEVELOPMENT": development,
        "INSTANCE_DIR": str(instance_dir),
        # Only development may fall back to a key generated on disk; check()
        # refuses a production start without one.
        "SECRET_KEY": secret_key,
        # Keys of encryption at rest (app/crypto.py): comma-separated Fernet
        # keys, the first encrypts, all decrypt (rotation). Development and
        # test derive one from SECRET_KEY; production must set them.
        "ENCRYPTION_KEYS": _encryption_keys(env.get("ENCRYPTION_KEYS"), secret_key, development),
        # Webhooks (app/webhooks): a developer's receiver on this machine
        # needs loopback; the SSRF guard refuses it everywhere else, and
        # check() refuses to start production with it set.
        "WEBHOOKS_ALLOW_LOOPBACK": _bool(env.get("WEBHOOKS_ALLOW_LOOPBACK"), False),
        "WEBHOOKS_TIMEOUT_SECONDS": float(env.get("WEBHOOKS_TIMEOUT_SECONDS") or 10),
        # Requests one webhook delivery job has in flight at once (each
        # sender thread keeps its own connection to the receiver alive).
        "WEBHOOKS_SENDERS": max(1, _int(env.get("WEBHOOKS_SENDERS"), 8)),
        # Audit streaming (app/streaming): events per batch (a receiver sees
        # at most this many again after a worker is killed mid-batch).
        "AUDIT_STREAM_BATCH": max(1, min(5000, _int(env.get("AUDIT_STREAM_BATCH"), 500))),
        # Verified domains (app/domains): "host:port" of the DNS resolver that
        # TXT records are looked up on; unset, the system's resolvers. Tests
        # point it at a DNS server of their own on loopback.
        "DNS_RESOLVER": (env.get("DNS_RESOLVER") or "").strip() or None,
        "DNS_TIMEOUT_SECONDS": float(env.get("DNS_TIMEOUT_SECONDS") or 5),
        # SERVER_NAME is the apex; organizations live at <slug>.<SERVER_NAME>.
        # Flask's own SERVER_NAME is left unset on purpose: we resolve hosts
        # ourselves (custom domains must work too).
        "TENANTRY_SERVER_NAME": server_name.lower(),
        "PREFERRED_URL_SCHEME": env.get("URL_SCHEME", "http" if development else "https"),
        # Owner connection: migrations, the project-created runtime role.
        "DATABASE_URL": env.get("DATABASE_URL") or None,
        # Runtime connection (non-owner, no BYPASSRLS). Derived from
        # DATABASE_URL with the runtime role when not given.
        "DATABASE_RUNTIME_URL": env.get("DATABASE_RUNTIME_URL") or None,
        "DATABASE_RUNTIME_ROLE": env.get("DATABASE_RUNTIME_ROLE", "tenantry_app"),
        "DATABASE_RUNTIME_PASSWORD": env.get("DATABASE_RUNTIME_PASSWORD") or None,
        # Cross-organization connection: the platform console, jobs and CLI
        # commands reach it only through all_organizations(reason=...). Its
        # own role, which the row-level security policies name; the runtime
        # role can neither become it nor widen what it sees by any setting.
        # Derived from DATABASE_URL with the cross-organization role when not given.
        "DATABASE_CROSS_ORG_URL": env.get("DATABASE_CROSS_ORG_URL") or None,
        "DATABASE_CROSS_ORG_ROLE": env.get("DATABASE_CROSS_ORG_ROLE", "tenantry_cross_org"),
        "DATABASE_CROSS_ORG_PASSWORD": env.get("DATABASE_CROSS_ORG_PASSWORD") or None,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            # Pre-ping costs a round trip per request; recycling connections
            # and retrying on the next request is the cheaper trade for
            # short web requests. Set DATABASE_POOL_PRE_PING=1 behind
            # proxies that drop idle connections silently.
            "pool_pre_ping": _bool(env.get("DATABASE_POOL_PRE_PING"), False),
            "pool_recycle": _int(env.get("DATABASE_POOL_RECYCLE_SECONDS"), 1800),
            "pool_size": _int(env.get("DATABASE_POOL_SIZE"), 5),
        },
        "REDIS_URL": env.get("REDIS_URL") or None,
        "MAIL_URL": env.get("MAIL_URL") or None,
        "MAIL_FROM": env.get("MAIL_FROM", "Tenantry <no-reply@tenantry.test>"),
        # Background jobs (app/jobs, procrastinate on this PostgreSQL). Every
        # mail is one: no request waits for SMTP. A worker runs this many
        # jobs at once (threads); it proves it is alive every
        # JOBS_HEARTBEAT_SECONDS, and the jobs of a worker silent for
        # JOBS_STALLED_SECONDS are handed to another (a killed worker).
        "JOBS_CONCURRENCY": max(1, _int(env.get("JOBS_CONCURRENCY"), 4)),
        "JOBS_HEARTBEAT_SECONDS": max(0.1, float(env.get("JOBS_HEARTBEAT_SECONDS") or 10)),
        "JOBS_STALLED_SECONDS": max(0.5, float(env.get("JOBS_STALLED_SECONDS") or 30)),
        "PORT": port,
        # Sessions: server-side records; the cookie only carries their id.
        "SESSION_COOKIE_NAME": "tenantry_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), not development),
        # Host-only cookies: never a Domain attribute, so one organization's
        # host never receives another's cookie.
        "SESSION_COOKIE_DOMAIN": False,
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        # The cookie only points at a server-side session that enforces the
        # idle and absolute lifetimes; re-signing it on every response would
        # cost CPU for nothing.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=_int(env.get("SESSION_IDLE_MINUTES"), 60 * 8)),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=_int(env.get("SESSION_ABSOLUTE_HOURS"), 24 * 7)),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_int(env.get("SESSION_ABSOLUTE_HOURS"), 24 * 7)),
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead
        "WTF_CSRF_SSL_STRICT": not development,
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        # Redis must answer quickly or not at all: redis-py waits 5 s by
        # default, and a hung Redis then holds every sign-in (and the worker
        # serving it). The memory storage ignores these options.
        "REDIS_TIMEOUT_MS": redis_timeout_ms,
        "RATELIMIT_STORAGE_OPTIONS": {
            "socket_connect_timeout": redis_timeout_ms / 1000,
            "socket_timeout": redis_timeout_ms / 1000,
        },
        # While Redis is unreachable, limits count in this process's memory
        # rather than not at all: Flask-Limiter's fallback for decorated
        # routes, app/auth/throttle.py's circuit breaker for the throttles.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "REDIS_FAILURES_BEFORE_FALLBACK": 3,
        "REDIS_RETRY_SECONDS": max(1, _int(env.get("REDIS_RETRY_SECONDS"), 10)),
        "RATELIMIT_HEADERS_ENABLED": True,
        # The API (app/api): each key's own budget beside its organization's
        # (the plan's api_requests_per_minute), so that one runaway script
        # cannot spend the organization's whole budget; and how often a
        # key's "last used" and its usage counts are written (not per request).
        "API_KEY_REQUESTS_PER_MINUTE": _int(env.get("API_KEY_REQUESTS_PER_MINUTE"), 300),
        "API_USAGE_FLUSH_SECONDS": _int(env.get("API_USAGE_FLUSH_SECONDS"), 60),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        # Failed sign-ins. The lockout counts per (account, client address),
        # so a stranger's guesses lock out only the stranger's address; per
        # account, tiers far above it make the wait grow (a minute, a quarter
        # of an hour, an hour, a day) for a guessing run spread over many
        # addresses, which the account's owner, on an address they signed
        # in from before, does not wait for (app.auth.services).
        "LOGIN_FAILURES_PER_ACCOUNT_AND_IP": env.get("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", "5 per 15 minutes"),
        "LOGIN_FAILURES_PER_ACCOUNT": env.get(
            "LOGIN_FAILURES_PER_ACCOUNT", "10 per minute; 20 per 15 minutes; 50 per hour; 100 per day"
        ),
        "LOGIN_ATTEMPTS_PER_IP": env.get("LOGIN_ATTEMPTS_PER_IP", "30 per 15 minutes"),
        # Single sign-on starts (each writes what the answer is checked
        # against: a SAML request row, an OIDC state in the cookie) per
        # client address, whatever the protocol or the organization.
        "SSO_STARTS_PER_IP": env.get("SSO_STARTS_PER_IP", "30 per minute"),
        # A member turned away by an organization's security policy is
        # audited this often per session and rule, not at every page they try.
        "POLICY_REFUSALS_AUDITED": env.get("POLICY_REFUSALS_AUDITED", "1 per hour"),
        # Reminders to set up 2FA an admin may send one member of one organization.
        "TWO_FACTOR_REMINDERS_PER_MEMBER": env.get("TWO_FACTOR_REMINDERS_PER_MEMBER", "1 per day"),
        "HANDOFF_TOKEN_SECONDS": 60,
        # Account links and the throttles on what sends mail.
        "EMAIL_LINK_MAX_AGE": timedelta(hours=_int(env.get("EMAIL_LINK_HOURS"), 48)),
        "PASSWORD_RESET_MAX_AGE": timedelta(hours=1),
        "SIGNUPS_PER_IP": env.get("SIGNUPS_PER_IP", "10 per hour"),
        "VERIFICATION_MAILS_PER_ACCOUNT": env.get("VERIFICATION_MAILS_PER_ACCOUNT", "3 per 15 minutes"),
        "PASSWORD_RESET_REQUESTS_PER_IP": env.get("PASSWORD_RESET_REQUESTS_PER_IP", "10 per 15 minutes"),
        "PASSWORD_RESET_MAILS_PER_ACCOUNT": env.get("PASSWORD_RESET_MAILS_PER_ACCOUNT", "3 per hour"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "LOG_JSON": _bool(env.get("LOG_JSON"), not development),
        "TRUSTED_PROXIES": _int(env.get("TRUSTED_PROXIES"), 0),
        # Audit log signing key (defaults to one derived from SECRET_KEY);
        # retired keys stay verifiable when listed (comma-separated).
        "AUDIT_HMAC_KEY": env.get("AUDIT_HMAC_KEY") or None,
        "AUDIT_PREVIOUS_KEYS": [k for k in (env.get("AUDIT_PREVIOUS_KEYS") or "").split(",") if k.strip()],
        # Chain heads kept outside the database, to detect a truncated tail:
        # in this file, unless AUDIT_ANCHOR_STORE (an app.auditlog.anchors.AnchorStore,
        # passed to create_app) keeps them elsewhere.
        "AUDIT_ANCHOR_PATH": env.get("AUDIT_ANCHOR_PATH") or None,  # default: instance/audit-anchors.json
        "ARGON2_TIME_COST": _int(env.get("ARGON2_TIME_COST"), 2),
        "ARGON2_MEMORY_KIB": _int(env.get("ARGON2_MEMORY_KIB"), 19 * 1024),
    }
    if overrides:
        cfg.update(overrides)
    return cfg


def test_database_url() -> str | None:
    """The PostgreSQL the test suite should use instead of the embedded one."""
    return os.environ.get("TEST_DATABASE_URL") or None


def environ(name: str, default: str | None = None) -> str | None:
    """Read one environment variable (for scripts that need a setting not in ``load``)."""
    return os.environ.get(name, default)

"""Where the database is: an embedded PostgreSQL or ``DATABASE_URL``.

Three connections exist on purpose:

* the **owner** URL (``DATABASE_URL``, or the embedded server's superuser)
  runs migrations and owns every table;
* the **runtime** URL is what the web app and workers use: the role
  ``tenantry_app`` created by the migrations, which is not a superuser, has no
  BYPASSRLS and owns nothing, so PostgreSQL row-level security applies to it;
* the **cross-organization** URL (bind ``cross_org``) is the role
  ``tenantry_cross_org``, also created by the migrations and also without
  BYPASSRLS: the policies grant it every organization's rows by name. Only
  ``all_organizations(reason=...)`` switches a session onto it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from flask import current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from app.config import load as load_config

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "tenantry"


def embedded_owner_url(pgdata: Path, dbname: str = EMBEDDED_DB_NAME) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``pgdata``; return its owner URL.

    The server keeps running while any process that asked for it is alive
    (pgserver's reference counting), and the data directory is reused, so a
    second ``make run`` finds the same database.
    """
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI);
        # pgserver falls back to /tmp, which is fine.
        warnings.simplefilter("ignore", UserWarning)
        import pgserver  # imported lazily: production never needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(str(pgdata))
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{dbname}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{dbname}";')
    base = make_url(server.get_uri())
    return str(
        URL.create(
            "postgresql+psycopg",
            username=base.username or "postgres",
            database=dbname,
            query={"host": base.query.get("host") or str(pgdata)},
        )
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def stop_embedded(pgdata: Path) -> str:
    """Stop the embedded PostgreSQL in ``pgdata`` unless a live process still uses it.

    pgserver stops the server when the last process that asked for it exits
    normally, counting them in ``.handle_pids.json``; a process that died
    without its exit handlers (a signal, a closed terminal) stays on that
    list for ever, and then no exit stops the server. This drops the dead,
    and stops the server (``pg_ctl stop -m fast``) when none is left alive.
    ``make run`` calls it when it ends (``stop_embedded_after_run``). Returns what it did: ``"stopped"``, ``"in use"`` or
    ``"not running"``.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text()) if handles.exists() else []
    except ValueError:
        pids = []
    live = [p for p in pids if isinstance(p, int) and p != os.getpid() and _alive(p)]
    if handles.exists():
        handles.write_text(json.dumps(live))
    if live:
        return "in use"
    if not (pgdata / "postmaster.pid").exists():
        return "not running"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pgserver  # imported lazily: production never needs it
        from pgserver import utils as pgserver_utils

    # pgserver runs the server as the system user "pgserver" when started by
    # root (PostgreSQL refuses to run as root); pg_ctl must be that user too.
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    if user is not None:
        # As pgserver does when it starts the server: that user must be able
        # to reach the data directory (its parents' modes may have changed
        # since: pytest resets its temporary root to 0700, for one).
        pgserver_utils.ensure_prefix_permissions(pgdata)
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return "stopped"


def normalise(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the operator wrote."""
    u = make_url(url)
    if u.drivername in {"postgres", "postgresql", "postgresql+psycopg2"}:
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def runtime_url(owner_url: str, role: str, password: str | None) -> str:
    """The runtime role's URL: the owner's host and database, another user."""
    u = make_url(normalise(owner_url)).set(username=role, password=password)
    return u.render_as_string(hide_password=False)


CROSS_ORG_BIND = "cross_org"

# What the row-level security policies read: the organization (and user) a
# transaction works for. ``set_config(..., true)`` makes both
# transaction-local, so a pooled connection cannot carry them into its next
# transaction. Every transaction that sets them runs this statement, except a
# request's, whose organization lookup sets them inside the
# ``enter_organization`` function (migration 0005) to save a round trip.
TENANT_SETTINGS_SQL = text("SELECT set_config('app.org_id', :org, true), set_config('app.user_id', :user, true)")


def tenant_settings(org_id=None, user_id=None) -> dict[str, str]:
    """The parameters of ``TENANT_SETTINGS_SQL`` (``''``: none)."""
    return {"org": str(org_id) if org_id else "", "user": str(user_id) if user_id else ""}


def apply_tenant_settings(conn, org_id=None, user_id=None) -> dict[str, str]:
    """Make ``org_id`` / ``user_id`` the RLS settings of the transaction open on
    ``conn`` (a SQLAlchemy connection; none: no organization's rows at all).
    Returns the parameters sent."""
    params = tenant_settings(org_id, user_id)
    conn.execute(TENANT_SETTINGS_SQL, params)
    return params


def owner_engine():
    """An engine on the owner connection (migrations, checks, maintenance)."""
    return create_engine(current_app.config["DATABASE_URL"], poolclass=NullPool)


def resolve(config: dict) -> None:
    """Fill ``DATABASE_URL`` (owner), ``SQLALCHEMY_DATABASE_URI`` (runtime) and
    the ``cross_org`` bind (the cross-organization role).

    With no ``DATABASE_URL`` the embedded server in ``instance/pgdata`` is used.
    """
    owner = config.get("DATABASE_URL")
    if not owner:
        owner = embedded_owner_url(Path(config["INSTANCE_DIR"]) / "pgdata")
        config["EMBEDDED_DATABASE"] = True
    config["DATABASE_URL"] = normalise(owner)
    config["SQLALCHEMY_DATABASE_URI"] = config.get("DATABASE_RUNTIME_URL") or runtime_url(
        owner, config["DATABASE_RUNTIME_ROLE"], config.get("DATABASE_RUNTIME_PASSWORD")
    )
    cross = config.get("DATABASE_CROSS_ORG_URL") or runtime_url(
        owner, config["DATABASE_CROSS_ORG_ROLE"], config.get("DATABASE_CROSS_ORG_PASSWORD")
    )
    # A small pool: cross-organization work is the platform console, jobs
    # and commands, never the bulk of the traffic.
    config["SQLALCHEMY_BINDS"] = {
        CROSS_ORG_BIND: {
            "url": normalise(cross),
            "pool_size": 2,
            "max_overflow": 3,
            "pool_recycle": config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_recycle", 1800),
            "pool_pre_ping": config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping", False),
        },
    }


def stop_embedded_after_run() -> None:
    """What ``make run`` runs as it ends (``python -c``). Reads only the
    configuration (creating the app would start the server); does nothing
    when ``DATABASE_URL`` names another server."""
    cfg = load_config()
    if cfg.get("DATABASE_URL"):
        return
    outcome = stop_embedded(Path(cfg["INSTANCE_DIR"]) / "pgdata")
    if outcome == "stopped":
        print("Embedded PostgreSQL stopped.")
    elif outcome == "in use":
        print("Embedded PostgreSQL left running: another process still uses it.")

"""Alembic environment. Migrations run as the **owner** (``DATABASE_URL``),
never as the runtime role. Before migrating, the runtime and the
cross-organization roles are created if missing (the policies name the
latter); after every upgrade their grants are re-applied, so a new table is
covered at once."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_metadata = current_app.extensions["migrate"].db.metadata


def include_name(name, type_, parent_names):
    """Autogenerate leaves the job queue's tables alone: procrastinate's schema
    is the library's, applied from its SQL (0009_jobs), not from our models."""
    from app.rls import QUEUE_TABLES

    return not (type_ == "table" and name in QUEUE_TABLES)


def run_migrations_offline():
    context.configure(url=current_app.config["DATABASE_URL"], target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    from app.rls import ensure_role, grant_cross_org, grant_runtime

    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    engine = create_engine(current_app.config["DATABASE_URL"], poolclass=pool.NullPool)
    cfg = current_app.config
    role, cross_role = cfg["DATABASE_RUNTIME_ROLE"], cfg["DATABASE_CROSS_ORG_ROLE"]
    autogenerate = getattr(config.cmd_opts, "autogenerate", False)
    with engine.connect() as connection:
        # Serialise concurrent upgrades (several app instances starting at once).
        connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        connection.commit()
        if not autogenerate:
            with connection.begin():
                ensure_role(connection, role, cfg.get("DATABASE_RUNTIME_PASSWORD"))
                ensure_role(connection, cross_role, cfg.get("DATABASE_CROSS_ORG_PASSWORD"))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=include_name,
            process_revision_directives=process_revision_directives,
            compare_type=True,
            transaction_per_migration=True,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
            if connection.in_transaction():
                connection.commit()
            if not autogenerate:
                with connection.begin():
                    grant_runtime(connection, role)
                    grant_cross_org(connection, cross_role)
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Migrations: one head, they match the models, and they run down and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


@pytest.fixture(scope="module")
def scratch_app(database_url, tmp_path_factory):
    """An app on a scratch database of the same server, for destructive migration runs."""
    from app import create_app

    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_migrations")
    admin = create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    app = create_app(
        {
            "DATABASE_URL": scratch.render_as_string(hide_password=False),
            "SECRET_KEY": "migrations-test",
            "INSTANCE_DIR": str(tmp_path_factory.mktemp("migrations-instance")),
            "ENV_NAME": "test",
        }
    )
    yield app
    from app.extensions import db

    with app.app_context():
        db.engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
    admin.dispose()


def test_there_is_exactly_one_head(scratch_app):
    from alembic.script import ScriptDirectory

    with scratch_app.app_context():
        cfg = scratch_app.extensions["migrate"].migrate.get_config()
        heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several heads {heads}: add a merge revision"


def test_every_revision_has_a_message(scratch_app):
    from alembic.script import ScriptDirectory

    with scratch_app.app_context():
        cfg = scratch_app.extensions["migrate"].migrate.get_config()
        for rev in ScriptDirectory.from_config(cfg).walk_revisions():
            assert rev.doc and rev.doc.strip(), f"revision {rev.revision} has no message"


def test_migrations_run_down_to_nothing_and_up_again(scratch_app):
    from flask_migrate import downgrade, upgrade

    with scratch_app.app_context():
        upgrade(revision="heads")
        downgrade(revision="base")
        upgrade(revision="heads")
        engine = create_engine(scratch_app.config["DATABASE_URL"], poolclass=NullPool)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM plans")).scalar() == 3
        engine.dispose()


@pytest.mark.filterwarnings("ignore:Did not recognize type:sqlalchemy.exc.SAWarning")
def test_models_and_migrations_agree(scratch_app):
    """Autogenerate finds nothing to do: the models are what the migrations build."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from app.extensions import db

    with scratch_app.app_context():
        upgrade(revision="heads")
        engine = create_engine(scratch_app.config["DATABASE_URL"], poolclass=NullPool)
        with engine.connect() as c:
            from app.rls import QUEUE_TABLES

            # The job queue's tables are procrastinate's (0009_jobs), not models.
            ctx = MigrationContext.configure(
                c,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, type_, _: not (type_ == "table" and name in QUEUE_TABLES),
                },
            )
            diff = compare_metadata(ctx, db.metadata)
        engine.dispose()
    # Created only where pg_trgm/btree_gin exist (see 0003_invitations and
    # 0019_platform_scale), so not declared on the models.
    conditional = {
        "ix_memberships_search_trgm",
        "ix_organizations_name_trgm",
        "ix_organizations_slug_trgm",
        "ix_organizations_domain_trgm",
        "ix_users_email_trgm",
        "ix_users_name_trgm",
    }
    diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name in conditional)]
    assert diff == [], f"models differ from migrations: {diff}"

"""edit versions on roles, projects and organizations; one-time keys of create forms

Revision ID: 0010_edit_versions_submit_keys
Revises: 0009_jobs

* ``version`` (integer, 1 for existing rows) on ``roles``, ``projects`` and
  ``organizations``: bumped by every update (SQLAlchemy's
  ``version_id_col``). An edit form carries the version it was drawn from;
  a save made from an older one is refused with 409 (``app.concurrency``).
* ``submit_keys`` (tenant table, RLS): the one-time key of each create form
  that was submitted, with where its result lives, so a second submit (a
  double click, a resend) shows the first result instead of creating again.
  Keys older than a day are deleted as new ones arrive.

Rollback: ``flask --app wsgi db downgrade 0009_jobs`` drops the
``version`` columns and the ``submit_keys`` table.
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0010_edit_versions_submit_keys"
down_revision = "0009_jobs"
branch_labels = None
depends_on = None

VERSIONED = ("roles", "projects", "organizations")


def upgrade():
    for table in VERSIONED:
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")))

    op.create_table(
        "submit_keys",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("result_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_submit_keys_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "key", name=op.f("pk_submit_keys")),
    )
    op.create_index("ix_submit_keys_org_created", "submit_keys", ["organization_id", "created_at"])
    rls.enable(op, "submit_keys")


def downgrade():
    op.drop_table("submit_keys")
    for table in VERSIONED:
        op.drop_column(table, "version")

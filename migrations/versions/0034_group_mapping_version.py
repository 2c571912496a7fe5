"""Group → role mappings get a version: changing a mapping's role is an edit (stale save → 409)

Revision ID: 0034_group_mapping_version
Revises: 0033_analytics_generation

* ``group_role_mappings.version``: bumped by every change of the mapping's
  role (SQLAlchemy's version counter), carried by the edit form, so a save
  made from an older page is refused instead of undoing someone else's
  change. ``NOT NULL DEFAULT 1``: PostgreSQL 11+ keeps the default in the
  catalogue, so existing rows are not rewritten and the table is not held.

Rollback: ``flask --app wsgi db downgrade 0033_analytics_generation`` drops the column
(mappings stay, with their roles).
"""

import sqlalchemy as sa
from alembic import op

revision = "0034_group_mapping_version"
down_revision = "0033_analytics_generation"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("group_role_mappings", sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade():
    op.drop_column("group_role_mappings", "version")

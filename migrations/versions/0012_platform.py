"""platform console: a suspension's reason, disabled users

Revision ID: 0012_platform
Revises: 0011_webhooks

* ``organizations.suspension_reason``: why the platform suspended an
  organization, shown to its members on the suspension page (NULL when
  active). Written only by the cross-organization role (app.rls).
* ``users.disabled_at``: a super-admin disabled the account; it cannot sign
  in and its sessions were ended. Written only by the cross-organization role.

Both are nullable with no default: existing rows need no backfill.

Rollback: ``flask --app wsgi db downgrade 0011_webhooks``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_platform"
down_revision = "0011_webhooks"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("organizations", sa.Column("suspension_reason", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("users", "disabled_at")
    op.drop_column("organizations", "suspension_reason")

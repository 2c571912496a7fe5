"""invitations: a personal message and an edit version

Revision ID: 0013_invitation_message_version
Revises: 0012_platform

* ``message`` (text, at most 500 characters, NULL: none): the inviter's
  note, shown in the invitation mail and on the accept page.
* ``version`` (integer, 1 for existing rows): a pending invitation's role
  can be changed; the edit carries the version it was drawn from and a
  stale one is refused (``app.concurrency``).

Rollback: ``flask --app wsgi db downgrade 0012_platform``
drops both columns (messages are lost).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_invitation_message_version"
down_revision = "0012_platform"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invitations", sa.Column("message", sa.Text(), nullable=True))
    op.add_column("invitations", sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")))
    op.create_check_constraint(op.f("ck_invitations_message_length"), "invitations", "char_length(message) <= 500")


def downgrade():
    op.drop_constraint(op.f("ck_invitations_message_length"), "invitations", type_="check")
    op.drop_column("invitations", "version")
    op.drop_column("invitations", "message")

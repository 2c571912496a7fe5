"""two-factor authentication: TOTP factors and recovery codes (global tables)

Revision ID: 0022_two_factor
Revises: 0021_analytics_rollups

* ``totp_factors``: a user's TOTP authenticator, its secret encrypted
  (``app.crypto``), pending until confirmed, the time step of the last
  accepted code (no reuse), removal time (rows are never deleted). At most
  one non-removed row per user.
* ``recovery_codes``: SHA-256 of each one-time recovery code, when used,
  when revoked (regenerated or 2FA turned off).

Global (a person's, not an organization's): no ``organization_id``; the
runtime role's column grants are in ``app.rls.RUNTIME_GLOBAL_WRITES``.
Rollback: ``flask --app wsgi db downgrade 0021_analytics_rollups`` drops both
tables (every user loses their second factor).
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_two_factor"
down_revision = "0021_analytics_rollups"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "totp_factors",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_totp_factors_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_factors")),
    )
    op.create_index(
        "uq_totp_factors_user_current",
        "totp_factors",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index("ix_recovery_codes_user_hash", "recovery_codes", ["user_id", "code_hash"])


def downgrade():
    op.drop_index("ix_recovery_codes_user_hash", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_index("uq_totp_factors_user_current", table_name="totp_factors")
    op.drop_table("totp_factors")

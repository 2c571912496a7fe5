"""organization exports: progress and, for 24 hours, the archive (tenant table, RLS)

Revision ID: 0028_org_exports
Revises: 0027_access_reviews

``org_exports``: one row per export an Owner asked for on the settings page
(``app.orgdata``): its state and progress (the page polls it), then the
archive's bytes (``bytea``: every web machine serves the download with no
shared disk) until it expires 24 hours later, when a periodic job drops
the bytes and keeps the row as history.

Rollback: ``flask --app wsgi db downgrade 0027_access_reviews`` drops the table
(past exports and their archives are lost; nothing else depends on it).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0028_org_exports"
down_revision = "0027_access_reviews"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "org_exports",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("requested_by", sa.UUID(), nullable=True),
        sa.Column("requested_label", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("archive", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name=op.f("ck_org_exports_status")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_org_exports_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_org_exports")),
    )
    op.create_index("ix_org_exports_org_created", "org_exports", ["organization_id", "created_at"])
    rls.enable(op, "org_exports")


def downgrade():
    rls.disable(op, "org_exports")
    op.drop_index("ix_org_exports_org_created", table_name="org_exports")
    op.drop_table("org_exports")

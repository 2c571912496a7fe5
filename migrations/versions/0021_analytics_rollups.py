"""analytics: daily rollups of the audit log and their high-water marks (tenant tables, RLS)

Revision ID: 0021_analytics_rollups
Revises: 0020_org_settings

* ``analytics_daily``: ``(organization, metric, day, dimension) -> count``,
  the day in the organization's time zone. Metrics: ``action`` (events per
  action), ``actor`` (events per member who acted), ``actives`` (distinct
  members active over the 1, 7 and 30 days ending that day).
* ``analytics_watermarks``: per organization, the audit seal ``seq`` the
  counts include (everything up to it, nothing after), the time zone the
  days were cut in and the last day the ``actives`` were recomputed through.
* ``ix_webhook_deliveries_org_created``: the webhook-delivery chart reads
  deliveries by day.

Both new tables are filled by ``app.audit.rollups`` (design there); an
empty table after this migration fills on the next seal run or with
``flask --app wsgi analytics rebuild``.

Rollback: ``flask --app wsgi db downgrade 0020_org_settings``
drops both tables and the index (the rollups are derived data: nothing is lost).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0021_analytics_rollups"
down_revision = "0020_org_settings"
branch_labels = None
depends_on = None

TABLES = ("analytics_daily", "analytics_watermarks")


def _org(table):
    return (
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f(f"fk_{table}_organization_id_organizations")
        ),
    )


def upgrade():
    col, fk = _org("analytics_daily")
    op.create_table(
        "analytics_daily",
        col,
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        fk,
        sa.CheckConstraint("count >= 0", name=op.f("ck_analytics_daily_count")),
        sa.PrimaryKeyConstraint("organization_id", "metric", "day", "dimension", name=op.f("pk_analytics_daily")),
    )
    col, fk = _org("analytics_watermarks")
    op.create_table(
        "analytics_watermarks",
        col,
        sa.Column("through_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("actives_through", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        fk,
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_analytics_watermarks")),
    )
    for table in TABLES:
        rls.enable(op, table)
    op.create_index("ix_webhook_deliveries_org_created", "webhook_deliveries", ["organization_id", "created_at"])


def downgrade():
    op.drop_index("ix_webhook_deliveries_org_created", table_name="webhook_deliveries")
    for table in reversed(TABLES):
        op.drop_table(table)

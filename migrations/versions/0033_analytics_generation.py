"""analytics: a generation on the rollups' watermark, bumped when counts are recounted or purged

Revision ID: 0033_analytics_generation
Revises: 0032_platform_search

``analytics_watermarks.generation``: incremented by every rebuild of an
organization's rollups (``analytics rebuild``, a time-zone change) and by
the retention purge of its per-member rows. Between two increments the
rollups only grow, by exactly the sealed events past the mark; the most
active members' kept per-range totals (``app.audit.rollups.actor_totals``)
rely on that and start again when the generation moved.

Rollback: ``flask --app wsgi db downgrade 0032_platform_search`` drops the
column (kept totals are per process: nothing else to undo).
"""

import sqlalchemy as sa
from alembic import op

revision = "0033_analytics_generation"
down_revision = "0032_platform_search"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("analytics_watermarks", sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False))


def downgrade():
    op.drop_column("analytics_watermarks", "generation")

"""platform console at scale: cached sizes and figures, keyset and trigram indexes

Revision ID: 0019_platform_scale
Revises: 0018_entitlement_overrides

What the console reads at 10,000 organizations and 1,000,000 users:

* ``organizations.member_count``: active members, counted by the periodic
  job ``platform.refresh_stats`` (NULL until its first run). The
  organizations list filters by size on it instead of counting every
  organization's members per request. Written by the cross-organization
  role only.
* ``platform_stats``: one row per cached figure set (``overview``: users,
  disabled users, organizations active in 7 and 30 days), refreshed by the
  same job; the overview reads it instead of counting big tables.
* Keyset indexes for the list's sorts: ``(lower(name), id)`` and
  ``(created_at, id)``.
* Where ``pg_trgm`` is available (not in the embedded PostgreSQL): trigram
  indexes for the "contains" searches (organizations' name, address and
  custom domain; users' e-mail and name). Without it the same searches
  still work, by a scan.

Rollback: ``flask --app wsgi db downgrade 0018_entitlement_overrides``
drops the column, the table and the indexes (the extension stays: other
migrations use it).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019_platform_scale"
down_revision = "0018_entitlement_overrides"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {
    "ix_organizations_name_trgm": "organizations USING gin (lower(name) gin_trgm_ops)",
    "ix_organizations_slug_trgm": "organizations USING gin (slug gin_trgm_ops)",
    "ix_organizations_domain_trgm": "organizations USING gin (lower(custom_domain) gin_trgm_ops)",
    "ix_users_email_trgm": "users USING gin (lower(email) gin_trgm_ops)",
    "ix_users_name_trgm": "users USING gin (lower(name) gin_trgm_ops)",
}


def _try_extension(name: str) -> bool:
    """Create an extension if this server has it and we may; never fails the migration."""
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}).scalar()
    if not available:
        return False
    nested = bind.begin_nested()
    try:
        bind.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name}"))
        nested.commit()
        return True
    except sa.exc.DBAPIError:
        nested.rollback()
        return False


def upgrade():
    op.add_column("organizations", sa.Column("member_count", sa.Integer(), nullable=True))
    op.create_table(
        "platform_stats",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_platform_stats")),
    )
    op.create_index("ix_organizations_name_id", "organizations", [sa.literal_column("lower(name)"), "id"])
    op.create_index("ix_organizations_created_id", "organizations", ["created_at", "id"])
    op.create_index("ix_organizations_member_count", "organizations", ["member_count"])
    if _try_extension("pg_trgm"):
        for name, spec in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {spec}")


def downgrade():
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_organizations_member_count", table_name="organizations")
    op.drop_index("ix_organizations_created_id", table_name="organizations")
    op.drop_index("ix_organizations_name_id", table_name="organizations")
    op.drop_table("platform_stats")
    op.drop_column("organizations", "member_count")

"""entitlement overrides: an organization's own limit or feature switch

Revision ID: 0018_entitlement_overrides
Revises: 0017_verified_domains

* ``entitlement_overrides`` (tenant table, RLS): per organization and name,
  a custom limit (``limit_value``, NULL: unlimited) or a feature switched on
  or off (``enabled``), optionally until a date, with the reason and who set
  it. Written by the cross-organization role only (the platform console);
  the runtime role may only read it (``app.rls.PLATFORM_WRITTEN_TABLES``).
* ``organizations.entitlement_overrides`` (JSONB, ``{}``): the same rows as
  ``{name: {"value": ..., "until": ...}}``, kept by a trigger on the table
  above. The request's entry statement loads the organization in one
  statement; with this column it brings the overrides along at no cost, and
  ``app.tenancy.entitlements`` applies an expired ``until`` when it reads.

* ``plans.version``: the console edits plans; its form carries the version
  it was drawn from (no lost updates).

Nothing to backfill: no organization has overrides yet; versions start at 1.

Rollback: ``flask --app wsgi db downgrade 0017_verified_domains`` drops the
table, the trigger and the columns (every override is lost).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0018_entitlement_overrides"
down_revision = "0017_verified_domains"
branch_labels = None
depends_on = None

REFRESH = """
CREATE OR REPLACE FUNCTION refresh_entitlement_overrides() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    org uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.organization_id ELSE NEW.organization_id END;
BEGIN
    UPDATE organizations SET entitlement_overrides = coalesce(
        (SELECT jsonb_object_agg(o.name, jsonb_build_object(
                    'value', CASE WHEN o.kind = 'feature' THEN to_jsonb(o.enabled) ELSE to_jsonb(o.limit_value) END,
                    'until', to_jsonb(o.until)))
           FROM entitlement_overrides o WHERE o.organization_id = org),
        '{}'::jsonb)
    WHERE id = org;
    RETURN NULL;
END $$
"""


def upgrade():
    op.add_column("plans", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.add_column(
        "organizations",
        sa.Column("entitlement_overrides", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.create_table(
        "entitlement_overrides",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("limit_value", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_entitlement_overrides_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_entitlement_overrides_created_by_users"), ondelete="SET NULL"
        ),
        sa.CheckConstraint("kind IN ('limit', 'feature')", name=op.f("ck_entitlement_overrides_kind")),
        sa.CheckConstraint(
            "(kind = 'feature' AND enabled IS NOT NULL AND limit_value IS NULL)"
            " OR (kind = 'limit' AND enabled IS NULL AND (limit_value IS NULL OR limit_value >= 0))",
            name=op.f("ck_entitlement_overrides_value"),
        ),
        sa.PrimaryKeyConstraint("organization_id", "name", name=op.f("pk_entitlement_overrides")),
    )
    rls.enable(op, "entitlement_overrides")
    op.execute(REFRESH)
    op.execute(
        "CREATE TRIGGER entitlement_overrides_refresh AFTER INSERT OR UPDATE OR DELETE ON entitlement_overrides"
        " FOR EACH ROW EXECUTE FUNCTION refresh_entitlement_overrides()"
    )
    op.execute("REVOKE ALL ON FUNCTION refresh_entitlement_overrides() FROM PUBLIC")


def downgrade():
    op.drop_table("entitlement_overrides")
    op.execute("DROP FUNCTION IF EXISTS refresh_entitlement_overrides()")
    op.drop_column("organizations", "entitlement_overrides")
    op.drop_column("plans", "version")

"""organization settings: retired slugs, logos, notification preferences

Revision ID: 0020_org_settings
Revises: 0019_platform_scale

* ``retired_slugs`` (global): an address an organization gave up when it
  changed its slug. For 30 days (``expires_at``) the old host redirects to
  the new one and nobody else may take it. Global, not a tenant table: the
  host is resolved before any organization is known, so the row must be
  readable without one (its column is ``org_id``, not ``organization_id``,
  for that reason: a tenant table would be under RLS).
* ``organization_logos`` (tenant, RLS): the logo's bytes (``bytea``), its
  type, size and digest. In the database rather than on disk: every web
  machine serves it with no shared file system, it is backed up, purged
  and isolated (RLS) with the rest of the organization's data, and at most
  512 KB per organization costs nothing worth a second storage.
* ``notification_preferences`` (tenant, RLS): per membership, the kinds of
  e-mail the member turned off, with an edit ``version``; deleted with the
  membership.

Organizations' colour, time zone, contact address and security policy live
in ``organizations.settings`` (JSONB): the request's entry statement
already reads that row, so enforcing the policy costs no statement. The
runtime role may now UPDATE ``organizations.slug`` (app.rls).

Rollback: ``flask --app wsgi db downgrade 0019_platform_scale``
drops the three tables (logos, preferences and redirects are lost).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0020_org_settings"
down_revision = "0019_platform_scale"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "retired_slugs",
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_retired_slugs_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_retired_slugs")),
    )
    op.create_index("ix_retired_slugs_org", "retired_slugs", ["org_id"])

    op.create_table(
        "organization_logos",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_organization_logos_organization_id_organizations")
        ),
        sa.CheckConstraint("octet_length(data) <= 524288", name=op.f("ck_organization_logos_size")),
        sa.CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg')", name=op.f("ck_organization_logos_content_type")
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_logos")),
    )
    rls.enable(op, "organization_logos")

    op.create_table(
        "notification_preferences",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("muted", sa.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notification_preferences_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["memberships.organization_id", "memberships.user_id"],
            name=op.f("fk_notification_preferences_membership"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_notification_preferences")),
    )
    rls.enable(op, "notification_preferences")


def downgrade():
    rls.disable(op, "notification_preferences")
    op.drop_table("notification_preferences")
    rls.disable(op, "organization_logos")
    op.drop_table("organization_logos")
    op.drop_index("ix_retired_slugs_org", table_name="retired_slugs")
    op.drop_table("retired_slugs")

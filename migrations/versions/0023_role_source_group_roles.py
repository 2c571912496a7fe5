"""role sources and identity-provider group → role mappings (tenant table, RLS)

Revision ID: 0023_role_source_group_roles
Revises: 0022_two_factor

* ``memberships.role_source``: where the member's role comes from —
  ``manual`` (an admin, an invitation, the default), ``sso`` (mapped from
  the groups of an SSO sign-in) or ``scim`` (mapped from SCIM groups). The
  members page shows it. A constant default: adding it rewrites nothing
  (PostgreSQL 11+ stores the default in the catalogue).
* ``memberships.scim_external_id``: the identity provider's ``externalId``
  of the member, as sent over SCIM (unique in the organization when set).
* ``group_role_mappings``: an identity-provider group (its name or id, as
  the provider sends it; matched case-insensitively) that gives a role, for
  SSO sign-ins, SCIM, or both (``any``). Never Owner: ownership is given by
  an Owner, not by a directory. Exactly one of a system role or a custom
  role of the organization.
* ``audit_events.actor_type`` may be ``scim``: a SCIM token (the identity
  provider provisioning members). The constraint is added ``NOT VALID`` and
  validated after, so the log is not locked while its rows are checked.

Rollback: ``flask --app wsgi db downgrade 0022_two_factor`` drops the table
and both columns (every role stays as it is; where it came from is lost).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0023_role_source_group_roles"
down_revision = "0022_two_factor"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("memberships", sa.Column("role_source", sa.String(length=8), server_default="manual", nullable=False))
    op.create_check_constraint(
        op.f("ck_memberships_role_source"), "memberships", "role_source IN ('manual', 'sso', 'scim')"
    )
    op.add_column("memberships", sa.Column("scim_external_id", sa.Text(), nullable=True))
    op.create_index(
        "uq_memberships_org_scim_external_id",
        "memberships",
        ["organization_id", "scim_external_id"],
        unique=True,
        postgresql_where=sa.text("scim_external_id IS NOT NULL"),
    )
    op.create_table(
        "group_role_mappings",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("group_name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("custom_role_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_group_role_mappings_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "custom_role_id"],
            ["roles.organization_id", "roles.id"],
            name="fk_group_role_mappings_custom_role",
        ),
        sa.CheckConstraint("source IN ('sso', 'scim', 'any')", name=op.f("ck_group_role_mappings_source")),
        sa.CheckConstraint("(role IS NULL) <> (custom_role_id IS NULL)", name=op.f("ck_group_role_mappings_one_role")),
        sa.CheckConstraint("role IS NULL OR role <> 'owner'", name=op.f("ck_group_role_mappings_not_owner")),
        sa.CheckConstraint("char_length(group_name) BETWEEN 1 AND 256", name=op.f("ck_group_role_mappings_group")),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_group_role_mappings")),
    )
    op.create_index(
        "uq_group_role_mappings_org_source_group",
        "group_role_mappings",
        ["organization_id", "source", sa.text("lower(group_name)")],
        unique=True,
    )
    rls.enable(op, "group_role_mappings")
    _actor_types("'user', 'api_key', 'system', 'support', 'anonymous', 'scim'")


def _actor_types(allowed: str) -> None:
    op.execute("ALTER TABLE audit_events DROP CONSTRAINT ck_audit_events_actor_type")
    op.execute(
        f"ALTER TABLE audit_events ADD CONSTRAINT ck_audit_events_actor_type CHECK (actor_type IN ({allowed})) NOT VALID"
    )
    op.execute("ALTER TABLE audit_events VALIDATE CONSTRAINT ck_audit_events_actor_type")


def downgrade():
    # Fails (the log is append-only) while SCIM events exist: the log is never rewritten.
    _actor_types("'user', 'api_key', 'system', 'support', 'anonymous'")
    op.drop_table("group_role_mappings")
    op.drop_index("uq_memberships_org_scim_external_id", table_name="memberships")
    op.drop_column("memberships", "scim_external_id")
    op.drop_constraint(op.f("ck_memberships_role_source"), "memberships", type_="check")
    op.drop_column("memberships", "role_source")

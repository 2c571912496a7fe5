"""SCIM 2.0 provisioning: tokens, users, groups and group members (tenant tables, RLS)

Revision ID: 0031_scim
Revises: 0030_saml

* ``scim_tokens``: the bearer tokens an organization's identity provider
  uses (``scim_<key_id>_<secret>``): only the SHA-256 of the whole token is
  kept, with its public ``key_id``, name, creator, last use and revocation.
* ``scim_users``: a member provisioned by SCIM — the SCIM ``userName``
  (unique in the organization, case-insensitively), the e-mail addresses
  the provider sent (lower-cased, for ``emails.value eq`` filters), the
  whole SCIM document as the provider last wrote it (never a password), and
  a version bumped by every change (the ETag). Its row goes with the
  membership (foreign key, cascade); ``externalId`` is on the membership.
* ``scim_groups`` / ``scim_group_members``: the organization's SCIM groups
  and who is in them; a member leaves every group when their SCIM user goes.

Rollback: ``flask --app wsgi db downgrade 0030_saml``
drops the four tables (members stay, with their roles; SCIM can provision
them again by matching their e-mail).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0031_scim"
down_revision = "0030_saml"
branch_labels = None
depends_on = None

TABLES = ("scim_tokens", "scim_users", "scim_groups", "scim_group_members")


def _org_fk(table):
    return sa.ForeignKeyConstraint(
        ["organization_id"], ["organizations.id"], name=op.f(f"fk_{table}_organization_id_organizations")
    )


def upgrade():
    op.create_table(
        "scim_tokens",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _org_fk("scim_tokens"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_scim_tokens_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_scim_tokens")),
    )
    op.create_index("uq_scim_tokens_org_key_id", "scim_tokens", ["organization_id", "key_id"], unique=True)
    op.create_table(
        "scim_users",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("emails", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("document", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        _org_fk("scim_users"),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["memberships.organization_id", "memberships.user_id"],
            name="fk_scim_users_membership",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_scim_users")),
    )
    op.create_index(
        "uq_scim_users_org_user_name", "scim_users", ["organization_id", sa.text("lower(user_name)")], unique=True
    )
    op.create_index("ix_scim_users_org_created", "scim_users", ["organization_id", "created_at", "user_id"])
    # No index on the e-mails alone: every tenant index leads with
    # organization_id (tests/tenancy/test_schema_rules.py), and an
    # ``emails.value eq`` filter reads one organization's SCIM users.
    op.create_table(
        "scim_groups",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("document", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        _org_fk("scim_groups"),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_scim_groups")),
    )
    op.create_index(
        "ix_scim_groups_org_display_name", "scim_groups", ["organization_id", sa.text("lower(display_name)")]
    )
    op.create_index("ix_scim_groups_org_created", "scim_groups", ["organization_id", "created_at", "id"])
    op.create_table(
        "scim_group_members",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("group_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        _org_fk("scim_group_members"),
        sa.ForeignKeyConstraint(
            ["organization_id", "group_id"],
            ["scim_groups.organization_id", "scim_groups.id"],
            name="fk_scim_group_members_group",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["scim_users.organization_id", "scim_users.user_id"],
            name="fk_scim_group_members_user",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "group_id", "user_id", name=op.f("pk_scim_group_members")),
    )
    op.create_index("ix_scim_group_members_org_user", "scim_group_members", ["organization_id", "user_id"])
    for table in TABLES:
        rls.enable(op, table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)

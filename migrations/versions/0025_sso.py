"""sso: SSO connections, the identities they sign in, setup links (tenant tables, RLS)

Revision ID: 0025_sso
Revises: 0024_security_mail_reach

* ``sso_connections``: an organization's identity providers (OIDC or SAML),
  their configuration (JSONB), the OIDC client secret encrypted
  (``app.crypto``), status draft/tested/enabled/disabled, the last test's
  result, an edit version. At most one enabled per organization
  (``uq_sso_connections_enabled``).
* ``sso_identities``: (connection, subject) -> user, made at the first SSO
  sign-in.
* ``sso_setup_links``: 24-hour, single-use links for an IT contact without an
  account (SHA-256 of the token only).

Rollback: ``flask --app wsgi db downgrade 0024_security_mail_reach`` drops the three
tables (connections, identity links and setup links are lost; users and
memberships created by SSO stay).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0025_sso"
down_revision = "0024_security_mail_reach"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sso_connections",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=16), server_default="generic", nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("config", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("last_tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_test", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_sso_connections_organization_id_organizations")
        ),
        sa.CheckConstraint("protocol IN ('oidc', 'saml')", name=op.f("ck_sso_connections_protocol")),
        sa.CheckConstraint(
            "status IN ('draft', 'tested', 'enabled', 'disabled')", name=op.f("ck_sso_connections_status")
        ),
        sa.CheckConstraint(
            "provider IN ('okta', 'entra', 'google', 'generic')", name=op.f("ck_sso_connections_provider")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_sso_connections")),
    )
    op.create_index(
        "uq_sso_connections_enabled",
        "sso_connections",
        ["organization_id"],
        unique=True,
        postgresql_where=sa.text("status = 'enabled'"),
    )
    rls.enable(op, "sso_connections")

    op.create_table(
        "sso_identities",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_sso_identities_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "connection_id"],
            ["sso_connections.organization_id", "sso_connections.id"],
            name="fk_sso_identities_connection",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sso_identities_user", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organization_id", "connection_id", "subject", name=op.f("pk_sso_identities")),
    )
    op.create_index("ix_sso_identities_org_user", "sso_identities", ["organization_id", "user_id"])
    rls.enable(op, "sso_identities")

    op.create_table(
        "sso_setup_links",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_sso_setup_links_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_sso_setup_links_creator", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_sso_setup_links")),
    )
    op.create_index("uq_sso_setup_links_token", "sso_setup_links", ["organization_id", "token_hash"], unique=True)
    rls.enable(op, "sso_setup_links")


def downgrade():
    op.drop_table("sso_setup_links")
    op.drop_table("sso_identities")
    op.drop_table("sso_connections")

"""saml: outstanding AuthnRequests and seen assertion ids (tenant tables, RLS)

Revision ID: 0030_saml
Revises: 0029_passkeys

* ``saml_requests``: each AuthnRequest sent to an organization's identity
  provider (its id, the connection, a hash binding it to the browser that
  started it, its expiry), answered once by the ACS and used once by that
  browser: what refuses a wrong ``InResponseTo`` and login CSRF.
* ``saml_assertions_seen``: accepted assertion ids until they expire: what
  refuses a replayed assertion.

Rollback: ``flask --app wsgi db downgrade 0029_passkeys`` drops both
tables (sign-ins in progress fail and are started again; nothing else is
lost).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0030_saml"
down_revision = "0029_passkeys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "saml_requests",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("next_url", sa.String(length=512), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("identity", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_saml_requests_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "connection_id"],
            ["sso_connections.organization_id", "sso_connections.id"],
            name="fk_saml_requests_connection",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("purpose IN ('sign_in', 'test')", name=op.f("ck_saml_requests_purpose")),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_saml_requests")),
    )
    op.create_index("ix_saml_requests_org_expires", "saml_requests", ["organization_id", "expires_at"])
    rls.enable(op, "saml_requests")
    op.create_table(
        "saml_assertions_seen",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("assertion_id", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_saml_assertions_seen_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", "assertion_id", name=op.f("pk_saml_assertions_seen")),
    )
    op.create_index("ix_saml_assertions_seen_org_expires", "saml_assertions_seen", ["organization_id", "expires_at"])
    rls.enable(op, "saml_assertions_seen")


def downgrade():
    op.drop_table("saml_assertions_seen")
    op.drop_table("saml_requests")

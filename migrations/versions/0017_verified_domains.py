"""domains: an organization's verified domains (tenant table, RLS)

Revision ID: 0017_verified_domains
Revises: 0016_api_keys

* ``domains``: a domain an organization claims (``acme.com``), the token of
  the TXT record that proves it, its state (pending, verified, failed) with
  the time and outcome of the last check, when the record was last seen
  (seven days without it unverify the domain), and what it does for people
  with an address at it (auto-join off / suggest / auto, with a role).
* ``uq_domains_verified_name``: a domain is verified by one organization at
  most (a partial unique index on the name where the status is verified),
  which also serves the auto-join look-up by name.

The organization's custom host stays in ``organizations.custom_domain``
(one statement resolves a host, as before); the runtime role may now write
it (re-granted after every upgrade, ``app.rls``).

Rollback: ``flask --app wsgi db downgrade 0016_api_keys`` drops the
table (the domains and their verification history are lost; custom hosts
already set stay in ``organizations`` until cleared).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0017_verified_domains"
down_revision = "0016_api_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "domains",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_check_error", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_join", sa.String(length=16), server_default="off", nullable=False),
        sa.Column("auto_join_role", sa.String(length=32), server_default="member", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_domains_organization_id_organizations")
        ),
        sa.CheckConstraint("status IN ('pending', 'verified', 'failed')", name=op.f("ck_domains_status")),
        sa.CheckConstraint("auto_join IN ('off', 'suggest', 'auto')", name=op.f("ck_domains_auto_join")),
        sa.CheckConstraint(
            "auto_join_role IN ('admin', 'manager', 'member', 'viewer')", name=op.f("ck_domains_auto_join_role")
        ),
        sa.CheckConstraint("name = lower(name)", name=op.f("ck_domains_name_lower")),
        sa.CheckConstraint("(status = 'verified') = (verified_at IS NOT NULL)", name=op.f("ck_domains_verified_at")),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_domains")),
    )
    op.create_index("uq_domains_org_name", "domains", ["organization_id", "name"], unique=True)
    op.create_index(
        "uq_domains_verified_name", "domains", ["name"], unique=True, postgresql_where=sa.text("status = 'verified'")
    )
    rls.enable(op, "domains")


def downgrade():
    op.drop_table("domains")

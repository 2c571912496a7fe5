"""api: API keys, idempotency records, daily usage per key (tenant tables, RLS)

Revision ID: 0016_api_keys
Revises: 0015_webhook_delivery_batches

* ``api_keys``: a key's public id (``tnt_<key_id>_…``), the SHA-256 of the
  whole key (never the key), name, scopes, creator, expiry, revocation,
  last use (time, IP); ``version`` for edits.
* ``api_idempotency``: the answer to a POST made with an ``Idempotency-Key``
  (24 hours), per API key, with a hash of the request it answered.
* ``api_usage_daily``: requests (and refusals by the rate limit) per key
  per UTC day, for the usage charts and the plan meters.

Every table has ``organization_id`` leading its keys and the RLS policy of
the other tenant tables. Rollback: ``flask --app wsgi db downgrade
0015_webhook_delivery_batches`` drops the three tables (every key stops
working).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0016_api_keys"
down_revision = "0015_webhook_delivery_batches"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "api_idempotency", "api_usage_daily")


def _org(table):
    return (
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f(f"fk_{table}_organization_id_organizations")
        ),
    )


def upgrade():
    col, fk = _org("api_keys")
    op.create_table(
        "api_keys",
        col,
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_to", sa.UUID(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_ip", sa.String(length=45), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        fk,
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_api_keys_created_by_users")),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("organization_id", "key_id", name=op.f("uq_api_keys_organization_id_key_id")),
    )
    op.create_index("ix_api_keys_org_created", "api_keys", ["organization_id", "created_at"])

    col, fk = _org("api_idempotency")
    op.create_table(
        "api_idempotency",
        col,
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        fk,
        sa.ForeignKeyConstraint(
            ["organization_id", "api_key_id"],
            ["api_keys.organization_id", "api_keys.id"],
            name="fk_api_idempotency_key",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "api_key_id", "idempotency_key", name=op.f("pk_api_idempotency")),
    )
    op.create_index("ix_api_idempotency_org_created", "api_idempotency", ["organization_id", "created_at"])

    col, fk = _org("api_usage_daily")
    op.create_table(
        "api_usage_daily",
        col,
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("throttled", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        fk,
        sa.ForeignKeyConstraint(
            ["organization_id", "api_key_id"],
            ["api_keys.organization_id", "api_keys.id"],
            name="fk_api_usage_daily_key",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "api_key_id", "day", name=op.f("pk_api_usage_daily")),
    )
    op.create_index("ix_api_usage_daily_org_day", "api_usage_daily", ["organization_id", "day"])
    for table in TABLES:
        rls.enable(op, table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)

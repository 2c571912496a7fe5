"""Audit streaming: an organization's streams of its sealed audit events to its security tools (tenant table, RLS)

Revision ID: 0035_audit_streams
Revises: 0034_group_mapping_version

* ``audit_streams``: one destination (generic HTTPS with NDJSON batches,
  Splunk HEC or Datadog logs), its URL, its secret or token encrypted with
  ``app.crypto``, enabled or not (and why not), and its **cursor**: the
  seal sequence (``audit_seals.seq``) of the last event the destination
  acknowledged with a 2xx (``cursor_seq``), plus the batch in flight
  (``inflight_through``: the last seq of the batch being sent, written
  before it is sent, so a batch repeated after a crash is the very same
  batch with the same batch id). Delivery bookkeeping on the same row: last
  success and failure, the consecutive failures and when the streak began,
  when the next attempt is due, how many events were delivered, the last
  error. ``version`` for optimistic edits.

Rollback: ``flask --app wsgi db downgrade 0034_group_mapping_version`` drops the table
(streams stop; the audit log itself is untouched).
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0035_audit_streams"
down_revision = "0034_group_mapping_version"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_streams",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_reason", sa.String(length=16), nullable=True),
        sa.Column("cursor_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("inflight_through", sa.BigInteger(), nullable=True),
        sa.Column("delivered_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failure_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("kind IN ('https', 'splunk_hec', 'datadog')", name=op.f("ck_audit_streams_kind")),
        sa.CheckConstraint(
            "disabled_reason IS NULL OR disabled_reason IN ('manual', 'failing')",
            name=op.f("ck_audit_streams_disabled_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_audit_streams_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_audit_streams")),
    )
    op.create_index("ix_audit_streams_org_created", "audit_streams", ["organization_id", "created_at"])
    rls.enable(op, "audit_streams")


def downgrade():
    op.drop_table("audit_streams")

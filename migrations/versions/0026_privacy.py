"""privacy: personal data exports, account deletions, signed audit redactions

Revision ID: 0026_privacy
Revises: 0025_sso

* ``personal_exports`` (global, a person's): one row per export a user asked
  for; the ZIP is kept in the row (``archive``, never on the web root) until
  it expires 24 hours after it was built, then the periodic job
  ``privacy.purge_exports`` empties it. Deleted with the user.
* ``account_deletions`` (global): that an account was deleted, when, and
  when its erasure finished. While the erasure job is pending it holds the
  person's e-mail and name encrypted (``app.crypto``), so the job knows what
  to scrub after the ``users`` row was already anonymised; the job clears it.
  What stays is the user id, which names nobody once ``users`` has no row.
* ``audit_redactions`` (tenant, RLS, append-only for the runtime and
  cross-organization roles; only the owner connection writes it, as the
  retention purge does): a signed statement per event whose personal fields
  were replaced at an account's erasure (design: ``app.auditlog.erasure``).

Existing rows: nothing is rewritten by this migration. Events recorded
before it keep their MAC and seal; an erasure later redacts them with a
signed statement, the same way as events recorded after it.

Rollback: ``flask --app wsgi db downgrade 0025_sso`` drops the three
tables. Events already redacted then no longer verify (their statements are
gone): downgrade only before any account was deleted.
"""

import sqlalchemy as sa
from alembic import op

from app import rls

revision = "0026_privacy"
down_revision = "0025_sso"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "personal_exports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("archive", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'ready', 'expired', 'failed')", name=op.f("ck_personal_exports_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_personal_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_exports")),
    )
    op.create_index("ix_personal_exports_user", "personal_exports", ["user_id", "requested_at"])
    op.create_index(
        "ix_personal_exports_expiry",
        "personal_exports",
        ["expires_at"],
        postgresql_where=sa.text("archive IS NOT NULL"),
    )
    op.create_table(
        "account_deletions",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("labels_encrypted", sa.Text(), nullable=True),
        sa.Column("redacted_events", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_account_deletions")),
    )
    op.create_table(
        "audit_redactions",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=False),
        sa.Column("previous_mac", sa.LargeBinary(), nullable=False),
        sa.Column("redacted_mac", sa.LargeBinary(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("mac", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_redactions_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_audit_redactions")),
    )
    op.create_index("ix_audit_redactions_org_event", "audit_redactions", ["organization_id", "event_id", "id"])
    rls.enable(op, "audit_redactions")


def downgrade():
    rls.disable(op, "audit_redactions")
    op.drop_index("ix_audit_redactions_org_event", table_name="audit_redactions")
    op.drop_table("audit_redactions")
    op.drop_table("account_deletions")
    op.drop_index("ix_personal_exports_expiry", table_name="personal_exports")
    op.drop_index("ix_personal_exports_user", table_name="personal_exports")
    op.drop_table("personal_exports")

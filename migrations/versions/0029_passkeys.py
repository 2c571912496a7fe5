"""passkeys: WebAuthn credentials and challenges; when a session last authenticated (step-up)

Revision ID: 0029_passkeys
Revises: 0028_org_exports

* ``webauthn_credentials``: a user's passkeys (credential id, COSE public
  key, signature counter, transports, name, created, last used, removal
  time: rows are never deleted). The credential id is unique.
* ``webauthn_challenges``: each challenge handed to a browser, bound to its
  purpose, user and session, single use (``used_at``) and short-lived.
* ``user_sessions.authenticated_at``: when the sign-in last proved who the
  person is (log-in or step-up). Nullable: the sessions that exist when this
  runs have none, and are asked to step up before a sensitive action, which
  is the safe reading of "unknown".

Global tables (a person's, not an organization's): no ``organization_id``;
the runtime role's column grants are in ``app.rls.RUNTIME_GLOBAL_WRITES``.
Rollback: ``flask --app wsgi db downgrade 0028_org_exports`` drops both tables
and the column (every passkey is lost; sensitive actions then need no
step-up until the code that asks for it is rolled back too).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029_passkeys"
down_revision = "0028_org_exports"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("user_sessions", sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("credential_id", postgresql.BYTEA(), nullable=False),
        sa.Column("public_key", postgresql.BYTEA(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("transports", postgresql.ARRAY(sa.String(length=32)), nullable=False, server_default="{}"),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=True),
        sa.Column("backed_up", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_webauthn_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_credentials")),
    )
    op.create_index("uq_webauthn_credentials_credential_id", "webauthn_credentials", ["credential_id"], unique=True)
    op.create_index("ix_webauthn_credentials_user", "webauthn_credentials", ["user_id"])
    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("challenge", postgresql.BYTEA(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_webauthn_challenges_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_webauthn_challenges_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_challenges")),
    )


def downgrade():
    op.drop_table("webauthn_challenges")
    op.drop_index("ix_webauthn_credentials_user", table_name="webauthn_credentials")
    op.drop_index("uq_webauthn_credentials_credential_id", table_name="webauthn_credentials")
    op.drop_table("webauthn_credentials")
    op.drop_column("user_sessions", "authenticated_at")

"""security e-mails a user turned off; which organizations a session reached

Revision ID: 0024_security_mail_reach
Revises: 0023_role_source_group_roles

* ``users.security_mail_muted`` (``text[]``, ``{}``): the kinds of security
  e-mail (``app.auth.notifications``) the user turned off on their account
  page. Empty for everyone: every notice reaches everyone until they opt out.
  The runtime role may UPDATE it (``app.rls.RUNTIME_GLOBAL_WRITES``).
* ``session_organizations`` (tenant table, RLS): one row per (organization,
  session) the first time a session's cookie reached that organization's
  host, with the session's user. An organization's admins see and revoke
  only those sessions of a member (``app.members.sessions``), never the
  member's sessions elsewhere. Deleted with the session (and by the
  organization's purge, like every tenant table).

Nothing to backfill: sessions from before this revision are recorded on
their next request to an organization's host.

Rollback: ``flask --app wsgi db downgrade 0023_role_source_group_roles`` drops the table
and the column (muted notices reach the user again; admins of an
organization see no member session until this revision is applied again).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0024_security_mail_reach"
down_revision = "0023_role_source_group_roles"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column(
            "security_mail_muted",
            postgresql.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.create_table(
        "session_organizations",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_session_organizations_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_session_organizations_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_organizations_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("organization_id", "session_id", name=op.f("pk_session_organizations")),
    )
    op.create_index("ix_session_organizations_org_user", "session_organizations", ["organization_id", "user_id"])
    rls.enable(op, "session_organizations")


def downgrade():
    op.drop_index("ix_session_organizations_org_user", table_name="session_organizations")
    op.drop_table("session_organizations")
    op.drop_column("users", "security_mail_muted")

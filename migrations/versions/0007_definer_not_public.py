"""SECURITY DEFINER functions are callable by the runtime role only

Revision ID: 0007_definer_not_public
Revises: 0006_handoff_browser_binding

PostgreSQL lets every role (PUBLIC) execute a new function. For
``member_search_ids`` (0003), which runs with its owner's rights and so is
not held back by row-level security, that meant any role able to connect to
the database — a reporting account, say — could set ``app.org_id`` to any
organization and search its members by name and e-mail. Only the runtime
role needs it; ``flask check`` now fails on any SECURITY DEFINER function
that PUBLIC may execute.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_definer_not_public"
down_revision = "0006_handoff_browser_binding"
branch_labels = None
depends_on = None


def upgrade():
    # The function exists only where pg_trgm was available (see 0003).
    exists = op.get_bind().execute(sa.text("SELECT to_regprocedure('public.member_search_ids(text)')")).scalar()
    if exists:
        op.execute("REVOKE ALL ON FUNCTION member_search_ids(text) FROM PUBLIC")


def downgrade():
    exists = op.get_bind().execute(sa.text("SELECT to_regprocedure('public.member_search_ids(text)')")).scalar()
    if exists:
        op.execute("GRANT EXECUTE ON FUNCTION member_search_ids(text) TO PUBLIC")

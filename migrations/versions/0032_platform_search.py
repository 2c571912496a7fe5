"""platform search: trigram indexes without a pending list

Revision ID: 0032_platform_search
Revises: 0031_scim

Why (issue 14, the organizations search at 10,000 organizations):

* The search's trigram GIN indexes (``0019_platform_scale``) were created
  with GIN's default ``fastupdate = on``: new entries go to a *pending
  list* that every search scans whole, until a vacuum merges it. The
  periodic ``member_count`` refresh rewrites the organizations' rows (a
  non-HOT update: ``member_count`` is indexed), so after a first count of
  10,000 organizations the name index held 483 pending pages: the planner
  costed it at 2,019 and seq-scanned instead (16 ms), and a forced index
  scan read the whole list (30 ms). With ``fastupdate = off`` an insert goes
  straight into the index (a little slower; these tables are written
  rarely) and a search reads a few dozen pages (0.7 ms). The pending lists
  are merged now (``gin_clean_pending_list``).

Rollback: ``flask --app wsgi db downgrade 0031_scim`` turns ``fastupdate``
back on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_platform_search"
down_revision = "0031_scim"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = (
    "ix_organizations_name_trgm",
    "ix_organizations_slug_trgm",
    "ix_organizations_domain_trgm",
    "ix_users_email_trgm",
    "ix_users_name_trgm",
)


def _present(bind, name: str) -> bool:
    return bool(bind.execute(sa.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar())


def upgrade():
    bind = op.get_bind()
    for name in TRIGRAM_INDEXES:  # absent where pg_trgm is (the embedded PostgreSQL)
        if _present(bind, name):
            op.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
            op.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")


def downgrade():
    bind = op.get_bind()
    for name in TRIGRAM_INDEXES:
        if _present(bind, name):
            op.execute(f"ALTER INDEX {name} RESET (fastupdate)")

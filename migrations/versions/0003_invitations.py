"""members: invitations table; member search and sort keys on memberships

Revision ID: 0003_invitations
Revises: 0001_foundation

* ``invitations`` (tenant table, RLS): only the SHA-256 of the token is
  stored; at most one pending invitation per (organization, lower(email)).
* ``memberships.search_name`` / ``search_email``: lower-cased copies of the
  user's name and e-mail, kept by triggers. The members page sorts, pages
  (keyset) and searches an organization of 50,000 members from indexes that
  lead with ``organization_id``, without joining ``users`` first.
* "Contains" search backed by a trigram index, when ``pg_trgm`` and
  ``btree_gin`` are available (any packaged PostgreSQL; the embedded
  development server lacks them, and there search scans the organization's
  rows — fine for small data sets).

Why a function for search: under row-level security PostgreSQL only pushes
*leakproof* operators into an index scan, and ``LIKE`` is not leakproof, so
the runtime role can never use a trigram index directly (measured: 58 ms
scan vs 0.4 ms with the index for 50,000 members). ``member_search_ids(p)``
is ``SECURITY DEFINER``: it runs as the migration owner and returns only the
*user ids* of members whose name or e-mail matches, filtered by the very
setting the RLS policy reads (``app.org_id``), so it can reveal nothing the
policy would hide; the caller still reads memberships under RLS. When the
owner is subject to RLS itself (a non-superuser owner without BYPASSRLS),
the function still works, just without the index.
"""

import sqlalchemy as sa
from alembic import op

from app import rls

# revision identifiers, used by Alembic.
revision = "0003_invitations"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def _try_extension(name: str) -> bool:
    """Create an extension if this server has it and we may; never fails the migration."""
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}).scalar()
    if not available:
        return False
    nested = bind.begin_nested()
    try:
        bind.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name}"))
        nested.commit()
        return True
    except sa.exc.DBAPIError:
        nested.rollback()
        return False


def upgrade():
    op.create_table(
        "invitations",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("custom_role_id", sa.UUID(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.UUID(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(role IS NULL) <> (custom_role_id IS NULL)", name=op.f("ck_invitations_one_role")),
        sa.CheckConstraint(
            "NOT (accepted_at IS NOT NULL AND revoked_at IS NOT NULL)", name=op.f("ck_invitations_accepted_or_revoked")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_invitations_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "custom_role_id"],
            ["roles.organization_id", "roles.id"],
            name="fk_invitations_custom_role",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["users.id"], name=op.f("fk_invitations_accepted_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_invitations")),
    )
    op.create_index("uq_invitations_org_token", "invitations", ["organization_id", "token_hash"], unique=True)
    op.create_index(
        "uq_invitations_pending_email",
        "invitations",
        ["organization_id", sa.literal_column("lower(email)")],
        unique=True,
        postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
    )
    rls.enable(op, "invitations")

    # ---- member search / sort keys -------------------------------------------------
    op.add_column("memberships", sa.Column("search_name", sa.Text(), nullable=True))
    op.add_column("memberships", sa.Column("search_email", sa.Text(), nullable=True))
    # Filled on insert (and when a membership is re-pointed) from users …
    op.execute("""
        CREATE OR REPLACE FUNCTION memberships_fill_search() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            SELECT lower(u.name), lower(u.email) INTO NEW.search_name, NEW.search_email
              FROM users u WHERE u.id = NEW.user_id;
            RETURN NEW;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER memberships_fill_search BEFORE INSERT OR UPDATE OF user_id ON memberships
        FOR EACH ROW EXECUTE FUNCTION memberships_fill_search()
    """)
    # … and kept in step when a user renames themselves or changes e-mail.
    # A user's memberships live in several organizations, so this one update
    # runs with app.all_orgs on; the SET clause restores the caller's value
    # when the function returns, so nothing leaks into the rest of the
    # transaction. It only ever copies the user's own name and e-mail.
    op.execute("""
        CREATE OR REPLACE FUNCTION users_sync_member_search() RETURNS trigger
        LANGUAGE plpgsql SET app.all_orgs = 'on' AS $$
        BEGIN
            UPDATE memberships SET search_name = lower(NEW.name), search_email = lower(NEW.email)
             WHERE user_id = NEW.id;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER users_sync_member_search AFTER UPDATE OF name, email ON users
        FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
        EXECUTE FUNCTION users_sync_member_search()
    """)
    op.execute("""
        UPDATE memberships m SET search_name = lower(u.name), search_email = lower(u.email)
          FROM users u WHERE u.id = m.user_id
    """)
    # Keyset pagination: one index per sort, each leading with organization_id
    # and ending with the tie-breaker.
    op.create_index("ix_memberships_org_search_name", "memberships", ["organization_id", "search_name", "user_id"])
    op.create_index("ix_memberships_org_search_email", "memberships", ["organization_id", "search_email", "user_id"])
    op.create_index("ix_memberships_org_created", "memberships", ["organization_id", "created_at", "user_id"])
    op.create_index(
        "ix_memberships_org_last_seen",
        "memberships",
        ["organization_id", sa.literal_column("coalesce(last_seen_at, '-infinity'::timestamptz)"), "user_id"],
    )
    # btree_gin lets the index lead with organization_id (the schema rule for
    # every tenant index), so one organization's search never walks another's
    # postings. Both ship with PostgreSQL's contrib modules.
    if _try_extension("pg_trgm") and _try_extension("btree_gin"):
        op.execute(
            "CREATE INDEX ix_memberships_search_trgm ON memberships "
            "USING gin (organization_id, (search_name || ' ' || search_email) gin_trgm_ops)"
        )
        op.execute("""
            CREATE OR REPLACE FUNCTION member_search_ids(pattern text) RETURNS SETOF uuid
            LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
            SET search_path = pg_catalog, public AS $$
                SELECT m.user_id FROM public.memberships m
                 WHERE m.organization_id = NULLIF(current_setting('app.org_id', true), '')::uuid
                   AND (m.search_name || ' ' || m.search_email) LIKE pattern
            $$
        """)


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS member_search_ids(text)")
    op.execute("DROP INDEX IF EXISTS ix_memberships_search_trgm")
    op.drop_index("ix_memberships_org_last_seen", table_name="memberships")
    op.drop_index("ix_memberships_org_created", table_name="memberships")
    op.drop_index("ix_memberships_org_search_email", table_name="memberships")
    op.drop_index("ix_memberships_org_search_name", table_name="memberships")
    op.execute("DROP TRIGGER IF EXISTS users_sync_member_search ON users")
    op.execute("DROP FUNCTION IF EXISTS users_sync_member_search()")
    op.execute("DROP TRIGGER IF EXISTS memberships_fill_search ON memberships")
    op.execute("DROP FUNCTION IF EXISTS memberships_fill_search()")
    op.drop_column("memberships", "search_email")
    op.drop_column("memberships", "search_name")
    rls.disable(op, "invitations")
    op.drop_index("uq_invitations_pending_email", table_name="invitations")
    op.drop_index("uq_invitations_org_token", table_name="invitations")
    op.drop_table("invitations")

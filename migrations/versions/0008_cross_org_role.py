"""cross-organization work runs as its own role; no setting widens the runtime role

Revision ID: 0008_cross_org_role
Revises: 0007_definer_not_public

Until now every tenant policy read ``... OR current_setting('app.all_orgs') =
'on'``, and the runtime role could make that setting itself: one line of SQL
run as ``tenantry_app`` (an injection, say) read every organization.

From this revision:

* ``tenant_isolation`` is the organization filter alone, for every role;
* ``cross_organization`` gives every row to the cross-organization role
  (``DATABASE_CROSS_ORG_ROLE``, created before migrating by env.py) and to the
  migrating owner, whose SECURITY DEFINER functions read across organizations;
* ``member_self_read`` on memberships is gone: its ``app.user_id`` was a
  setting the runtime role could point at any user. A user's memberships in
  every organization (the organization picker) are read by the
  cross-organization role instead;
* ``enter_organization`` no longer clears ``app.all_orgs``, and the trigger
  that copies a user's new name into their memberships runs with its owner's
  rights instead of turning ``app.all_orgs`` on.

Rollback: ``flask --app wsgi db downgrade 0007_definer_not_public`` restores
the previous policies and functions (the roles are left in place).
"""

import sqlalchemy as sa
from alembic import op
from flask import current_app

from app import rls

revision = "0008_cross_org_role"
down_revision = "0007_definer_not_public"
branch_labels = None
depends_on = None

ENTER = """
    CREATE OR REPLACE FUNCTION enter_organization(p_org uuid, p_user uuid)
    RETURNS SETOF public.memberships
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER ROWS 1 AS $$
    BEGIN
        PERFORM pg_catalog.set_config('app.org_id', coalesce(p_org::text, ''), true),
                pg_catalog.set_config('app.user_id', coalesce(p_user::text, ''), true){extra};
        IF p_org IS NOT NULL AND p_user IS NOT NULL THEN
            RETURN QUERY
                SELECT * FROM public.memberships m
                 WHERE m.organization_id = p_org AND m.user_id = p_user AND m.status = 'active';
        END IF;
    END
    $$
"""

SYNC_DEFINER = """
    CREATE OR REPLACE FUNCTION users_sync_member_search() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    BEGIN
        UPDATE public.memberships SET search_name = lower(NEW.name), search_email = lower(NEW.email)
         WHERE user_id = NEW.id;
        RETURN NULL;
    END $$
"""

SYNC_OLD = """
    CREATE OR REPLACE FUNCTION users_sync_member_search() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET app.all_orgs = 'on' AS $$
    BEGIN
        UPDATE memberships SET search_name = lower(NEW.name), search_email = lower(NEW.email)
         WHERE user_id = NEW.id;
        RETURN NULL;
    END $$
"""

OLD_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"
OLD_ALL = "current_setting('app.all_orgs', true) = 'on'"
OLD_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"


def upgrade():
    conn = op.get_bind()
    cross = current_app.config["DATABASE_CROSS_ORG_ROLE"]
    for table in rls.tenant_tables(conn):
        for stmt in rls.policy_sql(table, cross):
            op.execute(stmt)
    op.execute(ENTER.format(extra=""))
    op.execute("REVOKE ALL ON FUNCTION enter_organization(uuid, uuid) FROM PUBLIC")
    # The function (owned by the migrating owner, which the
    # cross_organization policy names) copies only the user's own new name
    # and e-mail; a trigger needs no EXECUTE privilege to fire, so nobody
    # may call it directly.
    op.execute(SYNC_DEFINER)
    op.execute("REVOKE ALL ON FUNCTION users_sync_member_search() FROM PUBLIC")


def downgrade():
    conn = op.get_bind()
    for table in rls.tenant_tables(conn):
        op.execute(f'DROP POLICY IF EXISTS cross_organization ON "{table}"')
        op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
        op.execute(
            f'CREATE POLICY tenant_isolation ON "{table}" USING (organization_id = {OLD_ORG} OR {OLD_ALL})'
            f" WITH CHECK (organization_id = {OLD_ORG} OR {OLD_ALL})"
        )
    if conn.execute(sa.text("SELECT to_regclass('public.memberships')")).scalar():
        op.execute("DROP POLICY IF EXISTS member_self_read ON memberships")
        op.execute(f"CREATE POLICY member_self_read ON memberships FOR SELECT USING (user_id = {OLD_USER})")
    op.execute(ENTER.format(extra=",\n                pg_catalog.set_config('app.all_orgs', '', true)"))
    op.execute("REVOKE ALL ON FUNCTION enter_organization(uuid, uuid) FROM PUBLIC")
    op.execute(SYNC_OLD)
    op.execute("GRANT EXECUTE ON FUNCTION users_sync_member_search() TO PUBLIC")

"""webhooks: deliveries sent in batches per endpoint; the actions an organization's endpoints receive

Revision ID: 0015_webhook_delivery_batches
Revises: 0014_plan_features

* ``organizations.webhook_actions`` (text[], ``{}``: none): the audit
  actions at least one enabled endpoint of the organization receives. It is
  loaded with the organization in a request's entry statement, so an event
  nobody subscribes to costs webhooks no statement at all. A trigger on
  ``webhook_endpoints`` keeps it exact in the same transaction as every
  endpoint change (however the change is made: pages, jobs, the demo
  loader). The trigger runs with its owner's rights (the runtime role may
  not write the column, ``app.rls``), takes the organization's webhooks lock
  first (the one endpoint creation takes), so two concurrent changes are
  applied one after the other and the second recomputes from what the first
  committed; PUBLIC may not execute it.
* ``webhook_deliveries.next_attempt_at`` is now "due at" for every delivery
  that waits (new ones: their creation), and an index on the waiting ones
  per endpoint serves the delivery job's claim (``FOR UPDATE SKIP LOCKED``).
  Deliveries waiting from before (pending, no time) become due now.

Rollback: ``flask --app wsgi db downgrade 0014_plan_features``
drops the column, trigger and index (deliveries are kept).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015_webhook_delivery_batches"
down_revision = "0014_plan_features"
branch_labels = None
depends_on = None

SYNC = """
    CREATE OR REPLACE FUNCTION webhooks_sync_org_actions() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    DECLARE
        org uuid;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            org := OLD.organization_id;
        ELSE
            org := NEW.organization_id;
        END IF;
        -- One change at a time per organization; under READ COMMITTED the
        -- UPDATE below then sees every endpoint change committed before it.
        PERFORM pg_advisory_xact_lock(hashtextextended('webhooks:' || org::text, 0));
        UPDATE public.organizations o
           SET webhook_actions = a.actions
          FROM (SELECT ARRAY(
                    SELECT DISTINCT t FROM public.webhook_endpoints e, unnest(e.event_types) AS t
                     WHERE e.organization_id = org AND e.enabled ORDER BY t
                )::text[] AS actions) a
         WHERE o.id = org AND o.webhook_actions IS DISTINCT FROM a.actions;
        RETURN NULL;
    END $$
"""


def upgrade():
    op.add_column(
        "organizations",
        sa.Column(
            "webhook_actions", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")
        ),
    )
    op.execute(SYNC)
    op.execute("REVOKE ALL ON FUNCTION webhooks_sync_org_actions() FROM PUBLIC")
    op.execute("""
        CREATE TRIGGER webhooks_sync_org_actions
        AFTER INSERT OR DELETE OR UPDATE OF enabled, event_types ON webhook_endpoints
        FOR EACH ROW EXECUTE FUNCTION webhooks_sync_org_actions()
    """)
    op.execute("""
        UPDATE organizations o SET webhook_actions = ARRAY(
            SELECT DISTINCT t FROM webhook_endpoints e, unnest(e.event_types) AS t
             WHERE e.organization_id = o.id AND e.enabled ORDER BY t)::text[]
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.organization_id = o.id)
    """)
    op.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = created_at WHERE status = 'pending' AND next_attempt_at IS NULL"
    )
    op.create_index(
        "ix_webhook_deliveries_waiting",
        "webhook_deliveries",
        ["organization_id", "endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_webhook_deliveries_waiting", table_name="webhook_deliveries")
    op.execute("DROP TRIGGER IF EXISTS webhooks_sync_org_actions ON webhook_endpoints")
    op.execute("DROP FUNCTION IF EXISTS webhooks_sync_org_actions()")
    op.drop_column("organizations", "webhook_actions")

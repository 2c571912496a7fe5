"""audit: events, seals, checkpoints, label words; the platform organization for account events

Revision ID: 0002_audit
Revises: 0001_foundation
Create Date: 2026-11-21 07:00:00

* ``audit_events``: append-only for the runtime role; every filter index
  ends with ``id`` (design and figures: ``app.auditlog.services``,
  ``bench/audit_bench.py``); ``xid`` is the inserting transaction (sealer).
* ``audit_seals``: the per-organization chain; ``audit_checkpoints``: signed
  purge and verification records; ``audit_label_words``: the words of actor
  and target names for free-text search (``app.audit.models``).
* The platform organization (fixed id, slug ``platform``) holds account
  events that belong to no organization (``app.audit``).

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0002_audit"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TABLES = ("audit_events", "audit_seals", "audit_checkpoints", "audit_label_words")
PLATFORM_ORG_ID = "00000000-0000-0000-0000-000000000001"


class Xid8(sa.types.UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw):
        return "xid8"


SEARCH_EXPRESSION = (
    "to_tsvector('simple'::regconfig, regexp_replace(lower("
    "coalesce(actor_label, '') || ' ' || actor_type || ' ' || coalesce(target_label, '') || ' ' || "
    "coalesce(target_type, '')"
    "), '[^[:alnum:]]+', ' ', 'g'))"
)


def upgrade():
    op.create_table(
        "audit_events",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("actor_label", sa.String(length=400), nullable=True),
        sa.Column("impersonator_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.String(length=128), nullable=True),
        sa.Column("target_label", sa.String(length=300), nullable=True),
        sa.Column(
            "changes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column(
            "metadata", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("xid", Xid8(), nullable=False, server_default=sa.text("pg_current_xact_id()")),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "actor_type IN ('user', 'api_key', 'system', 'support', 'anonymous')",
            name=op.f("ck_audit_events_actor_type"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_audit_events_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_audit_events")),
    )
    op.execute(f"ALTER TABLE audit_events ADD COLUMN search tsvector GENERATED ALWAYS AS ({SEARCH_EXPRESSION}) STORED")
    op.create_index("ix_audit_events_org_action", "audit_events", ["organization_id", "action", "id"])
    op.create_index("ix_audit_events_org_actor", "audit_events", ["organization_id", "actor_id", "id"])
    op.create_index("ix_audit_events_org_actor_action", "audit_events", ["organization_id", "actor_id", "action", "id"])
    op.create_index("ix_audit_events_org_target_type", "audit_events", ["organization_id", "target_type", "id"])
    op.create_index("ix_audit_events_org_target", "audit_events", ["organization_id", "target_type", "target_id", "id"])
    op.create_index(
        "ix_audit_events_org_target_action",
        "audit_events",
        ["organization_id", "target_type", "target_id", "action", "id"],
    )
    op.create_index("ix_audit_events_org_occurred", "audit_events", ["organization_id", "occurred_at"])
    op.create_index("ix_audit_events_org_xid", "audit_events", ["organization_id", "xid"])
    # Free text: no GIN index on events (under RLS it would never be used:
    # ``@@`` is not leakproof). Words of actor and target names, in a B-tree:
    op.create_table(
        "audit_label_words",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("word", sa.String(length=64, collation="C"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref_type", sa.String(length=32), nullable=False),
        sa.Column("ref_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_audit_label_words_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "word", "kind", "ref_type", "ref_id", name=op.f("pk_audit_label_words")
        ),
    )

    op.create_table(
        "audit_seals",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(), nullable=False),
        sa.Column("chain_mac", sa.LargeBinary(), nullable=False),
        sa.Column("horizon", Xid8(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_audit_seals_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "seq", name=op.f("pk_audit_seals")),
    )
    op.create_index("uq_audit_seals_org_event", "audit_seals", ["organization_id", "event_id"], unique=True)

    op.create_table(
        "audit_checkpoints",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("through_seq", sa.BigInteger(), nullable=False),
        sa.Column("chain_mac", sa.LargeBinary(), nullable=True),
        sa.Column("removed_count", sa.BigInteger(), nullable=True),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("kind IN ('purge', 'verify')", name=op.f("ck_audit_checkpoints_kind")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_audit_checkpoints_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_audit_checkpoints")),
    )
    op.create_index("ix_audit_checkpoints_org_kind", "audit_checkpoints", ["organization_id", "kind", "id"])

    for table in TABLES:
        rls.enable(op, table)

    # The platform organization: the home of account-level events (log-ins,
    # failed log-ins, password changes) that belong to no organization. Fixed
    # id, reserved slug, no members: no picker shows it and no host serves it
    # to anyone; super-admins read its log.
    op.execute(
        sa.text(
            "INSERT INTO organizations (id, slug, name, plan_key, status, settings) "
            "VALUES (CAST(:id AS uuid), 'platform', 'Tenantry platform', 'enterprise', 'active', '{\"system\": true}'::jsonb) "
            "ON CONFLICT (id) DO NOTHING"
        ).bindparams(id=PLATFORM_ORG_ID)
    )


def downgrade():
    for table in TABLES:
        rls.disable(op, table)
    op.drop_table("audit_label_words")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_seals")
    op.drop_table("audit_events")
    op.execute(sa.text("DELETE FROM organizations WHERE id = CAST(:id AS uuid)").bindparams(id=str(PLATFORM_ORG_ID)))

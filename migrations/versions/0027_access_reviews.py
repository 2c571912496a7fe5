"""access reviews: campaigns, reviewers and reviewed members (tenant tables, RLS)

Revision ID: 0027_access_reviews
Revises: 0026_privacy

* ``access_reviews``: a review campaign (who is reviewed: everyone or the
  holders of chosen permissions; deadline; recurrence; open or closed; the
  campaign that repeated it).
* ``access_review_reviewers``: who may decide on a campaign's items.
* ``access_review_items``: each reviewed member's access when the campaign
  started (role, effective permissions, second factor, last seen) and the
  decision (keep, change role, remove), with an edit version.

Every table leads with ``organization_id`` and is under row-level security.
Rollback: ``flask --app wsgi db downgrade 0026_privacy`` drops the three
tables (campaigns and their evidence are lost; the audit log keeps every
decision's event).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app import rls

revision = "0027_access_reviews"
down_revision = "0026_privacy"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "access_reviews",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("scope", sa.String(length=16), server_default="all", nullable=False),
        sa.Column(
            "scope_permissions",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("recurrence", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.UUID(), nullable=True),
        sa.Column("reminded_on", sa.Date(), nullable=True),
        sa.Column("successor_id", sa.UUID(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("scope IN ('all', 'permissions')", name=op.f("ck_access_reviews_scope")),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_access_reviews_status")),
        sa.CheckConstraint(
            "recurrence IN ('none', 'monthly', 'quarterly', 'semiannual', 'yearly')",
            name=op.f("ck_access_reviews_recurrence"),
        ),
        sa.CheckConstraint("deadline >= starts_on", name=op.f("ck_access_reviews_deadline")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_access_reviews_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_access_reviews")),
    )
    op.create_index(
        "ix_access_reviews_org_status_deadline", "access_reviews", ["organization_id", "status", "deadline"]
    )
    op.create_index("ix_access_reviews_org_created", "access_reviews", ["organization_id", "created_at"])
    op.create_table(
        "access_review_reviewers",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("review_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_access_review_reviewers_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "review_id"],
            ["access_reviews.organization_id", "access_reviews.id"],
            name="fk_access_review_reviewers_review",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "review_id", "user_id", name=op.f("pk_access_review_reviewers")),
    )
    op.create_index("ix_access_review_reviewers_org_user", "access_review_reviewers", ["organization_id", "user_id"])
    op.create_table(
        "access_review_items",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("review_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role_key", sa.String(length=64), nullable=False),
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.Column("permissions", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("second_factor", sa.String(length=64), server_default="", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("new_role_key", sa.String(length=64), nullable=True),
        sa.Column("new_role_name", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("decided_by", sa.UUID(), nullable=True),
        sa.Column("decided_by_label", sa.String(length=400), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('keep', 'change_role', 'remove')",
            name=op.f("ck_access_review_items_decision"),
        ),
        sa.CheckConstraint(
            "(decision = 'change_role') = (new_role_key IS NOT NULL)", name=op.f("ck_access_review_items_new_role")
        ),
        sa.CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name=op.f("ck_access_review_items_decided_at")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_access_review_items_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "review_id"],
            ["access_reviews.organization_id", "access_reviews.id"],
            name="fk_access_review_items_review",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "review_id", "user_id", name=op.f("pk_access_review_items")),
    )
    op.create_index(
        "ix_access_review_items_org_review_decision",
        "access_review_items",
        ["organization_id", "review_id", "decision"],
    )
    for table in ("access_reviews", "access_review_reviewers", "access_review_items"):
        rls.enable(op, table)


def downgrade():
    op.drop_table("access_review_items")
    op.drop_table("access_review_reviewers")
    op.drop_table("access_reviews")

"""background jobs: procrastinate's queue tables and the last error of each failed job

Revision ID: 0009_jobs
Revises: 0008_cross_org_role

Creates the job queue on this same PostgreSQL: procrastinate's schema
(``procrastinate_jobs``, ``_events``, ``_periodic_defers``, ``_workers``, their
types, functions and triggers), from the copy of the SQL procrastinate
3.10.0 ships (``migrations/sql/procrastinate-3.10.0.sql``). The copy, not the
installed package's file, so a fresh database and an upgraded one end with
the same schema: a later procrastinate that changes its schema comes with a
new revision applying its migration files (pyproject pins the minor version).

``job_errors`` keeps the last error of a job whose attempt failed
(procrastinate records only that it failed), for ``flask jobs status``.

The queue tables are global: they hold every organization's jobs. After the
upgrade ``grant_runtime`` (migrations/env.py) lets the runtime role add jobs
and nothing else; the cross-organization role, which workers use, may work
the queue (``app/rls.py``).

Rollback: ``flask --app wsgi db downgrade 0008_cross_org_role`` drops the
queue and every job in it.
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0009_jobs"
down_revision = "0008_cross_org_role"
branch_labels = None
depends_on = None

SCHEMA = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0.sql"


def upgrade():
    # The file holds dollar-quoted function bodies: send it whole, as one
    # simple-protocol batch (no parameters, so '%' needs no escaping).
    op.get_bind().exec_driver_sql(SCHEMA.read_text(encoding="utf-8").replace("%", "%%"))
    op.create_table(
        "job_errors",
        sa.Column(
            "job_id",
            sa.BigInteger(),
            sa.ForeignKey("procrastinate_jobs.id", ondelete="CASCADE", name="fk_job_errors_job_id_procrastinate_jobs"),
            primary_key=True,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_errors"),
    )


def downgrade():
    op.drop_table("job_errors")
    conn = op.get_bind()
    for table in (
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_jobs",
        "procrastinate_workers",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    functions = conn.execute(
        sa.text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate\\_%'"
        )
    ).scalars()
    for fn in list(functions):
        op.execute(f"DROP FUNCTION IF EXISTS {fn} CASCADE")
    for typ in ("procrastinate_job_to_defer_v1", "procrastinate_job_event_type", "procrastinate_job_status"):
        op.execute(f"DROP TYPE IF EXISTS {typ} CASCADE")

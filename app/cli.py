"""Command-line tools: ``flask --app wsgi <command>``."""

from __future__ import annotations

import contextlib
import logging
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import audit
from app.analytics import cli as analytics_cli
from app.auditlog import cli as auditlog_cli
from app.auditlog.sealing import seal_all
from app.auth import services as auth_services
from app.database import owner_engine
from app.demo import DEMO_TOTP_SECRET, ORGS, PASSWORD, USERS, load_demo
from app.errors import UserError
from app.extensions import db
from app.orgdata import cli as orgdata_cli
from app.rls import posture
from app.scoping import all_organizations
from app.tenancy import lifecycle
from app.tenancy.models import Organization
from app.util import parse_uuid


@contextlib.contextmanager
def quiet_logs(level: int = logging.WARNING):
    """The app's loggers (``tenantry``) show only ``level`` and above inside the block."""
    root = logging.getLogger("tenantry")
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def init_app(app) -> None:
    """Add every command to ``flask``: the app's own here, each area's group
    from the area (``flask audit ...`` from ``app.auditlog.cli``)."""
    audit_group = AppGroup("audit", help="The audit log: seal, verify, purge, list actions.")
    auditlog_cli.register(audit_group)
    app.cli.add_command(audit_group)
    analytics_group = AppGroup("analytics", help="Analytics: rebuild the daily rollups.")
    analytics_cli.register(analytics_group, seal=seal_all)
    app.cli.add_command(analytics_group)

    @app.cli.command("demo")
    def demo_command():
        """Create the demo organizations and accounts (idempotent); one summary line.

        The app's INFO lines (each cross-organization read, each audit event
        the demo history records) say nothing to someone starting the app:
        only warnings and errors are shown while it loads."""
        with quiet_logs():
            summary = load_demo()
        click.echo(summary)

    @app.cli.command("create-superadmin")
    @click.argument("email")
    @click.option("--name", default="Super Admin")
    @click.password_option(prompt="Password", confirmation_prompt=True)
    def create_superadmin(email, name, password):
        """Create (or promote) a platform super-admin."""
        try:
            user, created = auth_services.create_superadmin(email, name, password)
        except ValueError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        # Platform rights granted from a shell are an account event like any
        # other: the platform log says who got them, when, and by which door.
        audit.record(
            "platform.superadmin_granted",
            target=user,
            after={"is_superadmin": True},
            metadata={"account": "created" if created else "existing", "via": "command line"},
            actor=audit.Actor.system("flask create-superadmin"),
        )
        db.session.commit()
        click.echo(f"{'created' if created else 'promoted'} super-admin {user.email}")

    @app.cli.command("check")
    def check_command():
        """Report the security posture; exit non-zero when anything is wrong."""
        role = current_app.config["DATABASE_RUNTIME_ROLE"]
        engine = owner_engine()
        with engine.connect() as conn:
            rows = posture(conn, role, current_app.config["DATABASE_CROSS_ORG_ROLE"])
        bad = 0
        for name, ok, detail in rows:
            click.echo(f"[{'ok' if ok else 'FAIL'}] {name}{(' — ' + detail) if detail else ''}")
            bad += 0 if ok else 1
        click.echo(f"{len(rows) - bad} ok, {bad} failed")
        engine.dispose()
        sys.exit(1 if bad else 0)

    org_group = click.Group("org", help="Platform operations on one organization.")
    app.cli.add_command(org_group)

    def _find(slug_or_id: str, deleted: bool):
        q = select(Organization)
        oid = parse_uuid(slug_or_id)
        q = q.where(Organization.id == oid) if oid else q.where(Organization.slug == slug_or_id.lower())
        q = q.where(Organization.deleted_at.is_not(None) if deleted else Organization.deleted_at.is_(None))
        org = db.session.execute(q.order_by(Organization.deleted_at.desc().nulls_last())).scalars().first()
        if org is None:
            click.echo(f"error: no {'deleted' if deleted else 'live'} organization {slug_or_id}", err=True)
            sys.exit(2)
        return org

    def _lifecycle(action: str, slug: str):
        with all_organizations(reason=f"platform CLI: org {action}"):
            org = _find(slug, deleted=(action == "restore"))
            try:
                if action == "restore":
                    lifecycle.restore(org)
                elif action == "delete":
                    lifecycle.delete(org)
                else:
                    lifecycle.set_status(org, "suspended" if action == "suspend" else "active")
            except UserError as e:
                db.session.rollback()
                click.echo(f"error: {e}", err=True)
                sys.exit(2)
            db.session.commit()
            click.echo(f"{action}: {org.slug} ({org.id})")

    for _action in ("suspend", "reinstate", "delete", "restore"):

        def _make(action):
            @org_group.command(action, help=f"{action.title()} an organization (slug or id).")
            @click.argument("slug")
            def _cmd(slug):
                _lifecycle(action, slug)

        _make(_action)

    orgdata_cli.register(org_group)

    jobs_group = click.Group("jobs", help="The background job queue, and jobs runnable by hand.")
    app.cli.add_command(jobs_group)

    @app.cli.command("worker")
    @click.option("--concurrency", type=int, help="Jobs run at once (default JOBS_CONCURRENCY).")
    @click.option("--queue", "queues", multiple=True, help="Work only these queues (repeatable; default all).")
    def worker_command(concurrency, queues):
        """Run a background worker until SIGTERM or Ctrl-C (it finishes the jobs it is running)."""
        from app.jobs import worker

        worker.run(current_app._get_current_object(), concurrency=concurrency, queues=list(queues) or None)

    @jobs_group.command("status")
    def jobs_status():
        """Queue depth per queue, the oldest waiting job's age, failed jobs with their error."""
        from app.jobs import admin

        st = admin.status()
        click.echo(f"{'queue':<12} {'waiting':>8} {'later':>8} {'running':>8} {'failed':>8}  oldest waiting")
        for q in st.queues:
            age = f"{q.oldest_waiting_seconds:.1f} s" if q.oldest_waiting_seconds is not None else "-"
            click.echo(f"{q.queue:<12} {q.waiting:>8} {q.scheduled:>8} {q.running:>8} {q.failed:>8}  {age}")
        if not st.queues:
            click.echo("(no jobs)")
        if st.failed:
            click.echo("failed jobs (newest first; `flask jobs retry ID` runs one again):")
            for j in st.failed:
                when = f"{j.failed_at:%Y-%m-%d %H:%M:%S}" if j.failed_at else "?"
                click.echo(f"  #{j.id} {j.task} ({j.queue}) after {j.attempts} attempt(s), {when}: {j.error or '-'}")

    @jobs_group.command("retry")
    @click.argument("job_id", type=int)
    def jobs_retry(job_id):
        """Run a failed job again now (or a job waiting for its next retry, now)."""
        from app.jobs import admin

        try:
            was = admin.retry(job_id)
        except admin.JobActionError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        click.echo(f"job {job_id} ({was}) queued to run now")

    @jobs_group.command("cancel")
    @click.argument("job_id", type=int)
    def jobs_cancel(job_id):
        """Cancel a waiting job, or ask a running one to abort."""
        from app.jobs import admin

        try:
            outcome = admin.cancel(job_id)
        except admin.JobActionError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        click.echo(f"job {job_id}: {outcome}")

    @jobs_group.command("run")
    def jobs_run():
        """Run every job that is due in this process, then exit (no periodic tasks)."""
        from app.jobs import worker

        worker.drain(current_app._get_current_object())

    @jobs_group.command("purge-organizations")
    def purge_organizations():
        """Purge the data of organizations deleted more than 30 days ago."""
        slugs = lifecycle.purge_expired()
        click.echo(f"purged {len(slugs)} organization(s){': ' + ', '.join(slugs) if slugs else ''}")

    @app.cli.command("banner")
    def banner():
        """Print where the app is served and the demo logins."""
        apex = current_app.config["TENANTRY_SERVER_NAME"]
        scheme = current_app.config["PREFERRED_URL_SCHEME"]
        click.echo("")
        click.echo(f"  Tenantry on {scheme}://{apex}/")
        for slug, name, plan in ORGS:
            click.echo(f"    {name:<20} {scheme}://{slug}.{apex}/   (plan {plan})")
        click.echo(f"  Demo logins (password: {PASSWORD}):")
        for email, _name, superadmin, roles in USERS:
            where = "super-admin" if superadmin else ", ".join(f"{r} of {o}" for o, r in roles.items())
            click.echo(f"    {email:<26} {where}")
        click.echo(f"  The super-admin's second factor: TOTP secret {DEMO_TOTP_SECRET}")
        click.echo(
            "    (add it to any authenticator app, or: python -c \"import pyotp; print(pyotp.TOTP('<secret>').now())\")"
        )
        if current_app.config.get("EMBEDDED_DATABASE"):
            click.echo("  Database: embedded PostgreSQL in instance/pgdata")
        if not current_app.config.get("MAIL_URL"):
            click.echo(f"  Mail: development outbox at {scheme}://{apex}/_dev/outbox/")
        click.echo("")

    @app.cli.command("db-url")
    @click.option("--runtime", is_flag=True, help="The runtime role's URL instead of the owner's.")
    def db_url(runtime):
        """Print the database URL in use (for psql and scripts)."""
        click.echo(current_app.config["SQLALCHEMY_DATABASE_URI" if runtime else "DATABASE_URL"])

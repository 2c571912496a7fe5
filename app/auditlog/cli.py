"""``flask --app wsgi audit ...``: seal, verify, purge, actions.

``register`` adds the commands to a group; the app's CLI wiring
(``app.cli``) makes that group ``flask audit``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from app.audit.catalogue import groups
from app.auditlog.retention import purge
from app.auditlog.sealing import seal_all
from app.auditlog.verification import verify_all
from app.database import owner_engine
from app.extensions import db


def register(cli: click.Group) -> None:
    @cli.command("seal")
    @click.option("--org", "slug", help="Only this organization (slug).")
    def seal_command(slug):
        """Give finished events their sequence numbers and chain them (runtime role)."""
        results = seal_all(db.engine, slug)
        sealed = sum(r.sealed for r in results)
        rejected = sum(len(r.rejected) for r in results)
        click.echo(f"sealed {sealed} event(s) in {sum(1 for r in results if r.sealed)} organization(s)")
        if rejected:
            click.echo(f"REFUSED {rejected} event(s) with an invalid MAC (run verify)", err=True)
            sys.exit(1)

    @cli.command("verify")
    @click.option("--org", "slug", help="Only this organization (slug).")
    @click.option("--no-seal", is_flag=True, help="Do not seal first (read only; recent events stay pending).")
    @click.option("--all-problems", is_flag=True, help="List every problem found, not only the first.")
    def verify_command(slug, no_seal, all_problems):
        """Check every chain; print OK or the first break; exit 1 on any break."""
        results = verify_all(db.engine, slug, seal_first=not no_seal)
        if slug and not results:
            click.echo(f"no organization {slug}", err=True)
            sys.exit(2)
        broken = [r for r in results if not r.ok]
        for r in results:
            if r.ok and (slug or r.checked or r.pending):
                click.echo(r.line())
        for r in broken:
            click.echo(r.line())
            for p in r.problems if all_problems else [r.first]:
                click.echo(f"    {p.kind}: {p.message}")
        total = sum(r.checked for r in results)
        if broken:
            click.echo(f"BROKEN: {len(broken)} of {len(results)} organization(s); {total} events checked")
            sys.exit(1)
        click.echo(f"OK: {len(results)} organization(s), {total} events verified")

    @cli.command("purge")
    @click.option("--org", "slug", help="Only this organization (slug).")
    @click.option("--now", "now", help="Pretend it is this time (ISO 8601, UTC); for tests and drills.")
    def purge_command(slug, now):
        """Delete events past the plan's retention (owner connection), leaving signed checkpoints."""
        when = None
        if now:
            try:
                when = datetime.fromisoformat(now)
            except ValueError:
                click.echo("--now: use ISO 8601, e.g. 2030-01-01T00:00:00", err=True)
                sys.exit(2)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        engine = owner_engine()
        try:
            results = purge(engine, slug, when)
        finally:
            engine.dispose()
        removed = [r for r in results if r.removed]
        for r in removed:
            click.echo(
                f"{r.slug}: removed {r.removed} event(s), seq {r.first_seq}..{r.through_seq},"
                f" older than {r.cutoff:%Y-%m-%d}"
            )
        click.echo(f"purged {sum(r.removed for r in removed)} event(s) in {len(removed)} organization(s)")

    @cli.command("actions")
    def actions_command():
        """List the action catalogue."""
        for group, actions in groups():
            click.echo(group)
            for a in actions:
                click.echo(f"  {a.name:<36} {a.description}")

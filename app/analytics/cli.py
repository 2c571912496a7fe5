"""``flask --app wsgi analytics rebuild [--org SLUG]``: recompute the rollups from the raw events.

``register`` adds the commands to a group; the app's CLI wiring
(``app.cli``) makes that group ``flask analytics``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import click
from sqlalchemy import text

from app.audit import rollups
from app.extensions import db


def register(cli: click.Group, seal: Callable) -> None:
    """Add the commands; ``seal(engine, slug)`` seals pending events first (the
    audit log area's sealer, handed over by the CLI wiring: areas do not
    import each other)."""

    @cli.command("rebuild")
    @click.option("--org", "slug", help="Only this organization (slug).")
    def rebuild_command(slug):
        """Seal what is pending, then recount every organization's (or one's)
        rollups from its sealed events, each in one transaction (readers see
        the old numbers or the new ones, never a mix)."""
        t0 = time.perf_counter()
        seal(db.engine, slug)
        with db.engine.connect() as conn:
            q = "SELECT id FROM organizations" + (" WHERE slug = :s AND deleted_at IS NULL" if slug else "")
            ids = [r[0] for r in conn.execute(text(q), {"s": slug} if slug else {})]
            conn.rollback()
        if slug and not ids:
            click.echo(f"no organization {slug!r}", err=True)
            sys.exit(1)
        done = rollups.catch_up_all(db.engine, ids, rebuild=True)
        click.echo(
            f"rebuilt the rollups of {len(done)} organization(s) from {sum(done.values())} event(s)"
            f" in {time.perf_counter() - t0:.1f} s"
        )
        if len(done) < len(ids):
            click.echo(f"FAILED for {len(ids) - len(done)} organization(s) (see the log)", err=True)
            sys.exit(1)

"""``flask --app wsgi org export SLUG FILE`` and ``org import FILE [--slug NEW]``.

``register`` adds both to the ``org`` group the app's CLI wiring makes.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from app import audit
from app.database import owner_engine
from app.extensions import db
from app.orgdata.archive import ArchiveError, export_org, import_archive
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Organization
from app.tenancy.services import slug_problem


def register(group: click.Group) -> None:
    @group.command("export")
    @click.argument("slug")
    @click.argument("file", type=click.Path(dir_okay=False, writable=True))
    def export_command(slug, file):
        """Write the organization's archive (ZIP of JSON Lines + manifest) to FILE."""
        with all_organizations(reason="org export from the command line") as engine:
            org = db.session.execute(
                select(Organization).where(Organization.slug == slug.lower(), Organization.deleted_at.is_(None))
            ).scalar_one_or_none()
            if org is None:
                click.echo(f"error: no live organization {slug}", err=True)
                sys.exit(2)
            org_id = org.id
            db.session.rollback()
            with open(file, "wb") as out:
                result = export_org(engine, org_id, out)
        with tenant_context(org_id):
            audit.record(
                "org.export_requested",
                target=("organization", str(org_id), result.slug),
                metadata={"via": "command line", "rows": result.rows, "file": click.format_filename(file)},
                organization_id=org_id,
                actor=audit.Actor.system("command line"),
            )
            db.session.commit()
        click.echo(f"exported {result.slug}: {result.rows} row(s) in {len(result.files)} file(s) to {file}")

    @group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--slug", "new_slug", help="The address to give the organization here (default: its own).")
    def import_command(file, new_slug):
        """Recreate an exported organization in this database (checks the archive first)."""
        engine = owner_engine()
        try:
            with open(file, "rb") as f:
                report = import_archive(engine, f, slug=new_slug, slug_problem=slug_problem)
        except ArchiveError as e:
            click.echo(f"refused: {e}", err=True)
            click.echo("nothing was written", err=True)
            sys.exit(2)
        finally:
            engine.dispose()
        with tenant_context(report.organization_id):
            audit.record(
                "org.imported",
                target=("organization", str(report.organization_id), report.slug),
                metadata={
                    "via": "command line",
                    "rows": sum(report.rows.values()),
                    "accounts_matched": len(report.users_matched),
                    "accounts_created": len(report.users_created),
                },
                organization_id=report.organization_id,
                actor=audit.Actor.system("command line"),
            )
            db.session.commit()
        for line in report.lines():
            click.echo(line)

"""An organization's data as one ZIP archive, and back into another database.

**The archive** (``FORMAT``, version ``FORMAT_VERSION``):

* ``<table>.jsonl`` for every tenant table (every table with an
  ``organization_id`` column, found in the catalogue, so a table added later
  comes along with no change here; ``EXCLUDED_TABLES`` are left out), one
  row per line as PostgreSQL's own ``row_to_json`` prints it, in primary-key
  order; ``organizations.jsonl`` (the one row) and ``users.jsonl``: the
  accounts the organization's rows point at (members, inviters, key
  creators...), with only ``USER_COLUMNS`` - never a password hash, a second
  factor or a session.
* ``manifest.json``: the format and its version, the schema revision (the
  alembic head of the exporting database), the export time, the
  organization, and per file its row count and SHA-256.

Rows are read in one ``REPEATABLE READ`` transaction, so the files agree with
each other (no membership of a role the archive lacks). That snapshot holds
the audit sealer's horizon back while it lasts: events recorded meanwhile
are sealed once the export ends (never lost).

**Import** (``import_archive``) refuses, before it writes anything: a file
that is not a ZIP or is truncated, a missing or unreadable manifest, another
format or version, **another schema revision** than the database's, a file
missing, unlisted, or whose SHA-256 or row count differs from the manifest
(a tampered archive), a row of another organization, an organization id
already present, a slug taken, and audit events signed by a key this
installation does not hold. Then it writes every row in one transaction on
the owner connection, checks the imported audit chain with the same code as
``flask audit verify`` and rolls everything back when it does not verify.

**Ids are kept.** Every tenant row keeps its ids and the organization keeps
its id: the audit log's MACs cover the organization id and each event id
(``app.audit.integrity.canonical``), so they are the one way the imported
log stays verifiable without re-signing it (re-signing would launder any
tampering done on the way). Rows are scoped by organization in their
primary keys, so a new organization id cannot collide with anything;
importing an organization whose id already exists is refused (the import
moves an organization to another database, it does not clone one).
Accounts are matched by e-mail (case-insensitive): a matched account keeps
its own id and every tenant column that points at users is rewritten to it;
an unmatched one is created with its exported id (a new one if that id is
taken) and **no usable password** (a reset link or SSO lets them in).
Audit events keep the actor ids they were recorded with: they are evidence,
and their MAC covers them.

**Keys.** The archive carries no key. Audit events are signed by the
exporting installation's audit key (``AUDIT_HMAC_KEY``, or derived from
``SECRET_KEY``), which signs every organization's events there: shipping it,
even encrypted, would hand whoever imports one organization the power to
forge any other organization's log at the source. The manifest names the
keys' fingerprints; the importing installation must already accept them
(the same key, or the source's key listed in ``AUDIT_PREVIOUS_KEYS``) or the
import is refused naming the fingerprint. Webhook signing secrets travel as
they are stored, encrypted under ``ENCRYPTION_KEYS``: they work at the
destination when it lists the source's key there, else rotate them.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from app.audit import integrity
from app.auditlog import anchors, verification
from app.util import utcnow

FORMAT = "tenantry-organization-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Tables an archive leaves out: the exports themselves (archives inside
# archives), and one-time keys that only guard a form or an API retry for a day.
EXCLUDED_TABLES = frozenset({"org_exports", "submit_keys", "api_idempotency"})
# What an archive says about an account: who it is, nothing to sign in with.
USER_COLUMNS = ("id", "email", "name", "email_verified_at", "created_at")
BATCH = 1000

Progress = Callable[[int, int], None]


class ArchiveError(ValueError):
    """The archive was refused: it is not what it claims to be, or cannot go into this database."""


# --------------------------------------------------------------------------- catalogue
def schema_revision(conn) -> str:
    """The alembic head the database is at."""
    return conn.execute(text("SELECT version_num FROM alembic_version ORDER BY 1 LIMIT 1")).scalar_one()


def tenant_tables(conn) -> list[str]:
    """Every table with an ``organization_id`` (but ``EXCLUDED_TABLES``), parents before children."""
    names = set(
        conn.execute(
            text(
                "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
                " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
                " WHERE c.table_schema = 'public' AND c.column_name = 'organization_id'"
                " AND t.table_type = 'BASE TABLE'"
            )
        ).scalars()
    )
    names -= EXCLUDED_TABLES
    edges = conn.execute(
        text(
            "SELECT DISTINCT src.relname AS child, dst.relname AS parent FROM pg_constraint k"
            " JOIN pg_class src ON src.oid = k.conrelid JOIN pg_class dst ON dst.oid = k.confrelid"
            " JOIN pg_namespace n ON n.oid = src.relnamespace WHERE k.contype = 'f' AND n.nspname = 'public'"
        )
    ).all()
    parents = {n: {p for c, p in edges if c == n and p in names and p != n} for n in names}
    ordered: list[str] = []
    while parents:
        ready = sorted(n for n, ps in parents.items() if not ps)
        if not ready:  # a cycle: keep a stable order, the FKs will say what is wrong
            ready = sorted(parents)
        for n in ready:
            ordered.append(n)
            del parents[n]
        for ps in parents.values():
            ps.difference_update(ready)
    return ordered


def _columns(conn, table: str) -> list[tuple[str, str, bool]]:
    """``(name, udt, generated)`` of each column of ``table``, in order."""
    return [
        (r.column_name, r.udt_name, r.is_generated == "ALWAYS")
        for r in conn.execute(
            text(
                "SELECT column_name, udt_name, is_generated FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = :t ORDER BY ordinal_position"
            ),
            {"t": table},
        )
    ]


def _primary_key(conn, table: str) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary"
                " ORDER BY array_position(i.indkey, a.attnum)"
            ),
            {"t": f'public."{table}"'},
        ).scalars()
    )


def _user_fk_columns(conn) -> dict[str, list[str]]:
    """``{table: [column, ...]}``: every column that holds a user id by a
    foreign key, directly (``users(id)``) or through another such column
    (``projects(organization_id, owner_id)`` → ``memberships(organization_id, user_id)``)."""
    pairs = conn.execute(
        text(
            "SELECT src.relname AS tbl, sa.attname AS col, dst.relname AS ref_tbl, da.attname AS ref_col"
            " FROM pg_constraint k JOIN pg_class src ON src.oid = k.conrelid JOIN pg_class dst ON dst.oid = k.confrelid"
            " JOIN pg_namespace n ON n.oid = src.relnamespace"
            " CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS p(s, d)"
            " JOIN pg_attribute sa ON sa.attrelid = k.conrelid AND sa.attnum = p.s"
            " JOIN pg_attribute da ON da.attrelid = k.confrelid AND da.attnum = p.d"
            " WHERE k.contype = 'f' AND n.nspname = 'public'"
        )
    ).all()
    holders = {("users", "id")}
    while True:
        more = {(r.tbl, r.col) for r in pairs if (r.ref_tbl, r.ref_col) in holders} - holders
        if not more:
            break
        holders |= more
    out: dict[str, list[str]] = {}
    for tbl, col in sorted(holders - {("users", "id")}):
        out.setdefault(tbl, []).append(col)
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    organization_id: uuid.UUID
    slug: str
    rows: int
    files: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def count_rows(conn, org_id, tables: list[str]) -> int:
    """How many rows an export of the organization writes (for its progress bar)."""
    total = 1
    for t in tables:
        total += conn.execute(
            text(f"SELECT count(*) FROM {_q(t)} WHERE organization_id = :o"), {"o": org_id}
        ).scalar_one()
    return total


def export_org(engine, org_id, out, progress: Progress | None = None) -> ExportResult:
    """Write the archive of organization ``org_id`` to the binary file ``out``.

    Reads in one REPEATABLE READ, read-only transaction on ``engine`` (the
    cross-organization role, or any role that sees the organization's rows
    and the users), so every file belongs to one moment. ``progress(done,
    total)`` is called as rows are written (total: every row of the archive
    but the users). Returns the manifest it wrote.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(
                text("SELECT set_config('app.org_id', :o, true), set_config('app.user_id', '', true)"),
                {"o": str(org_id)},
            )
            org = conn.execute(
                text("SELECT row_to_json(o) AS j, o.slug FROM organizations o WHERE id = :o"), {"o": org_id}
            ).first()
            if org is None:
                raise ArchiveError(f"no organization {org_id}")
            tables = tenant_tables(conn)
            total = count_rows(conn, org_id, tables)
            done = 0
            files: dict[str, dict] = {}
            key_ids: set[str] = set()
            user_ids: set[str] = set()
            user_fks = _user_fk_columns(conn)
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:

                def write(name: str, lines) -> int:
                    digest, n = hashlib.sha256(), 0
                    with zf.open(name, "w", force_zip64=True) as f:
                        for line in lines:
                            data = line.encode() + b"\n"
                            digest.update(data)
                            f.write(data)
                            n += 1
                    files[name] = {"rows": n, "sha256": digest.hexdigest()}
                    return n

                write("organizations.jsonl", [json.dumps(org.j, sort_keys=True, separators=(",", ":"))])
                done += 1
                for table in tables:
                    order = ", ".join(_q(c) for c in _primary_key(conn, table)) or "1"
                    rows = conn.execute(
                        text(
                            f"SELECT row_to_json(t)::text AS j FROM {_q(table)} t WHERE organization_id = :o ORDER BY {order}"
                        ),
                        {"o": org_id},
                        execution_options={"stream_results": True, "yield_per": BATCH},
                    )

                    def lines(rows=rows, table=table, base=done):
                        for i, r in enumerate(rows, 1):
                            if table == "audit_events" or user_fks.get(table):
                                row = json.loads(r.j)
                                if table == "audit_events":
                                    key_ids.add(row["key_id"])
                                for col in user_fks.get(table, ()):
                                    if row.get(col):
                                        user_ids.add(row[col])
                            yield r.j
                            if progress is not None and i % BATCH == 0:
                                progress(base + i, total)
                        rows.close()

                    done += write(f"{table}.jsonl", lines())
                    if progress is not None:
                        progress(done, total)
                users = conn.execute(
                    text(
                        "SELECT json_build_object("
                        + ", ".join(f"'{c}', u.{_q(c)}" for c in USER_COLUMNS)
                        + ")::text AS j FROM users u WHERE u.id = ANY(CAST(:ids AS uuid[])) ORDER BY u.id"
                    ),
                    {"ids": sorted(user_ids)},
                )
                write("users.jsonl", (r.j for r in users))
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "schema_revision": schema_revision(conn),
                    "exported_at": utcnow().isoformat(),
                    "organization": {"id": str(org_id), "slug": org.slug, "name": org.j.get("name")},
                    "tables": tables,
                    "audit_key_ids": sorted(key_ids),
                    "files": files,
                }
                zf.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return ExportResult(org_id, org.slug, done, files, manifest)


# --------------------------------------------------------------------------- import
@dataclass
class ImportReport:
    organization_id: uuid.UUID
    slug: str
    rows: dict[str, int] = field(default_factory=dict)
    users_matched: list[str] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    audit_events: int = 0
    audit_head_seq: int = 0

    def lines(self) -> list[str]:
        out = [f"imported organization {self.slug} ({self.organization_id})"]
        for table, n in self.rows.items():
            out.append(f"  {table}: {n} row(s)")
        out.append(
            f"  accounts: {len(self.users_matched)} matched by e-mail, {len(self.users_created)} created"
            " (no usable password: they set one with a reset link)"
        )
        for email in self.users_created:
            out.append(f"    created {email}")
        out.append(f"  audit log: {self.audit_events} event(s), chain verified through seq {self.audit_head_seq}")
        return out


def _open(fileobj) -> tuple[zipfile.ZipFile, dict]:
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ArchiveError(f"not a readable ZIP archive (truncated or damaged?): {e}") from None
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise ArchiveError(f"no {MANIFEST} in the archive: not a Tenantry organization export") from None
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise ArchiveError(f"{MANIFEST} is unreadable: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError("not a Tenantry organization export (the manifest names another format)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(
            f"archive format version {manifest.get('format_version')!r} is not supported (this version reads {FORMAT_VERSION})"
        )
    return zf, manifest


def check_archive(zf: zipfile.ZipFile, manifest: dict, revision: str) -> None:
    """Refuse an archive whose schema, files, checksums or row counts are not
    those its manifest states (read only; raises ``ArchiveError``)."""
    if manifest.get("schema_revision") != revision:
        raise ArchiveError(
            f"the archive was exported at schema revision {manifest.get('schema_revision')!r}; this database is at"
            f" {revision!r}: upgrade both to the same revision first (flask --app wsgi db upgrade)"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or "organizations.jsonl" not in files or "users.jsonl" not in files:
        raise ArchiveError("the manifest lists no organization or users file")
    present = {i.filename for i in zf.infolist()} - {MANIFEST}
    if present - set(files):
        raise ArchiveError(f"files not listed in the manifest: {', '.join(sorted(present - set(files)))}")
    if set(files) - present:
        raise ArchiveError(f"files missing from the archive: {', '.join(sorted(set(files) - present))}")
    for name, spec in sorted(files.items()):
        digest, n = hashlib.sha256(), 0
        try:
            with zf.open(name) as f:
                for line in f:
                    digest.update(line)
                    n += 1
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise ArchiveError(f"{name} cannot be read (damaged or truncated): {e}") from None
        if not isinstance(spec, dict) or digest.hexdigest() != spec.get("sha256"):
            raise ArchiveError(f"{name}: its SHA-256 is not the manifest's: the archive was altered")
        if n != spec.get("rows"):
            raise ArchiveError(f"{name}: {n} row(s), the manifest says {spec.get('rows')}")


def _rows(zf: zipfile.ZipFile, name: str):
    with zf.open(name) as f:
        for line in f:
            yield json.loads(line)


def import_archive(
    engine, fileobj, slug: str | None = None, slug_problem: Callable[[str], str | None] | None = None
) -> ImportReport:
    """Recreate the organization in ``fileobj`` in the database of ``engine``
    (the **owner** connection: it writes append-only audit rows and moves
    sequences). Every check on the archive runs before the first write; the
    writes are one transaction, committed only once the imported audit chain
    verifies. ``slug`` renames the organization (``slug_problem`` says what
    is wrong with a slug). Returns what it did; raises ``ArchiveError``."""
    zf, manifest = _open(fileobj)
    with engine.connect() as conn:
        revision = schema_revision(conn)
        tables = tenant_tables(conn)
        conn.rollback()
    check_archive(zf, manifest, revision)
    try:
        org_id = uuid.UUID(str(manifest["organization"]["id"]))
    except (KeyError, TypeError, ValueError):
        raise ArchiveError("the manifest names no organization id") from None
    unknown = [n for n in manifest["files"] if n.removesuffix(".jsonl") not in {*tables, "organizations", "users"}]
    if unknown:
        raise ArchiveError(f"files for tables this database does not have: {', '.join(sorted(unknown))}")
    org_rows = list(_rows(zf, "organizations.jsonl"))
    if len(org_rows) != 1 or str(org_rows[0].get("id")) != str(org_id):
        raise ArchiveError("organizations.jsonl must hold exactly the manifest's organization")
    org_row = org_rows[0]
    new_slug = slug or org_row["slug"]
    if slug_problem is not None and slug and (problem := slug_problem(slug)):
        raise ArchiveError(f"--slug {slug}: {problem}")
    # A row of another organization would be written into that organization.
    for name in manifest["files"]:
        table = name.removesuffix(".jsonl")
        if table in ("organizations", "users"):
            continue
        for row in _rows(zf, name):
            if str(row.get("organization_id")) != str(org_id):
                raise ArchiveError(f"{name} holds a row of another organization ({row.get('organization_id')})")
    ring = integrity.keyring()
    key_ids = (
        {r["key_id"] for r in _rows(zf, "audit_events.jsonl")} if "audit_events.jsonl" in manifest["files"] else set()
    )
    key_ids |= (
        {r["key_id"] for r in _rows(zf, "audit_checkpoints.jsonl")}
        if "audit_checkpoints.jsonl" in manifest["files"]
        else set()
    )
    missing_keys = sorted(key_ids - set(ring))
    if missing_keys:
        raise ArchiveError(
            f"the archive's audit log is signed with key(s) {', '.join(missing_keys)}, which this installation does"
            " not hold: add the exporting installation's audit key to AUDIT_PREVIOUS_KEYS (the archive never"
            " carries keys), then import again"
        )

    report = ImportReport(org_id, new_slug)
    with engine.connect() as conn, conn.begin():
        conn.execute(
            text("SELECT set_config('app.org_id', :o, true), set_config('app.user_id', '', true)"), {"o": str(org_id)}
        )
        if conn.execute(text("SELECT 1 FROM organizations WHERE id = :o"), {"o": org_id}).first():
            raise ArchiveError(
                f"organization {org_id} already exists in this database: an import moves an organization to another"
                " database, it does not copy one"
            )
        taken = conn.execute(
            text(
                "SELECT 1 FROM organizations WHERE slug = :s UNION ALL"
                " SELECT 1 FROM retired_slugs WHERE slug = :s AND expires_at > now()"
            ),
            {"s": new_slug},
        ).first()
        if taken:
            raise ArchiveError(f"the address {new_slug!r} is taken in this database: choose another with --slug")
        org_row = {**org_row, "slug": new_slug}
        if (
            org_row.get("custom_domain")
            and conn.execute(
                text("SELECT 1 FROM organizations WHERE lower(custom_domain) = lower(:d)"),
                {"d": org_row["custom_domain"]},
            ).first()
        ):
            raise ArchiveError(f"the custom host {org_row['custom_domain']} is served by another organization here")
        _insert(conn, "organizations", [org_row])
        report.rows["organizations"] = 1

        # Accounts: matched by e-mail, else created with no usable password.
        user_map: dict[str, str] = {}
        for u in _rows(zf, "users.jsonl"):
            found = conn.execute(
                text("SELECT id FROM users WHERE lower(email) = lower(:e)"), {"e": u["email"]}
            ).scalar()
            if found is not None:
                user_map[u["id"]] = str(found)
                report.users_matched.append(u["email"])
                continue
            new_id = u["id"]
            if conn.execute(text("SELECT 1 FROM users WHERE id = :i"), {"i": new_id}).first():
                new_id = str(uuid.uuid4())
            user_map[u["id"]] = new_id
            _insert(conn, "users", [{**{c: u.get(c) for c in USER_COLUMNS}, "id": new_id, "password_hash": None}])
            report.users_created.append(u["email"])
        report.rows["users"] = len(user_map)

        user_fks = _user_fk_columns(conn)
        for table in tables:
            name = f"{table}.jsonl"
            if name not in manifest["files"]:
                continue
            remap = user_fks.get(table, [])
            batch, n = [], 0
            for row in _rows(zf, name):
                for col in remap:
                    if row.get(col) is not None:
                        row[col] = user_map.get(row[col], row[col])
                batch.append(row)
                if len(batch) >= BATCH:
                    n += _insert(conn, table, batch)
                    batch = []
            if batch:
                n += _insert(conn, table, batch)
            report.rows[table] = n
        _advance_sequences(conn, ["organizations", "users", *tables])

        # The imported log must verify here, or nothing is kept.
        result = verification.verify_org(conn, org_id, new_slug, ring)
        if not result.ok:
            raise ArchiveError(f"the archive's audit log does not verify: {result.first.message}")
        report.audit_events, report.audit_head_seq = result.checked, result.head_seq
        head = conn.execute(
            text("SELECT seq, chain_mac FROM audit_seals WHERE organization_id = :o ORDER BY seq DESC LIMIT 1"),
            {"o": org_id},
        ).first()
        database = conn.execute(text("SELECT current_database()")).scalar_one()
    if head is not None:
        anchors.advance(database, {org_id: (head.seq, bytes(head.chain_mac))})
    return report


def _insert(conn, table: str, rows: list[dict]) -> int:
    """Insert JSON rows as PostgreSQL reads them back (``json_populate_recordset``:
    every type through its own text form). Generated columns are computed
    again; an ``xid8`` column (which transaction wrote the row) is this one;
    a column the rows do not carry takes its default."""
    cols = [
        (c, udt) for c, udt, generated in _columns(conn, table) if not generated and (udt == "xid8" or c in rows[0])
    ]
    targets = ", ".join(_q(c) for c, _ in cols)
    values = ", ".join("pg_current_xact_id()" if udt == "xid8" else f"r.{_q(c)}" for c, udt in cols)
    conn.execute(
        text(
            f"INSERT INTO {_q(table)} ({targets}) OVERRIDING SYSTEM VALUE SELECT {values}"
            f" FROM json_populate_recordset(NULL::{_q(table)}, CAST(:rows AS json)) AS r"
        ),
        {"rows": json.dumps(rows)},
    )
    return len(rows)


def _advance_sequences(conn, tables: list[str]) -> None:
    """Move each imported table's id sequence past the ids it now holds, so a
    row created later never takes an imported id."""
    for table in tables:
        for col, _udt, _gen in _columns(conn, table):
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": f'public."{table}"', "c": col}
            ).scalar()
            if seq:
                conn.execute(
                    text(
                        f"SELECT setval(CAST(:s AS regclass), GREATEST((SELECT coalesce(max({_q(col)}), 0) FROM {_q(table)}),"
                        " (SELECT last_value FROM " + seq + ")), true)"
                    ),
                    {"s": seq},
                )


def read_manifest(data: bytes) -> dict:
    """The manifest of an archive held in memory (raises ``ArchiveError``)."""
    return _open(io.BytesIO(data))[1]

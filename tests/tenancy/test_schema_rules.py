"""The Citus-ready schema rule: in every table with ``organization_id``, that
column leads the primary key, every unique constraint and index, and every
foreign key to another tenant table is composite and carries it.

Checked twice: on the models' metadata (what the code declares) and on the
live database catalogs (what the migrations actually built, including any
index a migration added by hand).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from app.extensions import db
from app.rls import tenant_tables

ORG = "organization_id"

# Indexes allowed not to lead with organization_id, each with the reason.
# Keep this list short: every entry is a query that crosses organizations.
ALLOWED_INDEXES = {
    # The apex lists a user's organizations ("your organizations", the org
    # switcher) through RLS's member-self policy: a lookup by user across
    # organizations. On Citus it becomes a query fanned out to every shard
    # (or a small reference table of user -> organizations).
    "ix_memberships_user": "the apex lists a user's organizations",
    # A domain is verified by one organization at most (the index is the
    # guarantee, across organizations), and a verified address's domain
    # finds its organization for auto-join. On Citus: a reference table of
    # verified domain -> organization.
    "uq_domains_verified_name": "one organization per verified domain; auto-join looks a domain up",
}


def _first(columns_or_expressions) -> str | None:
    first = next(iter(columns_or_expressions), None)
    return getattr(first, "name", None)


def metadata_problems(metadata: MetaData, allowed=ALLOWED_INDEXES) -> list[str]:
    """Every breach of the rule in ``metadata``, as readable sentences."""
    tenant = {t.name for t in metadata.tables.values() if ORG in t.c}
    problems = []
    for name in sorted(tenant):
        table = metadata.tables[name]
        pk = list(table.primary_key.columns)
        if not pk or pk[0].name != ORG:
            problems.append(f"{name}: primary key ({', '.join(c.name for c in pk)}) does not lead with {ORG}")
        for cons in table.constraints:
            if isinstance(cons, UniqueConstraint) and _first(cons.columns) != ORG:
                problems.append(f"{name}: unique constraint {cons.name} does not lead with {ORG}")
            if isinstance(cons, ForeignKeyConstraint):
                target = cons.referred_table.name
                if target not in tenant:
                    continue  # global tables (organizations, users, plans) are fine
                pairs = {(e.parent.name, e.column.name) for e in cons.elements}
                if len(cons.elements) < 2 or (ORG, ORG) not in pairs:
                    problems.append(
                        f"{name}: foreign key {cons.name} to tenant table {target} must be composite and "
                        f"include {ORG} -> {target}.{ORG}"
                    )
        for index in table.indexes:
            if index.name in allowed:
                continue
            if _first(index.expressions) != ORG:
                kind = "unique index" if index.unique else "index"
                problems.append(f"{name}: {kind} {index.name} does not lead with {ORG}")
    return problems


CATALOG_INDEXES = text("""
    SELECT c.relname AS table_name, i.relname AS index_name, a.attname AS first_column, x.indisunique
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
    WHERE n.nspname = 'public' AND c.relname = ANY(:tables)
    ORDER BY 1, 2
""")

CATALOG_FKS = text("""
    SELECT con.conname, src.relname AS table_name, dst.relname AS target,
           (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
           (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) AS target_columns
    FROM pg_constraint con
    JOIN pg_class src ON src.oid = con.conrelid
    JOIN pg_class dst ON dst.oid = con.confrelid
    JOIN pg_namespace n ON n.oid = src.relnamespace
    WHERE con.contype = 'f' AND n.nspname = 'public'
      AND src.relname = ANY(:tables) AND dst.relname = ANY(:tables)
""")


def catalog_problems(conn, allowed=ALLOWED_INDEXES) -> list[str]:
    """Every breach of the rule in the live database (indexes include PKs and unique constraints)."""
    tables = tenant_tables(conn)
    problems = []
    for r in conn.execute(CATALOG_INDEXES, {"tables": tables}):
        if r.index_name not in allowed and r.first_column != ORG:
            kind = "unique index" if r.indisunique else "index"
            problems.append(
                f"{r.table_name}: {kind} {r.index_name} leads with {r.first_column or 'an expression'}, not {ORG}"
            )
    for r in conn.execute(CATALOG_FKS, {"tables": tables}):
        pairs = set(zip(r.columns, r.target_columns, strict=False))
        if len(r.columns) < 2 or (ORG, ORG) not in pairs:
            problems.append(
                f"{r.table_name}: foreign key {r.conname} to tenant table {r.target} "
                f"must be composite and include {ORG}"
            )
    return problems


# --------------------------------------------------------------------------- the rule holds
def test_every_tenant_model_follows_the_rule(app):
    assert metadata_problems(db.metadata) == []


def test_the_live_database_follows_the_rule(app, owner_engine):
    with owner_engine.connect() as conn:
        assert catalog_problems(conn) == []


def test_every_tenant_table_in_the_database_is_a_tenant_model(app, owner_engine):
    """A table created by a migration alone (no model) would escape the metadata check."""
    with owner_engine.connect() as conn:
        live = set(tenant_tables(conn))
    modelled = {t.name for t in db.metadata.tables.values() if ORG in t.c}
    assert live - modelled == set()


def test_the_allow_list_names_real_indexes(app):
    indexes = {i.name for t in db.metadata.tables.values() for i in t.indexes}
    assert set(ALLOWED_INDEXES) <= indexes


# --------------------------------------------------------------------------- the check bites
def _bad_metadata() -> MetaData:
    md = MetaData()
    Table("organizations", md, Column("id", UUID, primary_key=True))
    Table("memberships", md, Column(ORG, UUID, primary_key=True), Column("user_id", UUID, primary_key=True))
    widgets = Table(
        "widgets",
        md,
        Column("id", UUID, primary_key=True),  # id first: breaks the PK rule
        Column(ORG, UUID, primary_key=True),
        Column("name", String),
        Column("owner_id", UUID),
        UniqueConstraint("name", name="uq_widgets_name"),  # unique without organization_id
        ForeignKeyConstraint(["owner_id"], ["memberships.user_id"], name="fk_widgets_owner"),  # not composite
    )
    Index("ix_widgets_name", func.lower(widgets.c.name))  # an expression first
    return md


def test_the_metadata_check_fails_on_a_table_that_breaks_the_rule():
    problems = metadata_problems(_bad_metadata())
    assert any("widgets: primary key" in p for p in problems)
    assert any("uq_widgets_name" in p for p in problems)
    assert any("fk_widgets_owner" in p for p in problems)
    assert any("ix_widgets_name" in p for p in problems)
    assert len(problems) == 4, problems


def test_the_catalog_check_fails_on_a_table_that_breaks_the_rule(app, owner_engine):
    with owner_engine.connect() as conn, conn.begin() as tx:  # DDL is transactional: rolled back below
        conn.execute(
            text(
                "CREATE TABLE widgets (organization_id uuid NOT NULL, id uuid NOT NULL, name text, owner_id uuid,"
                " PRIMARY KEY (id, organization_id), CONSTRAINT uq_widgets_name UNIQUE (name))"
            )
        )
        conn.execute(text("CREATE INDEX ix_widgets_lower_name ON widgets (lower(name))"))
        conn.execute(
            text("ALTER TABLE widgets ADD CONSTRAINT fk_widgets_owner FOREIGN KEY (owner_id) REFERENCES users (id)")
        )
        conn.execute(text("CREATE UNIQUE INDEX uq_projects_id_only ON projects (id)"))
        conn.execute(
            text(
                "ALTER TABLE widgets ADD CONSTRAINT fk_widgets_project FOREIGN KEY (owner_id) REFERENCES projects (id)"
            )
        )
        problems = catalog_problems(conn)
        tx.rollback()
    text_ = "\n".join(problems)
    assert "widgets: unique index widgets_pkey leads with id" in text_
    assert "uq_widgets_name" in text_
    assert "ix_widgets_lower_name leads with an expression" in text_
    assert "projects: unique index uq_projects_id_only" in text_
    assert "fk_widgets_project" in text_
    assert "fk_widgets_owner" not in text_  # a key to a global table is fine

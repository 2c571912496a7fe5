"""Organization export and import between two databases: a round trip keeps
every row and a verifiable audit log; a damaged, altered, foreign-schema or
foreign-key archive is refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from sqlalchemy import text

from tests.audit.conftest import settle

XID_COLUMNS = {"xid", "horizon"}  # which transaction wrote the row: the database's own fact


def table_rows(engine, table, org_id, pk="1"):
    with engine.connect() as c:
        out = []
        for (j,) in c.execute(
            text(f'SELECT row_to_json(t) FROM "{table}" t WHERE organization_id = :o ORDER BY {pk}'), {"o": org_id}
        ):
            out.append({k: v for k, v in j.items() if k not in XID_COLUMNS})
        return out


def export(app, slug, path):
    result = app.test_cli_runner().invoke(args=["org", "export", slug, str(path)])
    assert result.exit_code == 0, result.output
    return path


def import_(second_app, path, *extra):
    # The CLI runs in whichever app context is pushed: push the second's.
    with second_app.app_context():
        return second_app.test_cli_runner().invoke(args=["org", "import", str(path), *extra])


def org_count(engine, org_id):
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM organizations WHERE id = :o"), {"o": org_id}).scalar()


def rewrite(src, dst, change):
    """Copy archive ``src`` to ``dst``, passing each member's bytes through ``change(name, data)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))
    return dst


@pytest.fixture
def demo_acme(app):
    """The demo data (every area has rows in acme) and 30 more events, sealed."""
    from app.demo import load_demo
    from app.extensions import db
    from app.scoping import all_organizations
    from app.tenancy.models import Organization

    def db_session_org_id(slug):
        return db.session.query(Organization.id).filter_by(slug=slug).scalar()

    load_demo()
    from app import audit
    from app.scoping import tenant_context as _tc

    with all_organizations(reason="test: find acme"):
        acme_id = db_session_org_id("acme")
    with _tc(acme_id):
        for i in range(30):  # a log long enough to tamper with, whatever the demo records
            audit.record("project.updated", target=("project", str(i), f"Round trip {i}"), metadata={"i": i})
        db.session.commit()
    settle()
    with all_organizations(reason="test: find acme"):
        org = db.session.query(Organization).filter_by(slug="acme").one()
        db.session.rollback()
    return org


def test_round_trip_keeps_every_row_and_a_verifiable_audit_log(
    app, owner_engine, second_app, second_owner, demo_acme, tmp_path
):
    from app.orgdata.archive import tenant_tables

    path = export(app, "acme", tmp_path / "acme.zip")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for name, spec in manifest["files"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == spec["sha256"]
    with owner_engine.connect() as c:
        tables = tenant_tables(c)
        assert manifest["schema_revision"] == c.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert manifest["organization"]["slug"] == "acme"
    assert manifest["files"]["audit_events.jsonl"]["rows"] >= 30

    result = import_(second_app, path)
    assert result.exit_code == 0, result.output
    assert "imported organization acme" in result.output
    assert "created owner@acme.test" in result.output

    org_id = demo_acme.id
    # The import is audited in the new database, after the imported log.
    with second_owner.connect() as c:
        imported_ids = [
            r.id
            for r in c.execute(
                text("SELECT id FROM audit_events WHERE organization_id = :o AND action = 'org.imported'"),
                {"o": org_id},
            )
        ]
    assert len(imported_ids) == 1
    compared = 0
    for table in tables:
        before = table_rows(owner_engine, table, org_id, pk="row_to_json(t)::text")
        after = table_rows(second_owner, table, org_id, pk="row_to_json(t)::text")
        if table == "audit_events":  # each side's own record of the move is not in the archive
            after = [r for r in after if r["id"] not in imported_ids]
            # this export's own request comes after its snapshot (the demo's earlier one is inside)
            before = [r for r in before if r["action"] != "org.export_requested" or r in after]
        if table in ("org_exports", "submit_keys", "api_idempotency"):
            continue
        assert after == before, table
        compared += len(before)
    assert compared > 50
    with owner_engine.connect() as a, second_owner.connect() as b:
        q = text(
            "SELECT id, email, name, email_verified_at, created_at, password_hash IS NULL AS no_password FROM users"
            " WHERE id IN (SELECT user_id FROM memberships WHERE organization_id = :o) ORDER BY id"
        )
        src, dst = a.execute(q, {"o": org_id}).all(), b.execute(q, {"o": org_id}).all()
        o1 = a.execute(text("SELECT row_to_json(o) FROM organizations o WHERE id = :o"), {"o": org_id}).scalar()
        o2 = b.execute(text("SELECT row_to_json(o) FROM organizations o WHERE id = :o"), {"o": org_id}).scalar()
    assert [r[:5] for r in src] == [r[:5] for r in dst] and len(src) >= 5
    assert all(r.no_password for r in dst)  # created without a usable password
    assert o1 == o2

    with second_app.app_context():
        verify = second_app.test_cli_runner().invoke(args=["audit", "verify", "--org", "acme"])
    assert verify.exit_code == 0, verify.output
    assert "OK      acme:" in verify.output


def test_accounts_are_matched_by_email_and_references_follow(app, second_app, second_owner, demo_acme, tmp_path):
    import uuid

    path = export(app, "acme", tmp_path / "acme.zip")
    other_id = uuid.uuid4()
    with second_owner.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash) VALUES (:i, 'OWNER@acme.test', 'Already Here', 'x')"
            ),
            {"i": other_id},
        )
    result = import_(second_app, path, "--slug", "acme-moved")
    assert result.exit_code == 0, result.output
    assert "matched by e-mail" in result.output
    with second_owner.connect() as c:
        role = c.execute(
            text("SELECT role FROM memberships WHERE organization_id = :o AND user_id = :u"),
            {"o": demo_acme.id, "u": other_id},
        ).scalar()
        slug = c.execute(text("SELECT slug FROM organizations WHERE id = :o"), {"o": demo_acme.id}).scalar()
        kept = c.execute(text("SELECT name, password_hash FROM users WHERE id = :u"), {"u": other_id}).one()
    assert role == "owner" and slug == "acme-moved"
    assert tuple(kept) == ("Already Here", "x")  # the existing account is not changed


def test_tampered_archive_is_refused_before_anything_is_written(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")

    def tamper(name, data):
        return data.replace(b"Acme", b"Acne", 1) if name == "projects.jsonl" else data

    bad = rewrite(path, tmp_path / "bad.zip", tamper)
    result = import_(second_app, bad)
    assert result.exit_code == 2
    assert "projects.jsonl: its SHA-256 is not the manifest's" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_audit_log_altered_with_a_recomputed_checksum_is_refused(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")
    digests = {}

    def tamper(name, data):
        if name == "audit_events.jsonl":
            lines = data.split(b"\n")
            row = json.loads(lines[3])
            row["actor_label"] = "Somebody Else"
            lines[3] = json.dumps(row).encode()
            data = b"\n".join(lines)
            digests[name] = hashlib.sha256(data).hexdigest()
        if name == "manifest.json":
            m = json.loads(data)
            m["files"]["audit_events.jsonl"]["sha256"] = digests["audit_events.jsonl"]
            data = json.dumps(m).encode()
        return data

    bad = rewrite(path, tmp_path / "bad.zip", tamper)
    result = import_(second_app, bad)
    assert result.exit_code == 2, result.output
    assert "audit log does not verify" in result.output and "edited" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_truncated_archive_is_refused(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")
    data = path.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    result = import_(second_app, cut)
    assert result.exit_code == 2
    assert "not a readable ZIP archive" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_archive_of_another_schema_revision_is_refused(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")

    def other_schema(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["schema_revision"] = "0001"
            data = json.dumps(m).encode()
        return data

    bad = rewrite(path, tmp_path / "old.zip", other_schema)
    result = import_(second_app, bad)
    assert result.exit_code == 2
    assert "exported at schema revision '0001'" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_row_of_another_organization_in_the_archive_is_refused(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")
    digests = {}

    def smuggle(name, data):
        if name == "projects.jsonl":
            row = json.loads(data.split(b"\n")[0])
            row["organization_id"] = "7b0c5f0e-2f4a-4c1e-9a55-3d8e6b1f0a42"
            data = data + json.dumps(row).encode() + b"\n"
            digests[name] = (hashlib.sha256(data).hexdigest(), data.count(b"\n"))
        if name == "manifest.json":
            m = json.loads(data)
            m["files"]["projects.jsonl"] = {
                "sha256": digests["projects.jsonl"][0],
                "rows": digests["projects.jsonl"][1],
            }
            data = json.dumps(m).encode()
        return data

    bad = rewrite(path, tmp_path / "smuggle.zip", smuggle)
    result = import_(second_app, bad)
    assert result.exit_code == 2
    assert "holds a row of another organization" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_archive_signed_by_an_unknown_audit_key_is_refused(app, second_app, second_owner, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")
    second_app.config["AUDIT_HMAC_KEY"] = "another installation's key"
    try:
        result = import_(second_app, path)
    finally:
        second_app.config.pop("AUDIT_HMAC_KEY")
    assert result.exit_code == 2
    assert "AUDIT_PREVIOUS_KEYS" in result.output
    assert org_count(second_owner, demo_acme.id) == 0


def test_import_refuses_an_organization_already_here_and_a_taken_slug(app, owner_engine, demo_acme, tmp_path):
    path = export(app, "acme", tmp_path / "acme.zip")
    result = import_(app, path)
    assert result.exit_code == 2 and "already exists in this database" in result.output


def test_export_of_an_unknown_organization_says_so(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["org", "export", "nope", str(tmp_path / "x.zip")])
    assert result.exit_code == 2 and "no live organization nope" in result.output


def test_export_is_audited(app, owner_engine, demo_acme, tmp_path):
    def requested():
        with owner_engine.connect() as c:
            return c.execute(
                text(
                    "SELECT count(*) FROM audit_events WHERE organization_id = :o AND action = 'org.export_requested'"
                ),
                {"o": demo_acme.id},
            ).scalar()

    before = requested()  # the demo's own finished export
    export(app, "acme", tmp_path / "acme.zip")
    assert requested() == before + 1


def test_manifest_reader_refuses_garbage():
    from app.orgdata.archive import ArchiveError, read_manifest

    with pytest.raises(ArchiveError):
        read_manifest(b"not a zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", "{}")
    with pytest.raises(ArchiveError, match="another format"):
        read_manifest(buf.getvalue())

"""Tamper evidence: every kind of edit made through the owner connection is
named by ``verify``; the runtime role cannot edit at all; the sealer never
lets a late commit land inside a sealed range."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.database import apply_tenant_settings


@pytest.fixture
def chain(world, record_in, seal, events):
    """Ten sealed events in acme (seq 1..10) and a few in globex."""
    for i in range(10):
        record_in(
            world.acme,
            "project.updated",
            target=("project", f"p{i}", f"Project {i}"),
            before={"name": f"old {i}"},
            after={"name": f"new {i}"},
        )
    for i in range(3):
        record_in(world.globex, "project.created", target=("project", f"g{i}", f"Secret {i}"), after={"name": "x"})
    seal()
    return [r["id"] for r in events(world.acme)]


def seq_of(owner_sql, event_id):
    return owner_sql("SELECT seq FROM audit_seals WHERE event_id = :e", e=event_id).scalar()


def test_untouched_log_verifies(world, chain, verify):
    res = verify("acme")
    assert res.ok, res.problems
    assert (res.checked, res.head_seq) == (10, 10)
    assert verify("globex").ok


def test_sealing_is_contiguous_per_organization(world, chain, owner_sql):
    seqs = [
        r.seq for r in owner_sql("SELECT seq FROM audit_seals WHERE organization_id = :o ORDER BY seq", o=world.acme.id)
    ]
    assert seqs == list(range(1, 11))


def test_edited_field_is_named(world, chain, verify, owner_sql):
    victim = chain[3]
    owner_sql("UPDATE audit_events SET target_label = 'Harmless' WHERE id = :e", e=victim)
    res = verify("acme")
    assert not res.ok
    assert (res.first.kind, res.first.seq, res.first.event_id) == ("edited", 4, victim)
    assert "seq 4" in res.first.message and f"#{victim}" in res.first.message
    assert verify("globex").ok  # another organization's chain is unaffected


def test_edited_json_change_is_named(world, chain, verify, owner_sql):
    owner_sql("""UPDATE audit_events SET changes = '{"name": ["old 6", "hidden"]}' WHERE id = :e""", e=chain[6])
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("edited", 7)


def test_deleted_event_is_named(world, chain, verify, owner_sql):
    owner_sql("DELETE FROM audit_events WHERE id = :e", e=chain[5])
    res = verify("acme")
    assert (res.first.kind, res.first.seq, res.first.event_id) == ("deleted", 6, chain[5])


def test_deleted_event_and_its_seal_leave_a_visible_gap(world, chain, verify, owner_sql):
    owner_sql("DELETE FROM audit_seals WHERE event_id = :e", e=chain[2])
    owner_sql("DELETE FROM audit_events WHERE id = :e", e=chain[2])
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("missing", 3)
    assert "seq 3 missing" in res.first.message


def test_forged_insert_is_named(world, chain, verify, owner_sql):
    forged = owner_sql(
        "INSERT INTO audit_events (organization_id, id, occurred_at, actor_type, action, target_type, target_id,"
        " target_label, key_id, mac) SELECT organization_id, nextval('audit_events_id_seq'), now(), 'user',"
        " 'member.role_changed', 'member', 'x', 'Mallory', key_id, decode(repeat('ab', 32), 'hex')"
        " FROM audit_events WHERE id = :e RETURNING id",
        e=chain[0],
    ).scalar()
    res = verify("acme")
    assert not res.ok
    assert (res.first.kind, res.first.event_id) == ("forged", forged)
    assert "inserted outside the application" in res.first.message


def test_replayed_copy_of_a_valid_row_is_named(world, chain, verify, owner_sql):
    """Copying a genuine row (MAC and all) under a new id does not verify: the MAC covers the id."""
    copy_id = owner_sql(
        "INSERT INTO audit_events (organization_id, id, occurred_at, actor_type, actor_id, actor_label, action,"
        " target_type, target_id, target_label, changes, metadata, key_id, mac)"
        " SELECT organization_id, nextval('audit_events_id_seq'), occurred_at, actor_type, actor_id, actor_label,"
        " action, target_type, target_id, target_label, changes, metadata, key_id, mac FROM audit_events"
        " WHERE id = :e RETURNING id",
        e=chain[1],
    ).scalar()
    res = verify("acme")
    assert (res.first.kind, res.first.event_id) == ("forged", copy_id)


def test_swapped_rows_are_named(world, chain, verify, owner_sql):
    a, b = chain[4], chain[7]
    cols = (
        "occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id, target_label, changes,"
        " metadata, ip, user_agent, request_id, key_id, mac"
    )
    owner_sql(
        f"""
        WITH x AS (SELECT id, {cols} FROM audit_events WHERE id IN (:a, :b))
        UPDATE audit_events e SET ({cols}) = (SELECT {cols} FROM x WHERE x.id = CASE e.id WHEN :a THEN :b ELSE :a END)
        WHERE e.id IN (:a, :b)""",
        a=a,
        b=b,
    )
    res = verify("acme")
    assert (res.first.kind, res.first.seq, res.first.event_id) == ("swapped", 5, a)
    assert "holds the contents of seq 8" in res.first.message


def test_forged_seal_is_named(world, chain, verify, owner_sql):
    owner_sql("UPDATE audit_seals SET chain_mac = decode(repeat('00', 32), 'hex') WHERE event_id = :e", e=chain[8])
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("link", 9)


def test_truncated_tail_is_named(world, chain, verify, owner_sql):
    assert verify("acme").ok  # anchors head 10 outside the database
    for e in chain[7:]:
        owner_sql("DELETE FROM audit_seals WHERE event_id = :e", e=e)
        owner_sql("DELETE FROM audit_events WHERE id = :e", e=e)
    res = verify("acme")
    assert not res.ok
    assert (res.first.kind, res.first.seq) == ("truncated", 8)
    assert "seq 8..10 removed (truncated tail)" in res.first.message


def test_rewritten_history_is_named(world, chain, verify, owner_sql, record_in, seal):
    """Deleting the whole tail and re-sealing other events up to the old head: the anchor's MAC differs."""
    assert verify("acme").ok
    for e in chain[5:]:
        owner_sql("DELETE FROM audit_seals WHERE event_id = :e", e=e)
        owner_sql("DELETE FROM audit_events WHERE id = :e", e=e)
    for i in range(5):
        record_in(world.acme, "project.created", target=("project", f"n{i}", "n"), after={"name": "n"})
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("rewritten", 10)


def test_runtime_role_cannot_update_delete_or_truncate(app, world, chain):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    try:
        for sql in (
            "UPDATE audit_events SET action = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "UPDATE audit_seals SET seq = seq + 1",
            "DELETE FROM audit_seals",
            "TRUNCATE audit_seals",
            "DELETE FROM audit_checkpoints",
            "UPDATE audit_checkpoints SET ok = true",
            "DELETE FROM audit_label_words",
            "TRUNCATE audit_label_words",
        ):
            with engine.connect() as c:
                c.execute(text("SELECT set_config('app.org_id', :o, false)"), {"o": str(world.acme.id)})
                with pytest.raises(Exception, match="permission denied"):
                    c.execute(text(sql))
                c.rollback()
    finally:
        engine.dispose()


def test_runtime_role_sees_only_its_organizations_events(app, world, chain):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    try:
        with engine.begin() as c:
            apply_tenant_settings(c, world.globex.id)
            orgs = set(c.execute(text("SELECT DISTINCT organization_id FROM audit_events")).scalars())
            assert orgs == {world.globex.id}
            with pytest.raises(Exception, match="row-level security"):
                c.execute(
                    text(
                        "INSERT INTO audit_seals (organization_id, seq, event_id, row_mac, chain_mac, horizon)"
                        " VALUES (:o, 99, 1, '\\x00', '\\x00', '1')"
                    ),
                    {"o": str(world.acme.id)},
                )
    finally:
        engine.dispose()


def test_late_commit_never_lands_inside_a_sealed_range(app, world, record_in, seal, verify, events, owner_sql):
    """An event whose transaction is still open while the sealer runs is not
    sealed by that run; once committed it is sealed after everything sealed
    before it: no gap, no reordering, verify stays green."""
    from app import audit
    from app.audit import Actor, event_row
    from app.audit.models import AuditEvent
    from app.extensions import db
    from app.scoping import tenant_context

    first = record_in(world.acme, "project.created", target=("project", "a", "A"), after={"name": "A"})
    with tenant_context(world.acme.id):
        late = audit.record("project.created", target=("project", "late", "Late"), after={"name": "Late"})
        # Still uncommitted. Another writer commits meanwhile, and the sealer runs.
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
        with engine.begin() as c:
            apply_tenant_settings(c, world.acme.id)
            eid, ts = c.execute(text("SELECT nextval('audit_events_id_seq'), clock_timestamp()")).first()
            c.execute(
                AuditEvent.__table__.insert(),
                [event_row(world.acme.id, eid, ts, "project.updated", Actor.system(), ("project", "b", "B"))],
            )
        engine.dispose()
        from app.auditlog.sealing import seal_all

        seal_all(db.engine)
        sealed = {r.event_id for r in owner_sql("SELECT event_id FROM audit_seals")}
        assert late.id not in sealed  # its transaction is still open
        assert eid not in sealed  # younger than the open transaction: not final yet either
        db.session.commit()
    seal()
    order = [
        r.event_id
        for r in owner_sql("SELECT event_id FROM audit_seals WHERE organization_id = :o ORDER BY seq", o=world.acme.id)
    ]
    assert order[0] == first.id and set(order[1:]) == {late.id, eid}
    res = verify("acme")
    assert res.ok and res.head_seq == 3


def test_seal_refuses_rows_with_a_bad_mac(world, chain, owner_sql, seal, record_in):
    owner_sql("UPDATE audit_events SET mac = decode(repeat('11', 32), 'hex') WHERE id = :e", e=chain[9])
    # chain[9] is already sealed; a new unsealed forged row is what the sealer must refuse
    forged = owner_sql(
        "INSERT INTO audit_events (organization_id, id, occurred_at, actor_type, action, key_id, mac)"
        " SELECT organization_id, nextval('audit_events_id_seq'), now(), 'system', 'org.deleted', key_id,"
        " decode(repeat('22', 32), 'hex') FROM audit_events WHERE id = :e RETURNING id",
        e=chain[0],
    ).scalar()
    results = seal()
    assert results[world.acme.id].rejected == [forged]


def insert_old(app, org, n, days_ago):
    """``n`` validly signed events of ``org`` dated ``days_ago`` (as if recorded back then)."""
    from datetime import timedelta

    from app.audit import Actor, event_row
    from app.audit.models import AuditEvent
    from app.util import utcnow

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    ids = []
    with engine.begin() as c:
        apply_tenant_settings(c, org.id)
        for i in range(n):
            eid = c.execute(text("SELECT nextval('audit_events_id_seq')")).scalar()
            ts = utcnow() - timedelta(days=days_ago, minutes=n - i)
            c.execute(
                AuditEvent.__table__.insert(),
                [event_row(org.id, eid, ts, "project.updated", Actor.system(), ("project", f"old{i}", "Old"))],
            )
            ids.append(eid)
    engine.dispose()
    return ids


def test_purge_keeps_verify_green_and_is_audited(app, world, record_in, seal, verify, owner_engine, events, owner_sql):
    from app.auditlog.retention import purge

    old = insert_old(app, world.acme, 6, days_ago=400)  # acme is on pro: 365 days
    globex_old = insert_old(app, world.globex, 2, days_ago=20)  # globex is on free: 30 days, still kept
    new = [
        record_in(world.acme, "project.created", target=("project", f"n{i}", "New"), after={"name": "n"}).id
        for i in range(4)
    ]
    assert verify("acme").ok
    results = {r.slug: r for r in purge(owner_engine)}
    assert (results["acme"].removed, results["acme"].first_seq, results["acme"].through_seq) == (6, 1, 6)
    assert results["globex"].removed == 0
    remaining = events(world.acme)
    assert [r["id"] for r in remaining if r["action"] != "audit.purged"] == new
    assert not set(old) & {r["id"] for r in remaining}
    assert {r["id"] for r in events(world.globex)} == set(globex_old)
    (purged,) = [r for r in remaining if r["action"] == "audit.purged"]
    assert purged["metadata"]["removed"] == 6 and purged["actor_type"] == "system"
    cp = owner_sql(
        "SELECT * FROM audit_checkpoints WHERE organization_id = :o AND kind = 'purge'", o=world.acme.id
    ).first()
    assert (cp.first_seq, cp.through_seq, cp.removed_count) == (1, 6, 6)
    res = verify("acme")
    assert res.ok, res.problems
    assert (res.start_seq, res.head_seq) == (7, 11)  # the purge's own event was sealed as no. 11
    # Purging again removes nothing new and stays green.
    assert {r.slug: r for r in purge(owner_engine)}["acme"].removed == 0
    assert verify("acme").ok


def test_forged_checkpoint_is_named(app, world, record_in, verify, owner_engine, owner_sql):
    from app.auditlog.retention import purge

    insert_old(app, world.acme, 3, days_ago=400)
    record_in(world.acme, "project.created", target=("project", "n", "New"), after={"name": "n"})
    assert verify("acme").ok
    purge(owner_engine)
    assert verify("acme").ok
    # Hiding one more deletion behind a doctored checkpoint does not verify.
    owner_sql(
        "UPDATE audit_checkpoints SET through_seq = 4 WHERE kind = 'purge' AND organization_id = :o", o=world.acme.id
    )
    res = verify("acme")
    assert "checkpoint" in {p.kind for p in res.problems}
    assert (res.first.kind, res.first.seq) == ("missing", 1)  # so seq 1..3 count as deleted again


def test_deleting_the_oldest_events_without_a_checkpoint_is_named(world, chain, verify, owner_sql):
    for e in chain[:2]:
        owner_sql("DELETE FROM audit_seals WHERE event_id = :e", e=e)
        owner_sql("DELETE FROM audit_events WHERE id = :e", e=e)
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("missing", 1)


def test_purge_requires_the_owner(app, world, chain):
    from app.auditlog.retention import purge
    from app.extensions import db

    with pytest.raises(Exception, match="permission denied"):
        purge(
            db.engine,
            "acme",
            now=__import__("app.util", fromlist=["utcnow"]).utcnow() + __import__("datetime").timedelta(days=4000),
        )

"""``flask --app wsgi audit seal|verify|purge|actions``: exit status and messages."""

from __future__ import annotations

import re

from sqlalchemy import text


def run(app, *args):
    return app.test_cli_runner().invoke(args=["audit", *args])


def test_verify_is_green_on_demo_data_and_red_after_a_manual_edit(app, owner_engine, seal):
    from app.auditlog.demo import seed_demo_log
    from app.demo import load_demo

    summary = load_demo()  # the demo loader records and seals the demo log
    # 12 scripted events, and acme's 90 days of back-dated history before them
    created = int(re.search(r"(\d+) audit events\b", summary).group(1))
    assert created > 12
    assert seed_demo_log() == 0  # idempotent
    with owner_engine.connect() as c:
        unsealed = c.execute(
            text(
                "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_seals s"
                " WHERE s.event_id = e.id AND s.organization_id = e.organization_id)"
            )
        ).scalar()
    # Normally 0: the loader seals. (Another test suite's open transaction on
    # the shared server can keep the newest events pending for a moment.)
    assert unsealed <= created
    seal()
    result = run(app, "verify")
    assert result.exit_code == 0, result.output
    assert "OK      acme:" in result.output and result.output.strip().splitlines()[-1].startswith("OK:")

    with owner_engine.begin() as c:
        victim = c.execute(
            text(
                'UPDATE audit_events SET changes = \'{"role": ["Member", "Viewer"]}\' WHERE id = (SELECT min(e.id)'
                " FROM audit_events e JOIN organizations o ON o.id = e.organization_id"
                " WHERE o.slug = 'acme' AND e.action = 'member.role_changed') RETURNING id"
            )
        ).scalar()
    result = run(app, "verify")
    assert result.exit_code == 1
    assert "BROKEN  acme:" in result.output and f"event #{victim}" in result.output
    assert "edited after it was recorded" in result.output
    assert "OK      globex:" in result.output
    assert run(app, "verify", "--org", "globex").exit_code == 0
    assert run(app, "verify", "--org", "acme").exit_code == 1


def test_verify_unknown_organization_is_exit_2(app):
    result = run(app, "verify", "--org", "nope")
    assert result.exit_code == 2 and "no organization nope" in result.output


def test_seal_and_purge_commands(app, world, record_in, owner_engine, seal):
    record_in(world.acme, "project.created", target=("project", "p", "P"), after={"name": "P"})
    result = run(app, "seal")
    assert result.exit_code == 0 and "sealed" in result.output
    seal()  # another suite's open transaction on the shared server may have held the first run back
    result = run(app, "purge", "--now", "2099-01-01T00:00:00")
    assert result.exit_code == 0, result.output
    assert "acme: removed 1 event(s), seq 1..1" in result.output
    assert run(app, "verify").exit_code == 0
    assert run(app, "purge", "--now", "soon").exit_code == 2


def test_actions_lists_the_catalogue(app):
    out = run(app, "actions").output
    assert "member.role_changed" in out and "Changed a member's role" in out

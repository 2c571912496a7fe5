"""The daily re-check: a verified domain whose record is seen stays verified;
missing for 7 days, it is unverified, its custom host stops, auto-join stops,
and the organization's domain admins are e-mailed (real SMTP)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from app import jobs
from app.domains import services
from app.domains.tasks import recheck
from app.extensions import db
from app.scoping import tenant_context
from app.util import utcnow

HOST = "portal.acme-widgets.com"


@pytest.fixture
def verified(world, dns_zone):
    """acme verified acme-widgets.com and serves portal.acme-widgets.com; returns the domain id."""
    with tenant_context(world.acme.id):
        d = services.add_domain("acme-widgets.com")
        dns_zone.publish("_tenantry.acme-widgets.com", f"tenantry-verification={d.token}")
        assert services.verify_domain(d).found
        services.set_custom_host(world.acme, d, HOST)
        db.session.commit()
        return d.id


def run(task) -> dict:
    """The job's body, committed as the worker commits it."""
    out = task.body(timestamp=0)
    db.session.commit()
    return out


def age(owner_engine, days: float, seen_days: float | None = None):
    """Pretend the last check was ``days`` ago and the record last seen ``seen_days`` ago."""
    seen = days if seen_days is None else seen_days
    with owner_engine.begin() as c:
        c.execute(
            text(
                "UPDATE domains SET last_checked_at = now() - make_interval(secs => :d),"
                " record_seen_at = now() - make_interval(secs => :s)"
            ),
            {"d": days * 86400, "s": seen * 86400},
        )


def row(owner_engine):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT * FROM domains")).mappings().one()


def custom_host(owner_engine):
    with owner_engine.connect() as c:
        return c.execute(text("SELECT custom_domain FROM organizations WHERE slug = 'acme'")).scalar()


def test_the_recheck_is_a_daily_periodic_job():
    from tests.jobs.test_schedule import _gaps, _ticks

    assert _gaps(_ticks("domains.recheck", 5)) == {86400.0}


def test_a_record_still_there_renews_the_domain(world, verified, owner_engine, run_jobs):
    age(owner_engine, days=1)
    before = row(owner_engine)["record_seen_at"]
    assert run(recheck) == {"seen": 1}
    after = row(owner_engine)
    assert after["status"] == "verified" and after["record_seen_at"] > before
    assert custom_host(owner_engine) == HOST


def test_a_record_missing_for_less_than_7_days_keeps_the_domain_verified(world, verified, owner_engine, dns_zone):
    dns_zone.clear()
    age(owner_engine, days=1, seen_days=6)
    assert run(recheck) == {"missing": 1}
    r = row(owner_engine)
    assert r["status"] == "verified" and "No TXT record" in r["last_check_error"]
    assert custom_host(owner_engine) == HOST


def test_a_record_missing_for_7_days_unverifies_stops_the_host_and_mails_the_admins(
    world, verified, owner_engine, dns_zone, mailbox
):
    dns_zone.clear()
    age(owner_engine, days=1, seen_days=7.1)
    assert run(recheck) == {"unverified": 1}
    r = row(owner_engine)
    assert r["status"] == "failed" and r["verified_at"] is None
    assert custom_host(owner_engine) is None
    with owner_engine.connect() as c:
        acts = c.execute(
            text("SELECT action, actor_type FROM audit_events WHERE organization_id = :o ORDER BY id"),
            {"o": world.acme.id},
        ).all()
    assert ("org.domain_unverified", "system") in [(a, t) for a, t in acts]
    assert [a for a, _ in acts][-1] == "org.custom_host_changed"
    # Owner and admin may manage domains; the others are not told.
    for who in ("owner@acme.test", "admin@acme.test"):
        msg = mailbox.last(who)
        assert "acme-widgets.com is no longer verified" in msg["Subject"]
    assert not mailbox.to("member@acme.test")


def test_dns_that_does_not_answer_never_unverifies(world, verified, owner_engine, dns_zone):
    dns_zone.silent = True
    age(owner_engine, days=1, seen_days=30)
    assert run(recheck) == {"unreachable": 1}
    assert row(owner_engine)["status"] == "verified"


def test_a_domain_checked_within_20_hours_is_not_asked_again(world, verified, owner_engine, dns_zone):
    dns_zone.questions.clear()
    assert run(recheck) == {}
    assert dns_zone.questions == []


def test_the_job_runs_through_the_queue(world, verified, owner_engine, run_jobs, app):
    age(owner_engine, days=2)
    with app.app_context():
        jobs.enqueue(recheck, timestamp=int(utcnow().timestamp()))
        db.session.commit()
    run_jobs()
    assert row(owner_engine)["last_checked_at"] > utcnow() - timedelta(minutes=5)

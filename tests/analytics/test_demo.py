"""The demo gives every chart a shape: 90 days of acme history that still
verifies, rolled up, and webhook deliveries; loading twice adds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from app.audit import rollups
from app.auditlog.verification import verify_all
from app.demo import load_demo
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Organization
from tests.analytics.conftest import seal_everything


def test_demo_history_spans_90_days_verifies_and_is_rolled_up(app):
    load_demo()
    seal_everything(db.engine)
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    today = rollups.today_in("UTC")
    with tenant_context(acme.id):
        events = db.session.execute(text("SELECT count(*), min(occurred_at) FROM audit_events")).one()
        days = rollups.series(acme.id, "total", today - timedelta(days=89), today).get("", {})
        joined = rollups.series(acme.id, "action", today - timedelta(days=89), today, ["member.joined"])
        deliveries = db.session.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
        ids_follow_time = db.session.execute(
            text(
                "SELECT bool_and(ok) FROM (SELECT occurred_at >= lag(occurred_at) OVER (ORDER BY id)"
                " OR lag(occurred_at) OVER (ORDER BY id) IS NULL AS ok FROM audit_events) x"
            )
        ).scalar_one()
    db.session.rollback()
    assert events[0] > 1000
    assert len(days) >= 85  # weekends are quiet, not empty
    assert sum(joined.get("member.joined", {}).values()) >= 30
    assert deliveries > 100
    assert ids_follow_time  # the viewer's date filter turns dates into id ranges
    (result,) = verify_all(db.engine, "acme")
    assert not result.problems, result.problems

    load_demo()  # idempotent: nothing added to the history or the deliveries
    with tenant_context(acme.id):
        again = db.session.execute(select(func.count()).select_from(text("audit_events"))).scalar_one()
        deliveries_again = db.session.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    db.session.rollback()
    assert again == events[0] and deliveries_again == deliveries

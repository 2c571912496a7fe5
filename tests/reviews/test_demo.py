"""Demo data: Acme has one finished and one open access review, once."""

from __future__ import annotations

from sqlalchemy import func, select

from app.demo import load_demo
from app.extensions import db
from app.reviews.models import AccessReview, AccessReviewItem
from app.scoping import tenant_context
from app.tenancy.models import Organization


def test_demo_gives_acme_a_finished_and_an_open_review_once(app):
    load_demo()
    assert "Demo data: already loaded" in load_demo()
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    with tenant_context(acme.id):
        reviews = {r.status: r for r in db.session.execute(select(AccessReview)).scalars()}
        assert set(reviews) == {"open", "closed"}
        pending_in_closed = db.session.execute(
            select(func.count())
            .select_from(AccessReviewItem)
            .where(AccessReviewItem.review_id == reviews["closed"].id, AccessReviewItem.decision.is_(None))
        ).scalar()
        open_items = db.session.execute(
            select(func.count()).select_from(AccessReviewItem).where(AccessReviewItem.review_id == reviews["open"].id)
        ).scalar()
    assert pending_in_closed == 0
    assert open_items > 100  # every active member of acme
    assert reviews["open"].recurrence == "quarterly"

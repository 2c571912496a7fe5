"""Demo data for the privacy areas: Acme has a finished organization export
(a real archive, built by the export job's code), Max Member a personal data
export being prepared (its job queued), and Acme's finished access review;
loading again creates nothing."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from sqlalchemy import select, text

from app.demo import DEMO_PERSONAL_EXPORT_USER, load_demo
from app.extensions import db
from app.orgdata.models import OrgExport
from app.scoping import all_organizations, tenant_context
from app.tenancy.models import Organization
from tests.conftest import url


def test_demo_has_a_finished_org_export_and_a_pending_personal_export_once(app, owner_engine):
    first = load_demo()
    assert "1 organization export" in first and "1 personal data export" in first
    assert "Demo data: already loaded" in load_demo()
    with all_organizations(reason="test: find acme"):
        acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    with tenant_context(acme.id):
        [export] = db.session.execute(select(OrgExport)).scalars().all()
        assert export.status == "ready" and export.percent == 100 and export.expires_at is not None
        assert export.requested_label == "Olivia Owner <owner@acme.test>"
        data = export.archive
    assert hashlib.sha256(data).hexdigest() == export.sha256
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["organization"]["slug"] == "acme"
        assert manifest["files"]["access_reviews.jsonl"]["rows"] == 2  # the reviews come before the export
    with owner_engine.connect() as c:
        personal = (
            c.execute(
                text("SELECT e.status FROM personal_exports e JOIN users u ON u.id = e.user_id WHERE u.email = :e"),
                {"e": DEMO_PERSONAL_EXPORT_USER},
            )
            .scalars()
            .all()
        )
        queued = c.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'privacy.build_export' AND status = 'todo'")
        ).scalar()
        actions = (
            c.execute(
                text(
                    "SELECT action FROM audit_events WHERE organization_id = :o AND action LIKE 'org.export%' ORDER BY id"
                ),
                {"o": acme.id},
            )
            .scalars()
            .all()
        )
    assert personal == ["pending"] and queued == 1
    assert actions == ["org.export_requested", "org.export_completed"]


def test_the_demo_members_page_shows_the_export_being_prepared(app, login):
    from app.auth.models import User

    load_demo()
    with all_organizations(reason="test: find the member"):
        user = db.session.execute(select(User).where(User.email == DEMO_PERSONAL_EXPORT_USER)).scalar_one()
    html = login(user).get(url(None, "/account/privacy")).get_data(as_text=True)
    assert "Being prepared" in html

"""Demo data: acme trials audit streaming and has one example stream,
disabled, pointing at a receiver on this machine, loaded idempotently."""

from __future__ import annotations

from sqlalchemy import select

from app import crypto
from app.demo import DEMO_STREAM_URL, load_demo
from app.extensions import db
from app.scoping import tenant_context
from app.streaming.models import AuditStream
from app.tenancy.entitlements import entitled
from app.tenancy.models import Organization


def test_demo_gives_acme_a_streaming_trial_and_one_disabled_example_stream_once(app):
    load_demo()
    load_demo()  # idempotent
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    assert entitled(acme, "audit_streaming")
    with tenant_context(acme.id):
        [stream] = db.session.execute(select(AuditStream)).scalars().all()
    assert stream.url == DEMO_STREAM_URL and stream.enabled is False and stream.kind == "https"
    assert crypto.decrypt(stream.secret_encrypted).startswith(b"whsec_")

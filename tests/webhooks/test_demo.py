"""Demo data: acme has one webhook endpoint, disabled, pointing at a receiver on
this machine, loaded idempotently; its secret decrypts."""

from __future__ import annotations

from sqlalchemy import select

from app import crypto
from app.demo import DEMO_WEBHOOK_URL, load_demo
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Organization
from app.webhooks.models import WebhookEndpoint


def test_demo_gives_acme_one_disabled_loopback_endpoint_once(app):
    load_demo()
    load_demo()  # idempotent
    acme = db.session.execute(select(Organization).where(Organization.slug == "acme")).scalar_one()
    with tenant_context(acme.id):
        [endpoint] = db.session.execute(select(WebhookEndpoint)).scalars().all()
    assert endpoint.url == DEMO_WEBHOOK_URL and endpoint.enabled is False
    assert crypto.decrypt(endpoint.secret_encrypted).startswith(b"whsec_")

"""The SSO area's periodic job: forget SAML request and assertion ids past their end."""

from __future__ import annotations

from app import jobs


@jobs.task(
    "sso.saml_purge",
    queue_name="default",
    periodic="23 3 * * *",
    lock="sso.saml_purge",
    queueing_lock="sso.saml_purge",
)
def saml_purge(timestamp: int) -> dict:
    """Daily at 03:23 UTC: delete SAML AuthnRequest rows a day past their
    expiry and assertion ids past their validity (a replay of one is
    refused as expired by then). Safe to repeat."""
    from app.extensions import db
    from app.scoping import all_organizations
    from app.sso.saml import purge_expired

    with all_organizations(reason="SSO: purge expired SAML request and assertion ids"):
        requests, assertions = purge_expired()
        db.session.commit()
    return {"requests": requests, "assertions": assertions}

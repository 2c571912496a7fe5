"""Every blueprint, registered in one place (app wiring: the one module that
names every area's pages)."""

from app.account.views import bp as account_bp
from app.analytics.views import bp as analytics_bp
from app.api.admin import bp as apikeys_bp
from app.api.views import bp as api_bp
from app.auditlog import views as auditlog_views
from app.auditlog.views import bp as auditlog_bp
from app.auth import passkey_views  # noqa: F401 - adds the passkey and step-up routes to auth_bp
from app.auth.views import bp as auth_bp
from app.domains.views import bp as domains_bp
from app.domains.views import join_bp as domain_join_bp
from app.mail.views import bp as mail_bp
from app.members.views import bp as members_bp
from app.ops import bp as ops_bp
from app.orgdata.views import bp as orgdata_bp
from app.orgs.views import bp as orgs_bp
from app.platform.views import bp as platform_bp
from app.privacy.views import bp as privacy_bp
from app.projects.views import bp as projects_bp
from app.rbac.views import bp as rbac_bp
from app.reports.views import bp as reports_bp
from app.reviews.views import bp as reviews_bp
from app.scim.protocol import bp as scim_bp
from app.scim.views import bp as scim_settings_bp
from app.settings.views import bp as settings_bp
from app.sso.saml_views import bp as saml_bp
from app.sso.views import bp as sso_bp
from app.sso.views import flow_bp as sso_flow_bp
from app.sso.views import setup_bp as sso_setup_bp
from app.streaming.views import bp as streaming_bp
from app.webhooks.views import bp as webhooks_bp

# The platform log lives in the console, behind its gate; the viewer is the
# audit area's (the two areas may not import each other: wiring joins them).
platform_bp.add_url_rule("/audit", "audit", auditlog_views.platform_log)
platform_bp.add_url_rule("/audit/<int:event_id>", "audit_event", auditlog_views.platform_event)


def register(app) -> None:
    for bp in (
        ops_bp,
        auth_bp,
        account_bp,
        privacy_bp,
        orgs_bp,
        projects_bp,
        settings_bp,
        rbac_bp,
        members_bp,
        webhooks_bp,
        streaming_bp,
        apikeys_bp,
        api_bp,
        domains_bp,
        domain_join_bp,
        analytics_bp,
        sso_bp,
        sso_setup_bp,
        sso_flow_bp,
        reports_bp,
        reviews_bp,
        orgdata_bp,
        saml_bp,
        scim_bp,
        scim_settings_bp,
    ):
        app.register_blueprint(bp)
    if app.config["DEVELOPMENT"]:
        # The outbox shows every mail the app wrote, password-reset links
        # included: it must not exist at all in production.
        app.register_blueprint(mail_bp)
    app.register_blueprint(auditlog_bp)
    app.register_blueprint(platform_bp)

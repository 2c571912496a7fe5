"""The audit action catalogue: every action an event may carry, with a group
and a description.

``record()`` refuses an action that is not listed here, so the catalogue is
complete by construction: the viewer's action filter, the docs and the export
all read it. Add a line here in the same change that starts recording a new
action.

``account=True`` marks account-level actions (they concern a person, not an
organization): they always land in the platform log (see
``app.audit.context``), and also in the organization whose host they happened
on, if any.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    group: str
    description: str
    account: bool = False


_A = Action

ACTIONS: tuple[Action, ...] = (
    # Accounts (sign-in, passwords, e-mail, sessions).
    _A("auth.signup", "Accounts", "Signed up", account=True),
    _A("auth.login", "Accounts", "Logged in", account=True),
    _A("auth.login_failed", "Accounts", "Failed log-in attempt", account=True),
    _A(
        "auth.locked_out",
        "Accounts",
        "Sign-in locked after too many failed attempts (from one address, or a tier of the account-wide limit)",
        account=True,
    ),
    _A("auth.logout", "Accounts", "Logged out", account=True),
    _A("auth.password_changed", "Accounts", "Changed their password", account=True),
    _A("auth.password_reset_requested", "Accounts", "Asked for a password reset link", account=True),
    _A("auth.password_reset", "Accounts", "Reset their password with an e-mailed link", account=True),
    _A("auth.email_change_requested", "Accounts", "Asked to change their e-mail address", account=True),
    _A("auth.email_changed", "Accounts", "Changed their e-mail address", account=True),
    _A("auth.email_verified", "Accounts", "Verified their e-mail address", account=True),
    _A("auth.verification_resent", "Accounts", "Asked for a new verification e-mail", account=True),
    _A("auth.profile_updated", "Accounts", "Changed their profile", account=True),
    _A("auth.session_revoked", "Accounts", "Signed out a session", account=True),
    _A("auth.sessions_revoked", "Accounts", "Signed out every other session", account=True),
    _A("auth.two_factor_enabled", "Accounts", "Turned on two-factor authentication", account=True),
    _A("auth.two_factor_disabled", "Accounts", "Turned off two-factor authentication", account=True),
    _A("auth.recovery_codes_regenerated", "Accounts", "Generated new recovery codes", account=True),
    _A("auth.recovery_code_used", "Accounts", "Used a recovery code", account=True),
    _A("auth.second_factor_failed", "Accounts", "Failed second-factor check", account=True),
    _A("auth.security_mail_updated", "Accounts", "Changed which security e-mails they receive", account=True),
    _A("auth.passkey_added", "Accounts", "Registered a passkey", account=True),
    _A("auth.passkey_renamed", "Accounts", "Renamed a passkey", account=True),
    _A("auth.passkey_removed", "Accounts", "Removed a passkey", account=True),
    _A("auth.passkey_failed", "Accounts", "Refused passkey response", account=True),
    _A("auth.step_up", "Accounts", "Confirmed their identity for a sensitive action (step-up)", account=True),
    _A("auth.step_up_failed", "Accounts", "Failed step-up", account=True),
    _A(
        "auth.step_up_required",
        "Accounts",
        "Was asked to confirm their identity before a sensitive action",
        account=True,
    ),
    _A("auth.account_deleted", "Accounts", "Deleted their account", account=True),
    # Personal data (app.privacy): a person's export of their data, and the
    # erasure that follows an account's deletion.
    _A("privacy.export_requested", "Accounts", "Asked for an export of their personal data", account=True),
    _A("privacy.export_ready", "Accounts", "Their personal data export was built and e-mailed", account=True),
    _A("privacy.export_downloaded", "Accounts", "Downloaded their personal data export", account=True),
    _A("privacy.export_refused", "Accounts", "A personal data export link was refused", account=True),
    _A("privacy.export_expired", "Accounts", "A personal data export expired and was deleted", account=True),
    _A("privacy.account_erased", "Accounts", "A deleted account's personal data was erased", account=True),
    # Organization.
    _A("org.created", "Organization", "Created the organization"),
    _A("org.settings_changed", "Organization", "Changed organization settings"),
    _A("org.branding_changed", "Organization", "Changed the organization's branding"),
    _A("org.security_changed", "Organization", "Changed security settings"),
    _A("org.access_refused", "Organization", "Was turned away by the security policy (2FA required, IP allowlist)"),
    _A("org.notifications_changed", "Organization", "Changed which notification e-mails they receive"),
    _A("org.domain_added", "Organization", "Added a domain to verify"),
    _A("org.domain_verified", "Organization", "Verified a domain"),
    _A("org.domain_check_failed", "Organization", "Checked a domain's verification record and did not find it"),
    _A("org.domain_unverified", "Organization", "A domain lost its verification (record missing for 7 days)"),
    _A("org.domain_settings_changed", "Organization", "Changed what a verified domain does (auto-join, role)"),
    _A("org.domain_removed", "Organization", "Removed a domain"),
    _A("org.custom_host_changed", "Organization", "Changed the custom host the organization is served on"),
    _A("org.plan_changed", "Organization", "Changed the plan"),
    _A("org.entitlement_overridden", "Organization", "Set a limit or feature of its own (an override)"),
    _A("org.entitlement_override_removed", "Organization", "Removed an override: the plan's value applies again"),
    _A("org.ownership_transferred", "Organization", "Transferred ownership"),
    _A("org.deleted", "Organization", "Deleted the organization"),
    _A("org.restored", "Organization", "Restored the organization"),
    _A("org.purged", "Organization", "Purged the organization's data after the restore window"),
    _A("org.suspended", "Organization", "Suspended the organization"),
    _A("org.reinstated", "Organization", "Reinstated the organization"),
    _A("org.export_requested", "Organization", "Asked for an export of the organization's data"),
    _A("org.export_completed", "Organization", "An export of the organization's data was ready"),
    _A("org.export_downloaded", "Organization", "Downloaded an export of the organization's data"),
    _A("org.imported", "Organization", "Imported the organization from an export archive"),
    # Single sign-on.
    _A("sso.connection_created", "Single sign-on", "Created an SSO connection"),
    _A("sso.connection_changed", "Single sign-on", "Changed an SSO connection"),
    _A("sso.connection_tested", "Single sign-on", "Tested an SSO connection"),
    _A("sso.connection_enabled", "Single sign-on", "Enabled an SSO connection"),
    _A("sso.connection_disabled", "Single sign-on", "Disabled an SSO connection"),
    _A("sso.sign_in", "Single sign-on", "Signed in through SSO"),
    _A("sso.sign_in_refused", "Single sign-on", "An SSO sign-in was refused"),
    _A(
        "sso.saml_assertion_accepted",
        "Single sign-on",
        "A signed SAML assertion was accepted at the ACS (its id, NameID and request)",
    ),
    _A("sso.user_provisioned", "Single sign-on", "A first SSO sign-in created the account or membership"),
    _A("sso.setup_link_issued", "Single sign-on", "Issued an SSO setup link for an IT contact"),
    _A("sso.setup_link_used", "Single sign-on", "An SSO setup link was opened"),
    _A("sso.setup_link_revoked", "Single sign-on", "Revoked an SSO setup link"),
    _A(
        "sso.break_glass_sign_in",
        "Single sign-on",
        "A break-glass owner signed in with a password while SSO is enforced",
    ),
    # Members and invitations.
    _A("member.invited", "Members", "Invited someone"),
    _A("member.invitation_resent", "Members", "Resent an invitation"),
    _A("member.invitation_revoked", "Members", "Revoked an invitation"),
    _A("member.invitation_role_changed", "Members", "Changed the role of a pending invitation"),
    _A("member.invitation_declined", "Members", "Declined an invitation"),
    _A("member.joined", "Members", "Joined the organization"),
    _A("member.join_requested", "Members", "Asked to join (their verified address is at the organization's domain)"),
    _A("member.auto_join_refused", "Members", "Could not join by domain (no seat left on the plan)"),
    _A("member.added", "Members", "Added a member directly"),
    _A("member.role_changed", "Members", "Changed a member's role"),
    _A("member.deactivated", "Members", "Deactivated a member"),
    _A("member.two_factor_reminded", "Members", "Reminded a member to set up two-factor authentication"),
    _A("member.reactivated", "Members", "Reactivated a member"),
    _A("member.removed", "Members", "Removed a member"),
    _A("member.left", "Members", "Left the organization"),
    _A("member.account_deleted", "Members", "A member deleted their account"),
    # Roles.
    # SCIM provisioning (actor type scim: the organization's identity provider, through a token).
    _A("scim.token_created", "SCIM", "Created a SCIM token"),
    _A("scim.token_revoked", "SCIM", "Revoked a SCIM token"),
    _A("scim.user_created", "SCIM", "Provisioned a user through SCIM"),
    _A("scim.user_updated", "SCIM", "Updated a user through SCIM"),
    _A("scim.user_deleted", "SCIM", "Deprovisioned (deleted) a user through SCIM"),
    _A("scim.group_created", "SCIM", "Created a group through SCIM"),
    _A("scim.group_updated", "SCIM", "Changed a group through SCIM"),
    _A("scim.group_deleted", "SCIM", "Deleted a group through SCIM"),
    _A("scim.request_refused", "SCIM", "A SCIM change was refused (the error is in the details)"),
    _A("role.group_mapped", "Roles", "Mapped an identity-provider group to a role"),
    _A("role.group_unmapped", "Roles", "Removed an identity-provider group's role mapping"),
    _A("role.group_mapping_changed", "Roles", "Changed the role an identity-provider group gives"),
    _A("role.created", "Roles", "Created a custom role"),
    _A("role.updated", "Roles", "Changed a custom role"),
    _A("role.deleted", "Roles", "Deleted a custom role"),
    # Projects (the example business resource).
    _A("project.created", "Projects", "Created a project"),
    _A("project.updated", "Projects", "Changed a project"),
    _A("project.archived", "Projects", "Archived a project"),
    _A("project.restored", "Projects", "Restored an archived project"),
    _A("project.deleted", "Projects", "Deleted a project"),
    _A("project.exported", "Projects", "Exported projects"),
    _A("project.bulk_updated", "Projects", "Changed several projects at once"),
    # API keys and webhooks.
    _A("api_key.created", "API", "Created an API key"),
    _A("api_key.updated", "API", "Changed an API key"),
    _A("api_key.revoked", "API", "Revoked an API key"),
    _A("api_key.rotated", "API", "Rotated an API key"),
    _A("webhook.created", "API", "Created a webhook endpoint"),
    _A("webhook.updated", "API", "Changed a webhook endpoint"),
    _A("webhook.deleted", "API", "Deleted a webhook endpoint"),
    _A("webhook.secret_rotated", "API", "Rotated a webhook signing secret"),
    _A("webhook.test_sent", "API", "Sent a test webhook delivery"),
    _A("webhook.redelivered", "API", "Redelivered a webhook"),
    _A("webhook.disabled", "API", "Disabled a webhook endpoint"),
    _A("webhook.enabled", "API", "Re-enabled a webhook endpoint"),
    _A("webhook.replay_started", "API", "Replayed failed webhook deliveries"),
    # Access reviews.
    _A("review.started", "Access reviews", "Started an access review"),
    _A("review.decided", "Access reviews", "Decided on a member's access in a review"),
    _A("review.closed", "Access reviews", "Closed an access review"),
    _A("review.exported", "Access reviews", "Exported an access review's evidence"),
    # Data exports.
    _A("data.exported", "Data", "Exported the organization's data"),
    _A("analytics.exported", "Data", "Exported analytics data"),
    # Platform console (super-admins).
    _A("platform.impersonation_started", "Platform", "A super-admin started acting as a user"),
    _A("platform.impersonation_ended", "Platform", "A super-admin stopped acting as a user"),
    _A("platform.plan_changed", "Platform", "A super-admin changed the plan"),
    _A("platform.plan_updated", "Platform", "A super-admin edited a plan's limits or features"),
    _A("platform.entitlement_overridden", "Platform", "A super-admin set an organization's own limit or feature"),
    _A("platform.entitlement_override_removed", "Platform", "A super-admin removed an organization's override"),
    _A("platform.org_suspended", "Platform", "A super-admin suspended an organization"),
    _A("platform.org_reactivated", "Platform", "A super-admin reactivated an organization"),
    _A("platform.org_restored", "Platform", "A super-admin restored a deleted organization"),
    _A("platform.org_purged", "Platform", "A super-admin purged a deleted organization's data"),
    _A("platform.user_disabled", "Platform", "A super-admin disabled a user"),
    _A("platform.user_enabled", "Platform", "A super-admin re-enabled a user"),
    _A("platform.password_reset_sent", "Platform", "A super-admin sent a user a password reset link"),
    _A("platform.job_retried", "Platform", "A super-admin retried a background job"),
    _A("platform.job_cancelled", "Platform", "A super-admin cancelled a background job"),
    _A("platform.superadmin_granted", "Platform", "Granted super-admin rights", account=True),
    _A("platform.superadmin_revoked", "Platform", "Revoked super-admin rights", account=True),
    # The audit log itself.
    _A("audit.exported", "Audit log", "Exported the audit log"),
    _A("audit.report_exported", "Audit log", "Exported a compliance report"),
    _A("audit.purged", "Audit log", "Removed events past the plan's retention"),
    _A("audit_stream.created", "Audit log", "Created an audit stream"),
    _A("audit_stream.updated", "Audit log", "Changed an audit stream"),
    _A("audit_stream.deleted", "Audit log", "Deleted an audit stream"),
    _A("audit_stream.enabled", "Audit log", "Enabled an audit stream"),
    _A("audit_stream.disabled", "Audit log", "Disabled an audit stream"),
    _A("audit_stream.test_sent", "Audit log", "Sent a test event to an audit stream"),
)

BY_NAME: dict[str, Action] = {a.name: a for a in ACTIONS}
ALL: frozenset[str] = frozenset(BY_NAME)


def describe(name: str) -> str:
    """A human description of ``name`` (the name itself when unknown, e.g. a retired action)."""
    a = BY_NAME.get(name)
    return a.description if a else name


def groups() -> list[tuple[str, list[Action]]]:
    """Actions grouped, in catalogue order (the viewer's grouped select)."""
    out: dict[str, list[Action]] = {}
    for a in ACTIONS:
        out.setdefault(a.group, []).append(a)
    return list(out.items())


def _check() -> None:
    names = [a.name for a in ACTIONS]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise AssertionError(f"duplicate audit actions {sorted(dupes)}")
    for n in names:
        area, _, verb = n.partition(".")
        if not area or not verb or len(n) > 64:
            raise AssertionError(f"bad audit action name {n!r}")


_check()

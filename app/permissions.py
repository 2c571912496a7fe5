"""The permission catalogue: the single source of truth for code, UI and docs.

Foundation: the guards (``app.rbac.decorators``), memberships
(``app.tenancy.models``) and the roles pages all read it, so it sits below
them all and imports nothing of the app.

A permission is an ``area:action`` string with a group and a description.
System roles are defined here too; they are identical in every organization
and cannot be edited. Custom roles (per organization) hold any subset.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    """One permission of the catalogue.

    ``group`` is the product area it belongs to (the editor's sections).
    ``feature`` names the plan feature it needs (``app.tenancy.entitlements``
    ``entitled(org, feature)``), or ``None`` for one every plan has.
    ``checked_in_code`` marks one that a service checks rather than a view
    guard (so it counts as built without a view requiring it).

    Whether a permission is *offered* (the role editor shows it, a role may
    be given it) is decided where the app's views are known:
    ``app.rbac.services.offered_permissions`` — a permission no registered
    view requires (and not ``checked_in_code``) belongs to a feature that is
    not built yet.
    """

    name: str
    group: str
    description: str
    feature: str | None = None
    checked_in_code: bool = False


_P = Permission

PERMISSIONS: tuple[Permission, ...] = (
    _P("org:view", "Organization", "See the organization dashboard and its basic details"),
    _P("org:update", "Organization", "Change the organization's name and general settings"),
    _P("org:delete", "Organization", "Delete the organization"),
    _P("org:transfer", "Organization", "Transfer ownership to another member"),
    _P("org:export", "Organization", "Export every row of the organization as one archive (to move it elsewhere)"),
    _P("billing:view", "Organization", "See the plan, quotas and usage"),
    _P("settings:branding", "Settings", "Change the logo, colours and display name"),
    _P("settings:domain", "Settings", "Verify domains, serve a custom host, let people at a domain join"),
    _P("settings:security", "Settings", "Change security settings (2FA policy, IP allow-list, sessions)"),
    _P(
        "settings:sso",
        "Settings",
        "Configure single sign-on (connections, their test, enabling them, setup links for IT) and SCIM provisioning (tokens, group roles)",
        feature="sso",
    ),
    _P("members:view", "Members", "See the member list and member details"),
    _P("members:invite", "Members", "Invite people and manage pending invitations"),
    _P("members:update_role", "Members", "Change a member's role"),
    _P("members:remove", "Members", "Deactivate or remove members"),
    _P("members:manage_owners", "Members", "Grant, change or remove the Owner role", checked_in_code=True),
    _P("roles:view", "Roles", "See roles and their permissions"),
    _P("roles:manage", "Roles", "Create, edit and delete custom roles"),
    _P("audit:view", "Audit", "Read the audit log"),
    _P("audit:export", "Audit", "Export the audit log and compliance reports"),
    _P("reviews:manage", "Audit", "Run access reviews: start campaigns, decide on members' access"),
    _P(
        "audit:stream",
        "Audit",
        "Stream the audit log to security tools (HTTPS, Splunk, Datadog): create, change and delete streams",
        feature="audit_streaming",
    ),
    _P("analytics:view", "Analytics", "See analytics dashboards and reports"),
    _P("analytics:export", "Analytics", "Export analytics data"),
    _P("apikeys:view", "API", "See API keys (never their secrets)"),
    _P("apikeys:manage", "API", "Create and revoke API keys"),
    _P("webhooks:view", "API", "See webhook endpoints and deliveries"),
    _P("webhooks:manage", "API", "Create, edit and delete webhook endpoints"),
    _P("projects:view", "Projects", "See projects"),
    _P("projects:create", "Projects", "Create projects"),
    _P("projects:update", "Projects", "Edit and archive projects"),
    _P("projects:delete", "Projects", "Delete projects"),
    _P("projects:export", "Projects", "Export projects"),
    _P("data:export", "Data", "Export the organization's data"),
)

BY_NAME: dict[str, Permission] = {p.name: p for p in PERMISSIONS}
ALL: frozenset[str] = frozenset(BY_NAME)

# Administrative permissions: those that change who may do what, the
# organization itself or its security, or that manage the keys and hooks
# programs use. An API key holding any of them is created only after a
# recent sign-in (step-up, ``app.auth.stepup``): a key outlives the session.
ADMINISTRATIVE: frozenset[str] = frozenset(
    {
        "org:update",
        "org:delete",
        "org:transfer",
        "settings:branding",
        "settings:domain",
        "settings:security",
        "members:invite",
        "members:update_role",
        "members:remove",
        "members:manage_owners",
        "roles:manage",
        "apikeys:manage",
        "webhooks:manage",
        # A stream sends the whole audit log (IPs, user agents) to a URL: as
        # sensitive as the keys and hooks above.
        "audit:stream",
    }
)


def groups(only=None) -> list[tuple[str, list[Permission]]]:
    """Permissions grouped by area, in catalogue order (for editors and docs);
    with ``only`` (a set of names), just those (an area with none is left out)."""
    out: dict[str, list[Permission]] = {}
    for p in PERMISSIONS:
        if only is None or p.name in only:
            out.setdefault(p.group, []).append(p)
    return list(out.items())


@dataclass(frozen=True)
class SystemRole:
    key: str
    name: str
    description: str
    permissions: frozenset[str]
    rank: int  # higher outranks lower; used for "demotion" and ordering


_READ = {
    "org:view",
    "billing:view",
    "members:view",
    "roles:view",
    "analytics:view",
    "projects:view",
}

SYSTEM_ROLES: dict[str, SystemRole] = {
    r.key: r
    for r in (
        SystemRole("owner", "Owner", "Everything, including deleting the organization and managing Owners.", ALL, 50),
        SystemRole(
            "admin",
            "Admin",
            "Everything except deleting, exporting or transferring the organization and managing Owners.",
            ALL - {"org:delete", "org:transfer", "org:export", "members:manage_owners"},
            40,
        ),
        SystemRole(
            "manager",
            "Manager",
            "Projects, export data, view members and analytics.",
            frozenset(
                _READ | {"projects:create", "projects:update", "projects:export", "analytics:export", "data:export"}
            ),
            30,
        ),
        SystemRole(
            "member",
            "Member",
            "View and create or update projects; view members.",
            frozenset(
                {"org:view", "members:view", "projects:view", "projects:create", "projects:update", "analytics:view"}
            ),
            20,
        ),
        SystemRole(
            "viewer",
            "Viewer",
            "Read only.",
            frozenset({"org:view", "members:view", "projects:view", "analytics:view"}),
            10,
        ),
    )
}

ROLE_ORDER = ["owner", "admin", "manager", "member", "viewer"]


def check_catalogue() -> None:
    """Fail loudly if a system role names a permission missing from the catalogue."""
    for role in SYSTEM_ROLES.values():
        unknown = role.permissions - ALL
        if unknown:
            raise AssertionError(f"{role.key} grants unknown permissions {sorted(unknown)}")


check_catalogue()

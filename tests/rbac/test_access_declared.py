"""Every route declares who may reach it (the url map is walked, not listed)."""

from __future__ import annotations

from app.permissions import ALL
from app.web.access import access_of


def test_every_route_declares_its_access(app):
    missing, bad = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        access = access_of(app.view_functions[rule.endpoint])
        if access is None:
            missing.append(f"{rule.endpoint} {rule.rule}")
        elif access["kind"] not in {"public", "login", "permission", "api"}:
            bad.append(f"{rule.endpoint}: unknown kind {access['kind']!r}")
        elif access["kind"] in ("permission", "api") and not set(access["permissions"]) <= ALL:
            bad.append(f"{rule.endpoint}: permissions outside the catalogue {access['permissions']}")
    assert not missing, "routes without @public, @login_only or @require(...): " + ", ".join(sorted(missing))
    assert not bad, "; ".join(bad)


def test_roles_area_routes_require_permissions(app):
    """The rbac blueprint (the roles pages) has no public or login-only route."""
    kinds = {
        rule.endpoint: access_of(app.view_functions[rule.endpoint])["kind"]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("rbac.")
    }
    assert kinds and set(kinds.values()) == {"permission"}, kinds

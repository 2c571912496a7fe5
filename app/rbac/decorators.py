"""Permission guards for organization pages: ``@require(...)`` /
``@require_any(...)`` / ``@require_all(...)``, and the plan guard
``@requires_feature(...)``. They declare the view's access
the same way as ``@public`` and ``@login_only`` (``app.web.access``), so the
test that walks the url map sees every view.

Permission guards sit under ``@login_required``: an anonymous visitor is sent
to log in; a signed-in member without the permission gets 403; anyone who is
not a member of the host's organization already got 404 from the host hook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, g
from flask_login import current_user

from app.extensions import login_manager
from app.permissions import ALL
from app.tenancy import entitlements
from app.web.access import grants, mark


def _guard(perms: tuple[str, ...], mode: str):
    unknown = set(perms) - ALL
    if unknown or not perms:
        raise ValueError(f"unknown permission(s) {sorted(unknown)}")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if getattr(g, "org", None) is None:
                abort(404)  # organization pages do not exist on the apex
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not grants(getattr(g, "permissions", frozenset()), perms, mode):
                g.denied_permissions = perms
                abort(403)
            return view(*args, **kwargs)

        return mark(wrapped, "permission", perms, mode)

    return decorator


def require(permission: str):
    """Allow members holding ``permission``."""
    return _guard((permission,), "all")


def require_all(*permissions: str):
    """Allow members holding every one of ``permissions``."""
    return _guard(permissions, "all")


def require_any(*permissions: str):
    """Allow members holding at least one of ``permissions``."""
    return _guard(permissions, "any")


def requires_feature(feature: str, page: Callable[[], str] | None = None):
    """Allow the view only when the organization is entitled to ``feature``
    (its plan, or an override: ``entitlements.entitled``).

    Otherwise 403 with a page that names the feature and says the plan does
    not include it (not 404: a member may well know the feature exists):
    the error page "Not on your plan", or ``page()`` where an area shows the
    refusal in its own layout (the settings sections). Sits under
    ``@require(...)``, which declares the view's permission; an unknown
    feature name fails when the module is imported.
    """
    if feature not in entitlements.feature_names():
        raise ValueError(f"unknown feature {feature!r}")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            org = getattr(g, "org", None)
            if org is None:
                abort(404)
            if not entitlements.entitled(org, feature):
                if page is not None:
                    return page(), 403
                g.not_entitled = feature
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_feature = feature
        return wrapped

    return decorator

"""Permission guards for organization pages: ``@require(...)`` /
``@require_any(...)`` / ``@require_all(...)``. They declare the view's access
the same way as ``@public`` and ``@login_only`` (``app.web.access``), so the
test that walks the url map sees every view.

Permission guards sit under ``@login_required``: an anonymous visitor is sent
to log in; a signed-in member without the permission gets 403; anyone who is
not a member of the host's organization already got 404 from the host hook.
"""

from __future__ import annotations

import functools

from flask import abort, g
from flask_login import current_user

from app.extensions import login_manager
from app.permissions import ALL
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

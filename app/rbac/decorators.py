"""Route guards. Every view declares its access, and a test walks the url map
to prove it: ``@public``, ``@login_only`` (apex/account pages), or
``@require(...)`` / ``@require_any(...)`` / ``@require_all(...)`` for
organization pages.

Permission guards sit under ``@login_required``: an anonymous visitor is sent
to log in; a signed-in member without the permission gets 403; anyone who is
not a member of the host's organization already got 404 from the host hook.
"""

from __future__ import annotations

import functools

from flask import abort, g
from flask_login import current_user

from app.rbac.catalogue import ALL

ACCESS_ATTR = "_tenantry_access"


def _mark(view, kind: str, perms: tuple[str, ...] = (), mode: str = "all", **flags):
    setattr(view, ACCESS_ATTR, {"kind": kind, "permissions": perms, "mode": mode, **flags})
    return view


def access_of(view) -> dict | None:
    """The declared access of a view function, or ``None`` when it declares none."""
    return getattr(view, ACCESS_ATTR, None)


def may_open(view, held) -> bool:
    """True when a member holding the permissions ``held`` may open ``view``,
    as its declared guard says (public and login-only views are open to all)."""
    access = access_of(view) or {}
    if access.get("kind") != "permission":
        return access.get("kind") in ("public", "login")
    return grants(held, access["permissions"], access["mode"])


def public(view=None, *, outsiders_on_org_host: bool = False, suspended_ok: bool = False):
    """No sign-in needed. ``outsiders_on_org_host`` lets non-members reach it on
    an organization's host (hand-off, invitation links)."""

    def wrap(v):
        return _mark(v, "public", outsiders=outsiders_on_org_host, suspended_ok=suspended_ok)

    return wrap(view) if view is not None else wrap


def login_only(view=None, *, suspended_ok: bool = False):
    """Any signed-in user; on an organization host, any member (account pages)."""

    def wrap(v):
        return _mark(v, "login", suspended_ok=suspended_ok)

    return wrap(view) if view is not None else wrap


def grants(held, permissions, mode: str = "all") -> bool:
    """True when the permissions ``held`` satisfy a guard on ``permissions``:
    every one of them (``mode`` ``"all"``) or at least one (``"any"``)."""
    if mode == "any":
        return any(p in held for p in permissions)
    return all(p in held for p in permissions)


def has(permission: str) -> bool:
    """True when the current member holds ``permission`` in the host's organization."""
    return permission in getattr(g, "permissions", frozenset())


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
                from app.extensions import login_manager

                return login_manager.unauthorized()
            if not grants(getattr(g, "permissions", frozenset()), perms, mode):
                g.denied_permissions = perms
                abort(403)
            return view(*args, **kwargs)

        return _mark(wrapped, "permission", perms, mode)

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

"""Access declarations: every view says who may reach it, and a test walks the
url map to prove it (``tests/rbac/test_access_declared.py``).

Foundation, so that every layer can declare its views: ``@public`` and
``@login_only`` here; the permission guards (``@require(...)``) are built on
``mark`` in ``app.rbac.decorators``. ``access_of`` is what the host hook and
the org switcher read; ``has`` is what pages and templates (``can``) ask.
"""

from __future__ import annotations

from flask import g

ACCESS_ATTR = "_tenantry_access"


def mark(view, kind: str, perms: tuple[str, ...] = (), mode: str = "all", **flags):
    """Declare ``view``'s access: ``kind`` is public, login or permission."""
    setattr(view, ACCESS_ATTR, {"kind": kind, "permissions": perms, "mode": mode, **flags})
    return view


def access_of(view) -> dict | None:
    """The declared access of a view function, or ``None`` when it declares none."""
    return getattr(view, ACCESS_ATTR, None)


def grants(held, permissions, mode: str = "all") -> bool:
    """True when the permissions ``held`` satisfy a guard on ``permissions``:
    every one of them (``mode`` ``"all"``) or at least one (``"any"``)."""
    if mode == "any":
        return any(p in held for p in permissions)
    return all(p in held for p in permissions)


def may_open(view, held) -> bool:
    """True when a member holding the permissions ``held`` may open ``view``,
    as its declared guard says (public and login-only views are open to all)."""
    access = access_of(view) or {}
    if access.get("kind") != "permission":
        return access.get("kind") in ("public", "login")
    return grants(held, access["permissions"], access["mode"])


def public(view=None, *, outsiders_on_org_host: bool = False, suspended_ok: bool = False, unknown_org_ok: bool = False):
    """No sign-in needed. ``outsiders_on_org_host`` lets non-members reach it on
    an organization's host (hand-off, invitation links); ``unknown_org_ok``
    also on an organization host that names no organization (the sign-in
    hand-off, so that a signed-in user gets there the same "no such
    organization, or not a member" page as on a real one)."""

    def wrap(v):
        return mark(
            v, "public", outsiders=outsiders_on_org_host, suspended_ok=suspended_ok, unknown_org_ok=unknown_org_ok
        )

    return wrap(view) if view is not None else wrap


def login_only(view=None, *, suspended_ok: bool = False, outsiders_on_org_host: bool = False):
    """Any signed-in user; on an organization host, any member (account pages).

    ``outsiders_on_org_host`` lets any signed-in user reach it on an
    organization's host, member or not, existing organization or not (log
    out, offered on the "not a member" page)."""

    def wrap(v):
        return mark(v, "login", suspended_ok=suspended_ok, outsiders=outsiders_on_org_host)

    return wrap(view) if view is not None else wrap


def api_operation(view, scopes: tuple[str, ...] = ()):
    """An API operation: no session, authenticated by an API key bound to
    the host's organization, allowed when the key's effective scopes hold
    ``scopes`` (``app.api``)."""
    return mark(view, "api", scopes, "all")


def has(permission: str) -> bool:
    """True when the current member holds ``permission`` in the host's organization."""
    return permission in getattr(g, "permissions", frozenset())

"""The platform console's blueprint and its one gate.

Every route of the console is declared on ``bp`` (a ``PlatformBlueprint``):

* **Gated once.** ``bp.before_request`` answers 404 unless the request is
  on the apex host and the signed-in user is a super-admin (anonymous
  visitors, organization owners, everyone else: 404, the same answer as a
  URL that does not exist). No view repeats the check.
* **Declared by construction.** ``add_url_rule`` marks each view
  ``kind="login"`` with ``platform=True`` (the url-map test requires every
  view to declare its access): a route cannot be added to the console
  without both the declaration and the gate.
* **The gate runs before the CSRF check.** The blueprint is exempt from
  the app-wide CSRF hook (which runs before any blueprint's hook and would
  answer a token-less POST with 400, telling an outsider the URL exists);
  the gate calls the same check itself once it has let the request in.
* **A second factor is required.** A super-admin without a confirmed
  second factor (``app.auth.factors``) is sent to enrol one (the 404 for
  everyone else comes first: the redirect tells only a super-admin).
* The one route a support session (a super-admin acting as a user) may
  reach is ``stop_impersonating``, on any host: the person reaching it is
  the impersonated user, not a super-admin.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
from flask_login import current_user

from app.auth import factors, sessions
from app.extensions import csrf
from app.web.access import mark

STOP_ENDPOINT = "platform.stop_impersonating"


class PlatformBlueprint(Blueprint):
    """A blueprint whose every view declares "super-admins, on the apex"."""

    def add_url_rule(self, rule, endpoint=None, view_func=None, **options):
        if view_func is not None:
            mark(view_func, "login", platform=True)
        super().add_url_rule(rule, endpoint, view_func, **options)


bp = PlatformBlueprint("platform", __name__, url_prefix="/platform")
# The gate below checks CSRF itself, after deciding 404 (see the module docstring).
csrf.exempt(bp)


def in_support_session() -> bool:
    """True when this request runs in a support session (a super-admin acting as a user)."""
    rec = sessions.current()
    return rec is not None and rec.impersonator_id is not None


@bp.before_request
def _gate():
    """404 for everyone but a super-admin on the apex; a super-admin without
    a second factor is sent to enrol one; then the CSRF check (400 for a bad
    token) for those let in (see the module docstring)."""
    if not _let_in():
        abort(404)
    if request.endpoint != STOP_ENDPOINT and not factors.has_second_factor(current_user):
        flash("The platform console needs two-factor authentication. Set up an authenticator app first.", "warning")
        return redirect(url_for("account.security"))
    _check_csrf()
    return None


def _let_in() -> bool:
    if request.endpoint == STOP_ENDPOINT and current_user.is_authenticated and in_support_session():
        return True
    if g.get("host_kind") != "apex" or not current_user.is_authenticated:
        return False
    return bool(current_user.is_superadmin) and not in_support_session()


def _check_csrf() -> None:
    """The app-wide CSRF check, with its own switches (tests may turn it off)."""
    cfg = current_app.config
    if cfg.get("WTF_CSRF_ENABLED", True) and cfg.get("WTF_CSRF_CHECK_DEFAULT", True):
        csrf.protect()

"""Step-up: sensitive actions need a recent sign-in.

Deleting an organization, transferring its ownership, purging one (platform),
impersonating someone, creating an API key with administrative scopes and
changing the security policy ask that this sign-in proved who the person is
within the last ``MAX_AGE`` (10 minutes): ``UserSession.authenticated_at``,
set at log-in (password and second factor, the password alone for an account
that has none, or a passkey) and by the step-up page
(``app.auth.views.step_up``), which asks the same again.

One helper for every such view: the decorator ``@step_up(back=...)`` or,
where only some requests of a view need it (an API key with administrative
scopes), ``refusal(back=...)`` inside the view. Without a recent sign-in the
request changes nothing, the refusal is audited (``auth.step_up_required``,
naming the action), and the person is sent to the step-up page on the same
host, which brings them back afterwards: to the same URL for a GET, to the
action's form (``back``) for a POST (a form cannot be re-posted for them).
The return address is a path on the same host, never anything else.

A support session (a super-admin acting as someone) can never step up: it
does not know the person's password or factors; its refusal says so (403).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta

from flask import render_template, request, url_for
from flask_login import current_user

from app import audit
from app.auth import sessions
from app.auth.models import UserSession
from app.extensions import db
from app.util import utcnow
from app.web.htmx import redirect_page

MAX_AGE = timedelta(minutes=10)
SUPPORT_REFUSAL = "A support session cannot confirm it is this person, so it cannot do this."


def is_recent(rec: UserSession | None) -> bool:
    """True when ``rec`` proved who its person is within ``MAX_AGE`` (never for a support session)."""
    if rec is None or rec.impersonator_id is not None or rec.authenticated_at is None:
        return False
    return utcnow() - rec.authenticated_at <= MAX_AGE


def mark_authenticated(rec: UserSession) -> None:
    """Record that ``rec``'s person just proved who they are (log-in, step-up)."""
    if rec.impersonator_id is None:
        rec.authenticated_at = utcnow()


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this host (no scheme, no host, no
    ``//`` or backslash tricks), else ``default``: the step-up page only
    ever sends back to its own host."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return default
    return target


def _return_path(back: str | Callable[[], str] | None) -> str:
    if request.method in ("GET", "HEAD") or back is None:
        path = request.full_path if request.query_string else request.path
    elif callable(back):
        path = back()
    else:
        path = url_for(back, **(request.view_args or {}))
    return local_path(path)


def refusal(back: str | Callable[[], str] | None = None, action: str | None = None):
    """``None`` when this sign-in is recent enough; otherwise the response
    that sends the person to step up (audited refusal, nothing changed).

    ``back`` is where a POST returns: an endpoint (given this request's view
    arguments) or a function returning a local path; ``action`` names the
    action in the audit event (default: the endpoint).
    """
    rec = sessions.current()
    if is_recent(rec):
        return None
    db.session.rollback()  # nothing the view may have started is kept
    name = action or request.endpoint
    support = rec is not None and rec.impersonator_id is not None
    audit.record(
        "auth.step_up_required",
        target=current_user._get_current_object(),
        metadata={"action": name, "support_session": support},
    )
    db.session.commit()
    if support:
        return render_template("auth/step_up_refused.html", message=SUPPORT_REFUSAL), 403
    return redirect_page(url_for("auth.step_up", next=_return_path(back)))


def step_up(back: str | Callable[[], str] | None = None, action: str | None = None):
    """Decorator: the view runs only for a sign-in within ``MAX_AGE``
    (see ``refusal``). Sits under the permission guard, so only people
    allowed the action are asked to step up for it."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            response = refusal(back, action)
            if response is not None:
                return response
            return view(*args, **kwargs)

        return wrapped

    return decorator

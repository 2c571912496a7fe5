"""Server-side sessions behind Flask-Login.

The signed, host-only cookie holds only the id of a ``user_sessions`` row and
the host it was issued for. The row is the authority: revoking it signs the
user out on every host the sign-in reached (apex, each organization, custom
domains). The host makes each cookie good on its own host only: the row is
shared by every host the hand-off reached, and a cookie copied from one of
them to another (the apex's onto an organization's host) must not sign in
there - each host's sign-in goes through the hand-off.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app, g, request, session, url_for
from sqlalchemy import update

from app.auth.models import UserSession
from app.extensions import db, login_manager
from app.util import parse_uuid, utcnow
from app.web import hosts
from app.web.hosts import normalise
from app.web.htmx import redirect_page

SESSION_KEY = "sid"
HOST_KEY = "host"  # the (normalised) host the cookie was issued for
# Refresh last_seen at most this often: a write per request would cost more
# than the whole page.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# A support session (a super-admin acting as a user) lasts at most this long.
SUPPORT_SESSION_MAX = timedelta(minutes=30)
# In the cookie of the host where a support session started (the apex): the
# super-admin's own session, which the cookie returns to once the support
# session has ended (stopped, expired or revoked).
RETURN_KEY = "support_return"


def client_ip() -> str | None:
    return request.remote_addr


def start(user, impersonator_id=None) -> UserSession:
    """Create a new server-side session for ``user`` and bind this host's cookie to it.

    A new id at every log-in (no session fixation): anything the cookie held
    before is dropped.
    """
    rec = UserSession(
        user_id=user.id,
        ip=client_ip(),
        user_agent=(request.user_agent.string or "")[:400],
        impersonator_id=impersonator_id,
    )
    db.session.add(rec)
    db.session.flush()
    bind_cookie(rec.id)
    g.user_session = rec
    return rec


def bind_cookie(session_id: uuid.UUID, cookie=None, host: str | None = None) -> None:
    """Point this host's cookie at ``session_id`` and bind it to this host,
    discarding the old cookie content.

    ``cookie`` and ``host`` default to this request's session and host (tests
    that write a cookie directly pass theirs, so they bind it the same way).
    """
    cookie = session if cookie is None else cookie
    cookie.clear()
    cookie[SESSION_KEY] = str(session_id)
    cookie[HOST_KEY] = normalise(request.host if host is None else host)
    cookie.permanent = True


def _cutoffs(now) -> tuple:
    """``(last seen, created)``: a live session was used and started no earlier."""
    cfg = current_app.config
    return now - cfg["SESSION_IDLE_TIMEOUT"], now - cfg["SESSION_ABSOLUTE_TIMEOUT"]


def is_valid(rec: UserSession | None) -> bool:
    """True when the session is live: it exists, is not revoked, and is inside
    both lifetimes (idle and absolute). ``live()`` is the same rule in SQL."""
    if rec is None or rec.revoked_at is not None or rec.user.disabled_at is not None:
        return False
    now = utcnow()
    seen_since, started_since = _cutoffs(now)
    if rec.impersonator_id is not None and rec.created_at < now - SUPPORT_SESSION_MAX:
        return False
    return rec.last_seen_at >= seen_since and rec.created_at >= started_since


def live() -> tuple:
    """WHERE conditions selecting live sessions: ``is_valid`` as SQL."""
    seen_since, started_since = _cutoffs(utcnow())
    return (
        UserSession.revoked_at.is_(None),
        UserSession.last_seen_at >= seen_since,
        UserSession.created_at >= started_since,
    )


def start_support(user, own: UserSession) -> UserSession:
    """Start a support session: this host's cookie acts as ``user`` for at
    most ``SUPPORT_SESSION_MAX``, then returns to ``own`` (the super-admin's
    session, left untouched). ``user``'s own sessions are untouched too."""
    rec = start(user, impersonator_id=own.user_id)
    session[RETURN_KEY] = str(own.id)
    return rec


def _returned(ended: UserSession | None) -> UserSession | None:
    """The super-admin's own session, when this cookie's support session has
    ended and the cookie remembers where it came from."""
    back_id = parse_uuid(session.get(RETURN_KEY))
    if ended is None or ended.impersonator_id is None or back_id is None:
        return None
    back = db.session.get(UserSession, back_id)
    if not is_valid(back) or back.user_id != ended.impersonator_id:
        return None
    bind_cookie(back.id)
    return back


def revoke(rec: UserSession) -> None:
    if rec.revoked_at is None:
        rec.revoked_at = utcnow()


def end_current() -> None:
    """Sign out: revoke the server-side session (every host) and clear this cookie."""
    rec = getattr(g, "user_session", None)
    if rec is not None:
        revoke(rec)
    session.clear()


def current() -> UserSession | None:
    return getattr(g, "user_session", None)


@login_manager.user_loader
def _unused_user_loader(_user_id):
    # We never store _user_id in the cookie; the request loader below is the path.
    return None


def cookie_session_id() -> uuid.UUID | None:
    """The ``user_sessions`` id this host's cookie points at (row not yet
    checked), or ``None`` when the cookie was issued for another host: the
    request is then anonymous, decided before any statement is sent."""
    if session.get(HOST_KEY) != normalise(request.host):
        return None
    return parse_uuid(session.get(SESSION_KEY))


@login_manager.request_loader
def load_from_cookie(_request):
    """Flask-Login hook: the user of this request's valid session, or ``None``."""
    sid = cookie_session_id()
    if sid is None:
        return None
    # An identity-map hit when the request resolver already read the row.
    rec = db.session.get(UserSession, sid)
    if not is_valid(rec):
        back = _returned(rec)
        if back is None:
            session.pop(SESSION_KEY, None)
            return None
        rec = back
    g.user_session = rec
    now = utcnow()
    if now - rec.last_seen_at > LAST_SEEN_RESOLUTION:
        db.session.execute(
            update(UserSession).where(UserSession.id == rec.id).values(last_seen_at=now),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()
    return rec.user


@login_manager.unauthorized_handler
def _unauthorized():
    """Anonymous visitor on a page that needs a sign-in: off to the apex log-in.

    An HTMX request gets 401 with ``HX-Redirect`` (a 302 would swap the log-in
    form into whatever the request targeted).
    """
    return redirect_page(hosts.apex_url(url_for("auth.login", next=request.url)), htmx_status=401)

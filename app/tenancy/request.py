"""The request layer of isolation: one hook decides the organization and the
member's permissions, once per request."""

from __future__ import annotations

import functools
import json
from datetime import timedelta

from flask import Response, abort, current_app, g, redirect, render_template, request, session
from flask_login import current_user, logout_user
from sqlalchemy import bindparam, column, func, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased, joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from app import audit
from app.auth import factors, sessions, throttle
from app.auth.models import UserSession
from app.extensions import db, login_manager
from app.scoping import record_applied_settings, reset_scope, set_scope
from app.tenancy import entitlements
from app.tenancy import policy as security_policy
from app.tenancy.hosts import load_organization, organization_criteria, organization_params, serves_custom_domain
from app.tenancy.models import Membership, Organization, SessionReach
from app.tenancy.services import retired_slug_target
from app.util import utcnow
from app.web import hosts
from app.web.access import access_of, has


def _view_access() -> dict:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return (access_of(view) if view else None) or {}


def resolve() -> object | None:
    """``before_request``: host → organization → user → membership → permissions.

    Guarantees, before any view runs on an organization host:
    * an unknown or deleted organization, or a signed-in non-member, gets 404
      (for a signed-in user, the same "no such organization or not a
      member" page in both cases, ``g.not_a_member``);
    * an anonymous visitor is treated the same whether the organization exists
      or not (sent to log in), so nothing tells an outsider it exists;
    * a suspended organization shows its members the suspension page only.
    """
    g.org = None
    g.membership = None
    g.permissions = frozenset()
    match = hosts.classify(request.host)
    g.host_kind = match.kind
    if request.endpoint == "static" or request.endpoint in {"ops.healthz", "ops.readyz"}:
        return None
    if match.kind == "unknown":
        abort(404)
    access = _view_access()
    if access.get("kind") == "api":
        return _enter_api(match)
    org = _load_organization_and_session(match) if match.kind == "org" else None
    if match.kind == "org":
        if org is None and match.slug and request.method in ("GET", "HEAD"):
            # An address its organization gave up less than 30 days ago,
            # for its members: one more statement, on this (otherwise 404)
            # path only.
            moved = retired_slug_target(match.slug, current_user.id if current_user.is_authenticated else None)
            if moved is not None:
                return redirect(hosts.org_url(moved, request.full_path.rstrip("?")), 301)
        if org is None:
            if current_user.is_authenticated:
                if _signed_in_outsiders_welcome(access):
                    g._scope_token = set_scope(None, current_user.id)
                    return None
                _not_a_member()
            # The sign-in hand-off runs on a host that names no organization
            # as on a real one: the browser then arrives signed in and sees
            # the same "not a member" page either way.
            if access.get("kind") == "public" and access.get("unknown_org_ok") and match.slug:
                g._scope_token = set_scope(None, None)
                return None
            if request.endpoint is None or access.get("outsiders"):
                abort(404)
            return login_manager.unauthorized()
        if org is not None and match.custom_domain and not entitlements.entitled(org, "custom_domains"):
            # A plan without custom domains: the organization lives on its
            # own subdomain again (GET/HEAD follow; anything else is 404).
            if request.method in ("GET", "HEAD"):
                return redirect(f"{hosts.scheme()}://{org.slug}.{hosts.apex()}{request.full_path.rstrip('?')}", 302)
            abort(404)
        g.org = org
    user_id = current_user.id if current_user.is_authenticated else None
    g._scope_token = set_scope(org.id if org else None, user_id)
    if org is None:
        return None
    if user_id is not None:
        # A signed-in user on an organization's host came with a session
        # cookie, so the entry statement ran and read the membership.
        _, membership = g.pop("_prefetched", (None, None))
        g.membership = membership if membership is not None and membership.user_id == user_id else None
        if g.membership is not None:
            set_committed_value(g.membership, "user", current_user._get_current_object())
    if g.membership is None:
        if access.get("kind") == "public" and access.get("outsiders"):
            return None
        if user_id is not None and _signed_in_outsiders_welcome(access):
            return None
        # An anonymous visitor is sent to log in exactly as on a host whose
        # organization does not exist (above), so nothing tells them apart.
        if user_id is None and request.endpoint is not None:
            return login_manager.unauthorized()
        # The 404 page must not name the organization (its <title> did):
        # to a non-member it does not exist.
        g.org = None
        _not_a_member()
    g.permissions = g.membership.permissions
    if org.is_suspended and not access.get("suspended_ok"):
        return render_template("tenancy/suspended.html"), 403
    refused = _enforce_security_policy(org, access)
    if refused is not None:
        return refused
    # Before the last-seen stamp: its commit (every few minutes) would expire
    # the session row, and reading its id again would cost a statement.
    _record_reach(org)
    _touch_membership(g.membership)
    return None


def _enter_api(match: hosts.HostMatch):
    """An API operation (``app.api``): the organization from the host, and
    nobody signed in, whatever cookies came along: a browser session never
    authenticates the API (no cookie is read, ``current_user`` stays
    anonymous). The API's own hook then authenticates the key, which must
    belong to this organization; on the apex or an unknown host ``g.org``
    stays ``None`` and every key is refused (401).
    """
    g._login_user = login_manager.anonymous_user()
    org = load_organization(match) if match.kind == "org" else None
    g.org = org
    g._scope_token = set_scope(org.id if org else None, None)
    if org is not None:
        return _api_outside_allowlist(org)
    return None


def _api_outside_allowlist(org: Organization):
    """The IP allowlist holds for programs too: an API request from outside
    it is a 403 problem+json naming the policy (before the key is even
    looked at), while the plan includes ``ip_allowlist``; ``None`` otherwise."""
    if not _outside_allowlist(org, security_policy.for_org(org)):
        return None
    problem = {
        "type": "/api/v1/docs#problem-ip-not-allowed",
        "title": "Address not allowed",
        "status": 403,
        "detail": f"{org.name}'s security policy accepts requests only from its IP allowlist; "
        f"this one came from {request.remote_addr}.",
    }
    return Response(json.dumps(problem), 403, content_type="application/problem+json")


def _outside_allowlist(org: Organization, policy: security_policy.SecurityPolicy) -> bool:
    """True when this request comes from outside the organization's IP
    allowlist while its plan includes ``ip_allowlist``: the one rule, for the
    pages and the API alike."""
    return (
        bool(policy.ip_allowlist)
        and not policy.allows_ip(request.remote_addr)
        and entitlements.entitled(org, "ip_allowlist")
    )


def _enforce_security_policy(org: Organization, access: dict):
    """The organization's security policy (``app.tenancy.policy``), for its members' every request.

    * a session older than the organization's idle or absolute lifetime is
      revoked and the member sent to sign in again (the row is shared by
      every host the sign-in reached, so revoking it is the only way the
      hand-off cannot bring the same session back);
    * a member without a second factor, in an organization that requires
      two-factor authentication, gets in with a banner naming the deadline
      during the grace period, then the 403 page that sends them to enrol;
    * a request from outside the IP allowlist (the client address as
      ``TRUSTED_PROXIES`` lets ProxyFix read it) gets the 403 page naming
      the policy, while the plan includes ``ip_allowlist``; signing out
      stays possible.
    Reads only the organization row and session the entry statement
    brought: no statement unless a session is revoked, 2FA is required, or
    a refusal is audited (``org.access_refused``).
    """
    policy = security_policy.for_org(org)
    rec = g.get("user_session")
    times = g.pop("_session_times", None)
    if rec is not None and times is not None and times[0] == rec.id and (policy.idle_minutes or policy.absolute_hours):
        now = utcnow()
        _, last_seen, created = times
        if now - last_seen > policy.idle_timeout() or now - created > policy.absolute_timeout():
            sessions.revoke(rec)
            db.session.commit()
            logout_user()
            session.clear()
            g.org = None
            return login_manager.unauthorized()
    if not access.get("outsiders") and _outside_allowlist(org, policy):
        _audit_refusal(org, "ip_allowlist", {"address": request.remote_addr})
        # The page shows nothing of the organization but its name: no navigation.
        g.membership, g.permissions = None, frozenset()
        return render_template("tenancy/ip_blocked.html", address=request.remote_addr), 403
    if (
        policy.require_2fa
        and not access.get("outsiders")
        and rec is not None
        and rec.impersonator_id is None  # a support session is the super-admin's, who has 2FA
        and not factors.has_second_factor(current_user)
    ):
        # One statement, only in organizations that require 2FA.
        deadline = policy.two_factor_deadline()
        if deadline is not None and utcnow() < deadline:
            g.two_factor_deadline = deadline  # the grace period: in, with a banner (base.html)
            return None
        _audit_refusal(org, "require_2fa", {"deadline": deadline.isoformat() if deadline else None})
        # The page sends the member to enrol on the apex; signing out stays possible.
        g.membership, g.permissions = None, frozenset()
        return render_template("tenancy/two_factor_required.html", deadline=deadline), 403
    return None


def _audit_refusal(org: Organization, rule: str, metadata: dict) -> None:
    """Record ``org.access_refused`` (in this organization's log) when its
    security policy turns a member away: once per session, rule and hour
    (``POLICY_REFUSALS_AUDITED``), not once per page they try, so a member
    reloading cannot flood the log."""
    rec = g.get("user_session")
    key = f"{rec.id if rec is not None else request.remote_addr}:{org.id}:{rule}"
    if not throttle.hit("POLICY_REFUSALS_AUDITED", key):
        return
    audit.record(
        "org.access_refused",
        target=current_user._get_current_object(),
        metadata={"rule": rule, "path": request.path[:200], **metadata},
    )
    db.session.commit()


def _signed_in_outsiders_welcome(access: dict) -> bool:
    """True for a view any signed-in user may reach on any organization
    host, member or not (``login_only(outsiders_on_org_host=True)``: log out)."""
    return access.get("kind") == "login" and bool(access.get("outsiders"))


def _not_a_member():
    """404 for a signed-in user on an organization host that has no
    organization they belong to. The error page then says, in the same
    words whether the organization exists or not, that there is no such
    organization or they are not a member (``g.not_a_member``)."""
    g.not_a_member = True
    abort(404)


def _load_organization_and_session(match: hosts.HostMatch) -> Organization | None:
    """The live organization this host names, or ``None``.

    With a session cookie the same round trip also reads the session row and
    its user (into the identity map, where Flask-Login's loader finds them
    without a query), and calls ``enter_organization`` (migration 0005),
    which makes the organization and the session's user the transaction's
    RLS settings and then, under those settings, reads the user's membership.
    Python still decides: ``resolve`` uses the membership only for the user
    Flask-Login accepted, and ``set_scope`` re-sends the settings when they
    differ (an expired session, say). Three round trips become one: on a
    page that costs a handful, that is a fifth of its time.
    """
    sid = sessions.cookie_session_id()
    if sid is None:
        return load_organization(match)
    params = {"sid": sid, **organization_params(match)}
    row = db.session.execute(_entry_statement(bool(match.slug)), params).first()
    if row is None:
        return None
    org, user_session, membership = row
    record_applied_settings(db.session(), org.id, user_session.user_id if user_session else None)
    # The identity map holds objects weakly: keep the rows alive until
    # Flask-Login's loader and resolve() have used them.
    g._prefetched = (user_session, membership)
    if user_session is not None:
        # As read, before Flask-Login's loader refreshes "last seen": the
        # organization's idle lifetime is measured from the previous request.
        g._session_times = (user_session.id, user_session.last_seen_at, user_session.created_at)
    return org


@functools.cache
def _entry_statement(by_slug: bool):
    """Built once per process: building the statement cost as much as
    running it; bound parameters carry the request's values. Rows are
    ``(Organization, UserSession | None, Membership | None)``."""
    entered = (
        func.enter_organization(Organization.id, UserSession.user_id)
        .table_valued(*[column(c.name, c.type) for c in Membership.__table__.columns])
        .lateral("entered")
    )
    membership = aliased(Membership, entered, adapt_on_names=True)
    return (
        select(Organization, UserSession, membership)
        .select_from(Organization)
        .outerjoin(UserSession, UserSession.id == bindparam("sid"))
        .outerjoin(entered, true())
        .where(*organization_criteria(by_slug))
        # The user arrives with the session; a custom role loads on first
        # use; the plan (entitlements, asked on most pages) comes along.
        .options(lazyload(membership.user), lazyload(membership.custom_role), joinedload(Organization.plan))
        # The ORM's organization filter needs a current organization, which
        # this statement is finding: the function filters by it instead, and
        # RLS applies inside it as everywhere.
        .execution_options(all_organizations="request entry: enter_organization() filters by organization")
        .limit(1)
    )


# Refresh a member's "last seen" at most this often: a write per request
# would cost more than the page.
MEMBER_LAST_SEEN_RESOLUTION = timedelta(minutes=5)


def _touch_membership(m: Membership) -> None:
    """Record that the member used the organization (the members page shows it).

    Support sessions (a super-admin acting as the user) do not count.
    """
    rec = g.get("user_session")
    if rec is not None and rec.impersonator_id is not None:
        return
    now = utcnow()
    if m.last_seen_at is not None and now - m.last_seen_at < MEMBER_LAST_SEEN_RESOLUTION:
        return
    db.session.execute(
        update(Membership)
        .where(Membership.user_id == m.user_id)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# In this host's cookie: the id of the session already recorded as having
# reached this organization, so that only a session's first request here
# writes (a statement per request would cost more than the page).
REACH_KEY = "reached"


def _record_reach(org: Organization) -> None:
    """Record that this sign-in reached ``org``'s host (``SessionReach``),
    once per session and host: the organization's admins see and sign out
    only such sessions of their members. Support sessions are not recorded
    (they are the super-admin's, shown on the platform)."""
    rec = g.get("user_session")
    if rec is None or rec.impersonator_id is not None or session.get(REACH_KEY) == str(rec.id):
        return
    db.session.execute(
        pg_insert(SessionReach)
        .values(organization_id=org.id, session_id=rec.id, user_id=rec.user_id)
        .on_conflict_do_nothing()
    )
    db.session.commit()
    session[REACH_KEY] = str(rec.id)


def teardown(_exc=None) -> None:
    token = g.pop("_scope_token", None)
    if token is not None:
        try:
            # Deferred: the session is closed right after (teardown_appcontext);
            # were it to run another statement, the settings follow first.
            reset_scope(token, push=False)
        except ValueError:
            pass  # token from another context (streamed response); scope dies with it


def _entitled(feature: str) -> bool:
    """True when this request's organization may use ``feature`` (no organization: False)."""
    org = g.get("org")
    return org is not None and entitlements.entitled(org, feature)


def init_app(app) -> None:
    hosts.register_custom_domain_lookup(app, serves_custom_domain)
    app.before_request(resolve)
    app.teardown_request(teardown)

    @app.context_processor
    def _tenancy_context():
        return {
            "current_org": g.get("org"),
            "current_membership": g.get("membership"),
            "can": has,
            # Templates hide what the plan does not include; the server refuses too.
            "entitled": _entitled,
            "org_url": hosts.org_url,
            "apex_url": hosts.apex_url,
            # Navigation shows an area only once its blueprint is registered.
            "nav_endpoints": app.view_functions,
            # The end of the organization's 2FA grace period, for a member without a factor (the banner).
            "two_factor_deadline": g.get("two_factor_deadline"),
        }

"""API keys, the pages: list, create (the key shown once), revoke, rotate.

``apikeys:view`` sees every key (never a secret), ``apikeys:manage``
creates, revokes and rotates any. Other members may create keys (with
permissions they hold) while the organization's security policy allows it
(``members_may_create_api_keys``, ``app.tenancy.policy``), and then see,
revoke and rotate their own keys. A key without an expiry is offered only
while the policy allows it (``api_keys_may_never_expire``). A
support session (a super-admin acting as the person) never creates or
rotates a key. A key id that is malformed or another organization's is 404
either way.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import login_required

from app import concurrency
from app.api import keys, usage
from app.api.forms import ConfirmForm, NewKeyForm, RotateForm
from app.auth import stepup
from app.errors import UserError
from app.extensions import db
from app.permissions import ADMINISTRATIVE, groups
from app.rbac.decorators import require_any
from app.tenancy import policy
from app.tenancy.entitlements import entitled
from app.util import utcnow
from app.web import nav
from app.web.forms import with_error

bp = Blueprint("apikeys", __name__, url_prefix="/api-keys")
nav.link(bp, "index", "API keys", section="admin", order=45)


@bp.before_request
def _entitled():
    """On a plan without the API, the pages say so and offer nothing (403)."""
    if g.get("org") is not None and not entitled(g.org, "api"):
        return render_template("api/not_entitled.html"), 403
    return None


def _impersonated() -> bool:
    """True in a support session (``UserSession.impersonator_id``)."""
    rec = g.get("user_session")
    return rec is not None and rec.impersonator_id is not None


def _members_may_create() -> bool:
    return policy.for_org(g.org).members_may_create_api_keys


def _never_allowed() -> bool:
    return policy.for_org(g.org).api_keys_may_never_expire


def _key_form(formdata=...) -> NewKeyForm:
    """The new-key form, offering "never" while the policy allows keys without an expiry."""
    form = NewKeyForm() if formdata is ... else NewKeyForm(formdata=formdata)
    if _never_allowed():
        form.expires_in_days.choices = [*form.expires_in_days.choices, (keys.NEVER, "Never")]
    return form


def _may_act_on(key) -> bool:
    """``apikeys:manage`` acts on every key; the member who made a key may
    revoke and rotate it while the policy lets members create keys (their
    own keys are on their list; another's key is 403)."""
    if "apikeys:manage" in g.permissions:
        return True
    return key.created_by == g.membership.user_id and _members_may_create()


def _refusal() -> str | None:
    """Why the current member may not create a key here, or ``None``."""
    return keys.may_create(g.membership, _impersonated(), _members_may_create())


def _key_or_404(key_id: str):
    return keys.find_key(key_id) or abort(404)


def _new_page(form, status: int = 200):
    return render_template(
        "api/new.html",
        form=form,
        groups=groups(only=g.membership.permissions),
        refusal=_refusal(),
    ), status


@bp.get("/")
@login_required
@require_any("apikeys:view", "apikeys:manage", "org:view")
def index():
    """The keys: prefix, scopes, creator, created, expires, last used (time,
    IP), requests in the last 7 days. Every key with ``apikeys:view``; a
    member's own keys while the policy lets members create keys; else 403."""
    sees_all = bool({"apikeys:view", "apikeys:manage"} & g.permissions)
    if not sees_all and not _members_may_create():
        abort(403)
    listed = keys.list_keys() if sees_all else keys.list_keys(created_by=g.membership.user_id)
    return render_template(
        "api/index.html",
        may_create=_refusal() is None,
        keys=listed,
        revoke_form=ConfirmForm(),
        # Who acts on which key (``_may_act_on``): every key, or one's own.
        manage="apikeys:manage" in g.permissions,
        own_keys=_members_may_create(),
        me=g.membership.user_id,
        now=utcnow(),
        week=usage.requests_since(7),
    )


@bp.get("/new")
@login_required
@require_any("apikeys:manage", "org:view")
def new():
    """The new-key form: a name, permissions among the creator's own, an
    expiry. 403 with the reason for a member the policy does not let create keys."""
    if _refusal() is not None:
        return _new_page(_key_form(formdata=None), 403)
    return _new_page(_key_form(formdata=None))


@bp.post("/")
@login_required
@require_any("apikeys:manage", "org:view")
def create():
    """Create a key and show it once (201). Bad input: 422 beside the field,
    nothing saved. A second submit of the same form shows the list, not a
    second key."""
    form = _key_form()
    if not form.validate():
        return _new_page(form, 422)
    if ADMINISTRATIVE & set(request.form.getlist("scopes")):
        # A key with administrative scopes outlives this session: a recent sign-in first.
        refused = stepup.refusal(back="apikeys.new", action="apikeys.create (administrative scopes)")
        if refused is not None:
            return refused
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("apikeys.index"))
    try:
        key, full = keys.create_key(
            form.name.data,
            request.form.getlist("scopes"),
            form.expires_in_days.data,
            g.membership,
            impersonated=_impersonated(),
            members_may_create=_members_may_create(),
            never_allowed=_never_allowed(),
        )
    except UserError as e:
        db.session.rollback()
        with_error(form, e)
        return _new_page(form, 403 if e.status == 403 else 422)
    concurrency.settle_submit_key(form.submit_key.data, url_for("apikeys.index"))
    db.session.commit()
    return render_template("api/created.html", key=key, full=full), 201


@bp.post("/<key_id>/revoke")
@login_required
@require_any("apikeys:manage", "org:view")
def revoke(key_id: str):
    """Revoke a key: its next request is 401. Any key with
    ``apikeys:manage``; else only one's own (``_may_act_on``), 403 otherwise."""
    key = _key_or_404(key_id)
    if not _may_act_on(key):
        abort(403)
    if keys.revoke_key(key):
        db.session.commit()
        flash(f"Key “{key.name}” ({key.prefix}) revoked.", "success")
    return redirect(url_for("apikeys.index"))


@bp.route("/<key_id>/rotate", methods=["GET", "POST"])
@login_required
@require_any("apikeys:manage", "org:view")
def rotate(key_id: str):
    """GET: choose how long the old key keeps working. POST: a successor
    with the same name and scopes, shown once. Any key with
    ``apikeys:manage``; else only one's own (``_may_act_on``), 403 otherwise."""
    key = _key_or_404(key_id)
    if not _may_act_on(key):
        abort(403)
    form = RotateForm() if request.method == "POST" else RotateForm(formdata=None)
    if request.method == "GET" or not form.validate():
        return render_template("api/rotate.html", key=key, form=form), (200 if request.method == "GET" else 422)
    try:
        new_key, full = keys.rotate_key(
            key,
            form.overlap_hours.data,
            g.membership,
            impersonated=_impersonated(),
            members_may_create=_members_may_create(),
            never_allowed=_never_allowed(),
        )
    except UserError as e:
        db.session.rollback()
        key = _key_or_404(key_id)
        return render_template("api/rotate.html", key=key, form=with_error(form, e)), (403 if e.status == 403 else 422)
    db.session.commit()
    return render_template("api/created.html", key=new_key, full=full, rotated=key), 201

"""Settings → Single sign-on: the self-serve portal, the setup-link portal for
an IT contact without an account, and the sign-in flow on the apex.

* ``sso`` (``/settings/sso`` on the organization's host): every view needs
  ``settings:sso`` and the plan's ``sso`` feature.
* ``sso_setup`` (``/sso-setup`` on the organization's host): the same pages
  for someone holding a live setup link (opened once in this browser, 24
  hours, revocable); they configure and test, an admin enables.
* ``sso_flow`` (``/sso`` on the apex): start a sign-in or a connection test,
  and the providers' callback. **One redirect URI for every organization**
  (``/sso/callback/oidc`` on the apex): the sign-in state, kept in the
  apex's signed cookie, names the organization and connection; sessions
  start on the apex and reach the organization's host through the usual
  hand-off, exactly as a password sign-in does. A customer copies one
  stable URI, and no organization host needs its own callback.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app import audit, hooks
from app.auth import throttle
from app.auth.sessions import client_ip
from app.auth.views import go_to
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.rbac import group_role_editor
from app.rbac.decorators import require, requires_feature
from app.scoping import all_organizations, tenant_context
from app.sso import oidc as _oidc  # noqa: F401  (registers the OpenID Connect protocol)
from app.sso import registry, services
from app.sso import saml as _saml  # noqa: F401  (registers SAML 2.0)
from app.sso.forms import ActionForm, NewConnectionForm, SetupLinkForm, VersionForm, connection_form, upload_fields
from app.sso.models import PROVIDERS
from app.tenancy.hosts import load_organization
from app.util import parse_uuid
from app.web import hosts, nav
from app.web.access import public
from app.web.forms import with_error
from app.web.htmx import render
from app.web.input_guard import accepts_files_in

FEATURE = services.FEATURE

bp = Blueprint("sso", __name__, url_prefix="/settings/sso")
setup_bp = Blueprint("sso_setup", __name__, url_prefix="/sso-setup")
flow_bp = Blueprint("sso_flow", __name__, url_prefix="/sso")
nav.entity_page(bp, "sso_connection", "show", lambda connection_id: {"connection_id": connection_id})

TEST_SALT = "tenantry.sso-test"
TEST_TICKET_SECONDS = 600
PENDING_KEY = "sso_pending"
PENDING_MAX = 5
PENDING_SECONDS = 600
SETUP_KEY = "sso_setup_link"
# The settings form's file inputs (SAML: the IdP's metadata file); a file
# anywhere else is refused by the input guard.
UPLOAD_FIELDS = tuple(sorted({n for key in registry.PROTOCOLS for n in upload_fields(key)}))


def _unavailable() -> str:
    return render_template("settings/unavailable.html", title="Single sign-on", feature=FEATURE)


# --------------------------------------------------------------------------- the portal (shared by both doors)
def _portal() -> str:
    """Which door this request came through: ``sso`` (a member) or ``sso_setup`` (a setup link)."""
    return "sso_setup" if request.blueprint == "sso_setup" else "sso"


def _conn_or_404(connection_id):
    return services.find_connection(connection_id) or abort(404)


def _index(form=None, link_form=None, status: int = 200, new_link: str | None = None):
    portal = _portal()
    return render(
        "sso/index.html",
        settings_current="sso.index",
        portal=portal,
        connections=services.list_connections(),
        form=form or NewConnectionForm(formdata=None).with_protocols(),
        link_form=link_form or SetupLinkForm(formdata=None),
        links=services.list_setup_links() if portal == "sso" else [],
        new_link=new_link,
        revoke=ActionForm(formdata=None),
        status=status,
    )


def _mapping_editor(conn) -> group_role_editor.Editor:
    """The group → role editor on a connection's page (the admin portal):
    mappings for SSO sign-ins, and for SCIM too when the plan has it."""
    scim = services.entitlements.entitled(g.org, "scim")
    return group_role_editor.Editor(
        listed=("sso", "any"),
        offered=("sso", "any") if scim else ("sso",),
        page=lambda status=200, **ctx: _show(_conn_or_404(conn.id), status=status, **ctx),
        back=lambda: url_for("sso.show", connection_id=conn.id) + "#group-mappings",
        create_url=lambda: url_for("sso.create_mapping", connection_id=conn.id),
        update_url=lambda m: url_for("sso.update_mapping", connection_id=conn.id, mapping_id=m.id),
        delete_url=lambda m: url_for("sso.delete_mapping", connection_id=conn.id, mapping_id=m.id),
    )


def _show(conn, form=None, status: int = 200, toggle=None, group_mappings=None):
    proto = registry.get(conn.protocol)
    if group_mappings is None and _portal() == "sso":
        group_mappings = _mapping_editor(conn).context()["group_mappings"]
    if form is None:
        data = {"name": conn.name, **(conn.config or {})}
        form = connection_form(conn.protocol)(formdata=None, data=data, version=conn.version)
    return render(
        "sso/show.html",
        settings_current="sso.index",
        portal=_portal(),
        conn=conn,
        proto=proto,
        form=form,
        fields=[form[f.name] for f in proto.config_fields],
        our_values=proto.our_values(conn),
        not_ready=proto.ready(conn),
        toggle=toggle or VersionForm(formdata=None, version=conn.version),
        test_form=ActionForm(formdata=None),
        providers=PROVIDERS,
        # The one group → role editor (app.rbac.group_role_editor), for an
        # admin; an IT contact on a setup link holds no role to give.
        group_mappings=group_mappings,
        status=status,
    )


def _create():
    form = NewConnectionForm().with_protocols()
    if not form.validate():
        return _index(form, status=422)
    from app import concurrency

    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for(f"{_portal()}.index"))
    try:
        conn = services.create_connection(form.protocol.data, form.provider.data, form.name.data)
    except UserError as e:
        db.session.rollback()
        return _index(with_error(form, e, "name"), status=e.status)
    target = url_for(f"{_portal()}.show", connection_id=conn.id)
    concurrency.settle_submit_key(form.submit_key.data, target)
    db.session.commit()
    flash(f"{conn.name} created. Follow the steps below, then test it.", "success")
    return redirect(target)


def _update(connection_id):
    conn = _conn_or_404(connection_id)
    form = connection_form(conn.protocol)()
    if not form.validate():
        return _show(conn, form, 422)
    data = {name: field.data for name, field in form._fields.items()}
    for f in registry.get(conn.protocol).config_fields:
        if f.upload:
            # The file's bytes, read up to one past the protocol's limit (so
            # "too large" is told without reading all of a huge upload).
            upload = data.get(f.name)
            body = upload.stream.read(f.upload_max + 1) if upload is not None and hasattr(upload, "stream") else b""
            data[f.name] = body or None
    try:
        changed = services.update_connection(conn, data, form.version.data)
    except StaleEdit as e:
        db.session.rollback()
        return _show(_conn_or_404(connection_id), with_error(form, e), e.status)
    except UserError as e:
        db.session.rollback()
        return _show(_conn_or_404(connection_id), with_error(form, e), e.status)
    if changed:
        db.session.commit()
        flash("Saved. Test the connection to check the settings.", "success")
    return redirect(url_for(f"{_portal()}.show", connection_id=conn.id))


def _test(connection_id):
    """Start a connection test: to the apex, which sends the browser to the provider."""
    conn = _conn_or_404(connection_id)
    if not ActionForm().validate():
        return _show(conn, status=422)
    problem = registry.get(conn.protocol).ready(conn)
    if problem:
        return _show(
            conn,
            with_error(
                connection_form(conn.protocol)(
                    formdata=None, data={"name": conn.name, **conn.config}, version=conn.version
                ),
                UserError(problem),
            ),
            422,
        )
    back = hosts.org_url(g.org, url_for(f"{_portal()}.show", connection_id=conn.id))
    ticket = _serializer().dumps({"o": str(g.org.id), "c": str(conn.id), "r": back})
    target = hosts.apex_url(url_for("sso_flow.test") + "?" + urlencode({"t": ticket}))
    # A page that moves on by itself, not a redirect: the browser holds a
    # form's redirects to our own hosts (CSP form-action), and the test goes
    # on to the identity provider.
    return render_template("auth/continue.html", target=target, host="your identity provider")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TEST_SALT)


# --------------------------------------------------------------------------- the admin portal
@bp.get("/")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def index():
    """The organization's SSO connections with their state, a form to add one,
    and the setup links issued to IT contacts."""
    return _index()


@bp.post("/")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def create():
    """Add a draft connection (protocol, provider, name): 422 beside the field
    on bad input; a second submit lands on the first's connection."""
    return _create()


@bp.get("/<connection_id>")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def show(connection_id: str):
    """One connection: the provider's step-by-step guide, our values to copy,
    its settings, the last test's result, enable / disable."""
    return _show(_conn_or_404(connection_id))


@bp.post("/<connection_id>")
@accepts_files_in(*UPLOAD_FIELDS)
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def update(connection_id: str):
    """Save the connection's settings: 422 beside the field (unreachable issuer,
    missing client id, a metadata file that is not SAML metadata or too
    large…), 409 when someone saved in between. A file is accepted in the
    protocol's upload field only (SAML's metadata file)."""
    return _update(connection_id)


@bp.post("/<connection_id>/test")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def test(connection_id: str):
    """Sign in once at the provider to test the connection (nobody is signed
    in here); the result shows on the connection's page."""
    return _test(connection_id)


@bp.post("/<connection_id>/enable")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def enable(connection_id: str):
    """Turn a tested connection on (one per organization): 422 before a
    successful test or while another is on, 409 on a stale page."""
    return _toggle(connection_id, services.enable_connection, "{} is on: your people can sign in with it.")


def _toggle(connection_id: str, change, done: str):
    """Turn a connection on or off with ``change(conn, version)``: 422 for a
    bad form or a refusal beside the switch, 409 on a stale page; then back
    to the connection with ``done`` (its name filled in)."""
    conn = _conn_or_404(connection_id)
    form = VersionForm()
    if not form.validate():
        return _show(conn, status=422, toggle=form)
    try:
        change(conn, form.version.data)
    except UserError as e:
        db.session.rollback()
        return _show(_conn_or_404(connection_id), status=e.status, toggle=with_error(form, e))
    db.session.commit()
    flash(done.format(conn.name), "success")
    return redirect(url_for("sso.show", connection_id=conn.id))


@bp.post("/<connection_id>/disable")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def disable(connection_id: str):
    """Turn a connection off: nobody signs in through it any more."""
    return _toggle(connection_id, services.disable_connection, "{} is off.")


@bp.post("/<connection_id>/mappings")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def create_mapping(connection_id: str):
    """Map an identity-provider group to a role for SSO sign-ins (never
    Owner; only a role the admin could give): 422 beside the field, nothing
    saved. The mappings are the organization's, shown on each connection."""
    return _mapping_editor(_conn_or_404(connection_id)).create()


@bp.post("/<connection_id>/mappings/<mapping_id>")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def update_mapping(connection_id: str, mapping_id: str):
    """Change the role a mapped group gives: 422 beside it, 409 on a stale page."""
    return _mapping_editor(_conn_or_404(connection_id)).update(mapping_id)


@bp.post("/<connection_id>/mappings/<mapping_id>/delete")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def delete_mapping(connection_id: str, mapping_id: str):
    """Remove a mapping (members keep their role until their next sign-in with other groups)."""
    return _mapping_editor(_conn_or_404(connection_id)).delete(mapping_id)


@bp.post("/links")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def create_link():
    """Issue a setup link for an IT contact (24 hours, opened once). The link
    is shown on this answer only (never stored in clear, never flashed)."""
    form = SetupLinkForm()
    if not form.validate():
        return _index(link_form=form, status=422)
    try:
        _link, token = services.issue_setup_link(form.label.data, current_user)
    except UserError as e:
        db.session.rollback()
        return _index(link_form=with_error(form, e, "label"), status=e.status)
    db.session.commit()
    url = hosts.org_url(g.org, url_for("sso_setup.open_link", token=token))
    return _index(new_link=url)


@bp.post("/links/<link_id>/revoke")
@login_required
@require("settings:sso")
@requires_feature(FEATURE, page=_unavailable)
def revoke_link(link_id: str):
    """Revoke a setup link: the browser that opened it loses access at once."""
    link = services.find_setup_link(link_id) or abort(404)
    if not ActionForm().validate():
        return _index(status=422)
    if services.revoke_setup_link(link):
        db.session.commit()
        flash(f"The setup link for {link.label} is revoked.", "success")
    return redirect(url_for("sso.index"))


# --------------------------------------------------------------------------- the setup-link portal
def _setup_link_or_410(landing: bool = False):
    """The live setup link this browser opened, with the audit actor named
    after it. Without one: the portal's landing page says the link no
    longer works (410); its other pages do not exist (404, as for an id
    that does not exist: nothing is told about any connection)."""
    if g.get("org") is None:
        abort(404)
    link = services.find_setup_link(session.get(SETUP_KEY))
    if not services.link_is_live(link) or link.used_at is None:
        session.pop(SETUP_KEY, None)
        abort(_gone() if landing else 404)
    g.audit_actor = audit.Actor("anonymous", None, f"IT contact (setup link for {link.label})")
    g.setup_link = link
    if not services.entitlements.entitled(g.org, FEATURE):
        abort(403)
    return link


def _gone():
    from flask import make_response

    return make_response(render_template("sso/setup_invalid.html"), 410)


@setup_bp.get("/open/<token>")
@public(outsiders_on_org_host=True)
def open_link(token: str):
    """Open a setup link: the first opening binds it to this browser (the link
    is used up); anything else — expired, revoked, used — is the 410 page."""
    if g.get("org") is None:
        abort(404)
    link = services.open_setup_link(token)
    if link is None:
        db.session.rollback()
        return _gone()
    db.session.commit()
    session[SETUP_KEY] = str(link.id)
    return redirect(url_for("sso_setup.index"))


@setup_bp.get("/", endpoint="index")
@public(outsiders_on_org_host=True)
def index_setup():
    """The portal for the setup link's holder (no links section)."""
    _setup_link_or_410(landing=True)
    return _index()


@setup_bp.post("/", endpoint="create")
@public(outsiders_on_org_host=True)
def create_setup():
    """Add a draft connection, as ``sso.create``."""
    _setup_link_or_410()
    return _create()


@setup_bp.get("/<connection_id>", endpoint="show")
@public(outsiders_on_org_host=True)
def show_setup(connection_id: str):
    """A connection's guide and settings, as ``sso.show`` (no enable/disable)."""
    _setup_link_or_410()
    return _show(_conn_or_404(connection_id))


@setup_bp.post("/<connection_id>", endpoint="update")
@accepts_files_in(*UPLOAD_FIELDS)
@public(outsiders_on_org_host=True)
def update_setup(connection_id: str):
    """Save settings, as ``sso.update``."""
    _setup_link_or_410()
    return _update(connection_id)


@setup_bp.post("/<connection_id>/test", endpoint="test")
@public(outsiders_on_org_host=True)
def test_setup(connection_id: str):
    """Test the connection, as ``sso.test``."""
    _setup_link_or_410()
    return _test(connection_id)


# --------------------------------------------------------------------------- the flow (apex)
def _apex_only():
    if g.get("host_kind") != "apex":
        abort(404)


def _begin(org, conn, mode: str, next_url: str = "", back: str = "", login_hint: str = ""):
    """Send the browser to ``conn``'s provider, remembering the flow in the
    apex's signed cookie (a few at a time, ten minutes each). Over
    ``SSO_STARTS_PER_IP`` starts from this address (either protocol, sign-in
    or test): 429 with the wait and ``Retry-After``, nothing written."""
    ip = client_ip() or "-"
    if not throttle.hit("SSO_STARTS_PER_IP", ip):
        wait = throttle.retry_after("SSO_STARTS_PER_IP", ip)
        resp = make_response(
            render_template("sso/refused.html", reason=throttle.wait_message(wait, "single sign-on attempts")), 429
        )
        resp.headers["Retry-After"] = str(wait)
        return resp
    proto = registry.get(conn.protocol)
    pending = {"o": str(org.id), "c": str(conn.id), "m": mode, "n": next_url, "r": back, "at": int(time.time())}
    if login_hint:
        pending["login_hint"] = login_hint
    try:
        url = proto.start_login(conn, pending)
    except registry.SsoRefused as e:
        if mode == "test":
            with tenant_context(org.id):
                services.record_test(conn, None, e.reason)
            db.session.commit()
            return redirect(back)
        services.refuse(org, conn, e.reason)
        db.session.commit()
        return render_template("sso/refused.html", reason=e.reason), 502
    # What a protocol wrote to check the answer later (SAML: the
    # AuthnRequest's id, bound to this browser) must outlive this request.
    db.session.commit()
    now = int(time.time())
    kept = [p for p in session.get(PENDING_KEY, []) if now - int(p.get("at", 0)) < PENDING_SECONDS]
    session[PENDING_KEY] = [*kept[-(PENDING_MAX - 1) :], pending]
    return redirect(url)


@flow_bp.get("/start/<org_id>")
@public
def start(org_id: str):
    """Begin a sign-in at the organization's enabled connection (the "Sign in
    with SSO" button and home-realm discovery lead here). No enabled
    connection, or a plan without SSO: 404."""
    _apex_only()
    org = services.organization_for_flow(parse_uuid(org_id))
    realm = services.realm_for_org(org) if org is not None else None
    found = services.load_for_flow(org.id, realm.connection_id) if realm is not None else None
    if found is None:
        abort(404)
    org, conn = found
    next_url = request.args.get("next") or ""
    if not _on_org_host(next_url, org):
        next_url = ""
    return _begin(org, conn, "login", next_url=next_url, login_hint=(request.args.get("login_hint") or "")[:254])


def _on_org_host(url: str, org) -> bool:
    """True for an absolute URL on ``org``'s own host (where a sign-in may land)."""
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and hosts.normalise(parts.netloc) == hosts.normalise(hosts.org_host(org))


@flow_bp.get("/test", endpoint="test")
@public
def test_flow():
    """Begin a connection test from a signed ticket the portal made (ten
    minutes); the result is kept on the connection, and the browser returns
    to the portal page that asked."""
    _apex_only()
    try:
        data = _serializer().loads(request.args.get("t", ""), max_age=TEST_TICKET_SECONDS)
    except BadSignature:
        return render_template("sso/refused.html", reason="This test link has expired. Start the test again."), 410
    found = services.load_for_flow(parse_uuid(data.get("o")), parse_uuid(data.get("c")))
    if found is None:
        abort(404)
    org, conn = found
    return _begin(org, conn, "test", back=data.get("r") or hosts.org_url(org, "/"))


def _take_pending() -> dict | None:
    """The flow this callback answers (by its state), removed from the cookie: a
    callback is used once."""
    state = request.values.get("state") or request.values.get("RelayState")
    flows = session.get(PENDING_KEY, [])
    now = int(time.time())
    found = next(
        (p for p in flows if p.get("state") == state and state and now - int(p.get("at", 0)) < PENDING_SECONDS), None
    )
    if found is not None:
        session[PENDING_KEY] = [p for p in flows if p is not found]
    return found


@flow_bp.route("/callback/<protocol>", methods=["GET", "POST"])
@public
def callback(protocol: str):
    """The providers' answer. Unknown or reused state: 400, nothing done. A
    test records what was received and returns to the portal; a sign-in
    completes (``complete_sso_sign_in``) and goes to the organization, or
    shows why it was refused (403, recorded)."""
    _apex_only()
    proto = registry.get(protocol) or abort(404)
    pending = _take_pending()
    if pending is None:
        return render_template(
            "sso/refused.html", reason="This sign-in was not started in this browser, or it took too long. Start again."
        ), 400
    found = services.load_for_flow(parse_uuid(pending.get("o")), parse_uuid(pending.get("c")))
    if found is None or found[1].protocol != protocol:
        return render_template("sso/refused.html", reason="This connection no longer exists."), 400
    org, conn = found
    try:
        with tenant_context(org.id):
            identity = proto.finish_login(conn, pending, request)
    except registry.SsoRefused as e:
        if pending.get("m") == "test":
            with tenant_context(org.id):
                services.record_test(conn, None, e.reason)
            db.session.commit()
            return redirect(pending.get("r") or hosts.org_url(org, "/"))
        services.refuse(org, conn, e.reason)
        db.session.commit()
        return render_template("sso/refused.html", reason=e.reason, org=org), 403
    if pending.get("m") == "test":
        with tenant_context(org.id):
            services.record_test(conn, identity)
        db.session.commit()
        return redirect(pending.get("r") or hosts.org_url(org, "/"))
    try:
        services.complete_sso_sign_in(org, conn, identity)
    except services.SignInRefused as e:
        db.session.rollback()
        services.refuse(org, conn, e.message, identity.email)
        db.session.commit()
        return render_template("sso/refused.html", reason=e.message, org=org), 403
    db.session.commit()
    target = pending.get("n") if _on_org_host(pending.get("n") or "", org) else hosts.org_url(org, "/")
    return go_to(target)


# --------------------------------------------------------------------------- hooks into the sign-in page
@hooks.sign_in_realm.connect
def _realm(email: str) -> str | None:
    realm = services.realm_for_email(email)
    if realm is None:
        return None
    return url_for("sso_flow.start", org_id=realm.organization_id, login_hint=email.strip())


@hooks.sign_in_options.connect
def _offer(next_url: str) -> tuple[str, str] | None:
    """On the apex sign-in page reached from an organization's host: "Sign in with SSO" when it has SSO on."""
    if not next_url:
        return None
    match = hosts.classify(urlsplit(next_url).netloc)
    if match.kind != "org":
        return None
    with all_organizations(reason="sign-in page: does the organization the visitor came from offer SSO"):
        org = load_organization(match)
    if org is None or org.deleted_at is not None or org.status != "active":
        return None
    if services.realm_for_org(org) is None:
        return None
    return (f"Sign in with SSO to {org.name}", url_for("sso_flow.start", org_id=org.id, next=next_url))


@hooks.password_sign_in.connect
def _password_rule(user) -> hooks.PasswordRule | None:
    enforced = services.enforcing_organization(user)
    if enforced is None:
        return None
    sso_url = url_for("sso_flow.start", org_id=enforced.organization_id)
    if enforced.break_glass:
        return hooks.PasswordRule(break_glass=True, sso_url=sso_url)
    return hooks.PasswordRule(
        refusal=f"{enforced.organization_name} requires single sign-on: log in through your identity provider.",
        sso_url=sso_url,
    )


@hooks.break_glass_signed_in.connect
def _break_glass(user) -> None:
    enforced = services.enforcing_organization(user)
    if enforced is not None and enforced.break_glass:
        services.record_break_glass(user, enforced)

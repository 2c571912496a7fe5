"""SAML endpoints on an organization's host: our SP metadata and the ACS.

* ``GET /sso/saml/<connection>/metadata`` (public: an IdP may fetch it; it
  holds only public values) is our entity id and SP metadata.
* ``POST /sso/saml/<connection>/acs`` (public, no CSRF token: the identity
  provider's page posts it, cross-site) checks the response
  (``app.sso.saml.accept_response``). Accepted: the facts are kept in the
  request row and the browser goes on to the shared SSO callback on the
  apex, which hands them only to the browser that started the sign-in.
  Refused: ``sso.sign_in_refused`` with the reason's code is recorded,
  nothing else is written, and the person sees why (400).
* ``GET /settings/sso/<connection>/saml-metadata.xml`` (``settings:sso``):
  the same metadata as a download, from the portal.

The ACS answers a redirect to a fixed route, never to the response's
``RelayState`` (no open redirect).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask_login import login_required

from app.errors import UserError
from app.extensions import csrf, db, limiter
from app.rbac.decorators import require, requires_feature
from app.sso import saml, services
from app.sso import saml_protocol as proto
from app.web import hosts
from app.web.access import public

bp = Blueprint("saml", __name__)


def _saml_connection_or_404(connection_id):
    conn = services.find_connection(connection_id)
    if conn is None or conn.protocol != "saml":
        abort(404)
    return conn


def _metadata_response(conn, attachment: bool) -> Response:
    try:
        xml = saml.sp_metadata(g.org, conn)
    except UserError:
        abort(404)
    resp = Response(xml, mimetype="application/samlmetadata+xml")
    if attachment:
        resp.headers["Content-Disposition"] = f'attachment; filename="{g.org.slug}-saml-sp-metadata.xml"'
    return resp


@bp.get("/sso/saml/<connection_id>/metadata")
@public(outsiders_on_org_host=True)
def metadata(connection_id):
    """Our SP metadata for one connection (public: it is what the IdP is
    told anyway); 404 for another organization's or an unsaved connection."""
    if g.org is None:
        abort(404)
    return _metadata_response(_saml_connection_or_404(connection_id), attachment=False)


@bp.post("/sso/saml/<connection_id>/acs")
@public(outsiders_on_org_host=True)
@csrf.exempt
@limiter.limit("60 per minute")
def acs(connection_id):
    """The assertion consumer service: accept a signed, fresh, unreplayed
    assertion answering one of our requests, or refuse it (audited, nothing
    else changed)."""
    if g.org is None:
        abort(404)
    conn = _saml_connection_or_404(connection_id)
    org = g.org
    try:
        if conn.status not in ("enabled", "tested", "draft"):
            raise proto.Refused("disabled", "Single sign-on through this connection is turned off.")
        row = saml.accept_response(org, conn, request.form.get("SAMLResponse", ""))
    except proto.Refused as e:
        db.session.rollback()
        services.refuse(org, conn, f"saml: {e.code}")
        db.session.commit()
        return render_template("sso/saml_refused.html", message=e.message, code=e.code), 400
    except UserError as e:
        db.session.rollback()
        services.refuse(org, conn, "saml: not configured")
        db.session.commit()
        return render_template("sso/saml_refused.html", message=e.message, code="not_configured"), 400
    db.session.commit()
    del row
    # On to the shared callback on the apex (a GET: the browser's apex
    # cookie, SameSite=Lax, comes along), which finds the flow by the
    # RelayState it set. A fixed route: RelayState is only a lookup key.
    state = (request.form.get("RelayState") or "")[:200]
    return redirect(hosts.apex_url(url_for("sso_flow.callback", protocol="saml", state=state)), code=303)


@bp.get("/settings/sso/<connection_id>/saml-metadata.xml")
@login_required
@require("settings:sso")
@requires_feature("sso")
def download_metadata(connection_id):
    """Our SP metadata for the connection, as a file to upload to the IdP."""
    return _metadata_response(_saml_connection_or_404(connection_id), attachment=True)

"""``/scim/v2/`` on an organization's host: SCIM 2.0 (RFC 7643, 7644) for
its identity provider.

One view serves every SCIM path: it reads the request into scim2-server's
``ScimRequest``, authenticates the bearer token, hands the request to
scim2-server's handler (validation, PUT and PATCH applied, ETags, paging,
discovery) over ``OrgStorage`` (``app.scim.storage``), commits, and answers.

* **Authentication**: ``Authorization: Bearer scim_…``, a live token of the
  host's organization (``app.scim.tokens``). Missing, malformed, unknown,
  another organization's or revoked: **401** with a SCIM error body and a
  ``WWW-Authenticate`` challenge; nothing says whether the organization
  exists. ``/ServiceProviderConfig`` needs no token (RFC 7644 §4).
* **Plan**: a valid token of an organization whose plan lacks ``scim``
  (a downgrade after the token was made) is **403** ("not on your plan");
  a suspended organization is 403 too.
* **Errors**: every error is a SCIM error body (``application/scim+json``,
  ``schemas: [...Error]``, ``status``, ``scimType`` where RFC 7644 §3.12
  names one: ``invalidFilter``, ``invalidValue``, ``invalidSyntax``,
  ``uniqueness``, ``mutability``…), 404 for an unknown id or path, 412 for a
  stale ``If-Match``. A refused change rolls back: nothing is written.
* **Audit**: each change is recorded with actor type ``scim`` (the token's
  name) — ``scim.user_created``, ``scim.group_updated``, ``member.deactivated``
  … (``app.scim.storage``); a change refused with a 4xx is recorded as
  ``scim.request_refused`` (method, path, status, detail). Reads change
  nothing and are not recorded: a provider polls.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, request, url_for
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    ForbiddenException,
    Group,
    InvalidValueException,
    Patch,
    PayloadTooLargeException,
    SCIMException,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    UniquenessException,
    User,
)
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from sqlalchemy.exc import IntegrityError

from app import audit
from app.extensions import csrf, db
from app.scim import tokens
from app.scim.storage import OrgStorage
from app.tenancy.entitlements import entitled
from app.web.access import api_operation

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
# Token-authenticated, no cookie to ride on: CSRF does not apply.
csrf.exempt(bp)

FEATURE = "scim"
MAX_BODY = 256 * 1024
MAX_RESULTS = 200
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

_service: ScimService | None = None


def service() -> ScimService:
    """The SCIM service (stateless, built once per process): Users and Groups
    as scim2-models defines them, and what this server supports."""
    global _service
    if _service is None:
        config = ServiceProviderConfig(
            documentation_uri=None,
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
            filter=Filter(supported=True, max_results=MAX_RESULTS),
            change_password=ChangePassword(supported=False),
            sort=Sort(supported=False),
            etag=ETag(supported=True),
            authentication_schemes=[
                AuthenticationScheme(
                    type="oauthbearertoken",
                    name="Bearer token",
                    description="A SCIM token made in the organization's settings (Settings → SCIM provisioning).",
                    primary=True,
                )
            ],
        )
        _service = ScimService(ScimProvider(models=[User, Group], config=config))
    return _service


def _base_url() -> str:
    return url_for("scim.endpoint", subpath="", _external=True).rstrip("/")


def _respond(resp):
    body = b"" if resp.body is None else json.dumps(resp.body, separators=(",", ":")).encode()
    out = current_app.response_class(body, int(resp.status))
    for k, v in resp.headers.items():
        out.headers[k] = v
    if resp.body is None:
        out.headers.pop("Content-Type", None)
    out.headers["Cache-Control"] = "no-store"
    return out


def _authenticate(req: ScimRequest) -> None:
    """Set ``g.scim_token`` (the audit actor) or raise the SCIM 401/403."""
    if g.get("org") is None:
        # Apex, or a host naming no organization: no token can be valid here.
        raise UnauthorizedException(detail="Send a SCIM token of this organization: Authorization: Bearer scim_…")
    header = req.header("Authorization") or ""
    scheme, _, raw = header.partition(" ")
    try:
        g.scim_token = tokens.verify(raw.strip() if scheme.lower() == "bearer" else "")
    except tokens.TokenRefused as e:
        raise UnauthorizedException(detail=e.reason) from None
    if g.org.is_suspended:
        raise ForbiddenException(detail="This organization is suspended.")
    if not entitled(g.org, FEATURE):
        raise ForbiddenException(detail="The organization's plan does not include SCIM provisioning.")


@bp.route("/", defaults={"subpath": ""}, methods=METHODS)
@bp.route("/<path:subpath>", methods=METHODS)
def endpoint(subpath: str):
    """Every SCIM operation of the host's organization (module docstring)."""
    svc = service()
    raw = request.get_data(cache=True)
    req = ScimRequest(
        method=request.method,
        base_url=_base_url(),
        path="/" + subpath,
        query=request.args.to_dict(),
        headers=list(request.headers.items()),
        body=raw,
    )
    try:
        if len(raw) > MAX_BODY:
            raise PayloadTooLargeException(detail=f"Send at most {MAX_BODY // 1024} KB.")
        try:
            public = svc.match(req).operation is Operation.service_provider_config
        except SCIMException:
            public = False
        if not public:
            _authenticate(req)
        if b"\x00" in raw or b"\\u0000" in raw.lower():
            # PostgreSQL refuses NUL in text and JSONB: refuse it here, as a SCIM error.
            raise InvalidValueException(detail="NUL characters are not allowed.")
        if req.method in ("POST", "PUT", "PATCH"):
            _check_active_values(raw)
        handler = ScimHandler(svc, OrgStorage(g.org, svc))
        try:
            resp = handler.handle(req)
        except IntegrityError:
            # A unique value taken by a concurrent request between our check and our write.
            db.session.rollback()
            raise UniquenessException(detail="A unique value is already taken.") from None
        db.session.commit()
    except SCIMException as e:
        db.session.rollback()
        resp = svc.error_response(e)
        _record_refusal(req, e)
    return _respond(resp)


_BOOLEAN_STRINGS = {"true", "false"}


def _check_active_values(raw: bytes) -> None:
    """``active`` must be a boolean: pydantic's lax mode would read "yes",
    "1" or "on" as true, and a typo must not (re)activate or deprovision
    anyone. The strings "True"/"False" are accepted (case-insensitive):
    Microsoft Entra ID sends them in PATCH requests."""
    try:
        body = json.loads(raw)
    except ValueError:
        return  # scim2-server answers invalidSyntax
    if not isinstance(body, dict):
        return
    values = []
    if "active" in body:
        values.append(body["active"])
    operations = body.get("Operations")
    for op in operations if isinstance(operations, list) else []:
        if not isinstance(op, dict):
            continue
        if str(op.get("op") or "").lower() == "remove":
            continue  # removes the attribute; no value to check
        path, value = str(op.get("path") or "").lower(), op.get("value")
        if path.endswith("active"):
            values.append(value)
        elif not path and isinstance(value, dict):
            values.extend(v for k, v in value.items() if str(k).lower().endswith("active"))
    for v in values:
        if not isinstance(v, bool) and not (isinstance(v, str) and v.lower() in _BOOLEAN_STRINGS):
            raise InvalidValueException(detail=f"active must be true or false, not {json.dumps(v)[:40]}.")


def _record_refusal(req: ScimRequest, e: SCIMException) -> None:
    """A refused change by an authenticated token is audited (in its own transaction, after the rollback)."""
    if req.method not in _MUTATING or g.get("scim_token") is None or g.get("org") is None:
        return
    try:
        audit.record(
            "scim.request_refused",
            target=("scim_token", str(g.scim_token.id), g.scim_token.name),
            metadata={
                "method": req.method,
                "path": req.path[:200],
                "status": e.status,
                "scim_type": getattr(e, "scim_type", None),
                "detail": str(e)[:300],
            },
        )
        db.session.commit()
    except Exception:  # the refusal is answered whatever happens to its record
        db.session.rollback()
        current_app.logger.exception("could not record a refused SCIM request")


api_operation(endpoint)

"""How an API operation is declared and served: one decorator, ``operation``,
is the single source of the route, its scope, its input and output models
(pydantic) and its documentation (``app.api.openapi`` reads ``OPERATIONS``).

What every operation gets from here, so no view repeats it:

* the scope check (403 ``missing-scope``) against the key's *effective*
  scopes (``app.api.keys.effective_scopes``), the same permission string
  the page's ``@require`` names;
* a JSON body parsed and validated (415 not JSON, 413 larger than
  ``MAX_BODY``, 400 malformed, 422 with one error per field: wrong type,
  unknown field, missing field, a NUL character);
* query parameters validated the same way (unknown ones are 422 too);
* ``Idempotency-Key`` on POST: the first answer is stored with the change,
  in the same transaction, for 24 hours; the same key and body replays it,
  another body is 422, a concurrent twin is 409; an answer that carries a
  secret (``Reply(secret=True)``: a webhook signing secret) is stored
  encrypted with ``app.crypto``, as the secret itself is;
* the commit: a view never commits; the answer and the change are stored
  together or not at all;
* ``UserError`` from a service → 422 problem with the field (or the
  error's own status); ``StaleEdit`` → 412.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from flask import current_app, g, request
from pydantic import BaseModel, ConfigDict, PlainSerializer, ValidationError, WithJsonSchema
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import crypto
from app.api.models import IDEMPOTENCY_KEY_MAX, ApiIdempotency
from app.api.problems import Problem, field_error
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.permissions import ALL
from app.util import utcnow
from app.web.access import api_operation

MAX_BODY = 64 * 1024
IDEMPOTENCY_TTL = timedelta(hours=24)
# A stored answer that begins with this is app.crypto ciphertext (JSON never does).
SEALED = "sealed:"


# Every timestamp the API sends: RFC 3339, UTC, with "Z".
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z"), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Model(BaseModel):
    """Base of every request model: unknown fields are refused, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    """Base of every response model."""


@dataclass
class Reply:
    """What a view returns: ``data`` (a response model, a list of them, or a
    dict), the status, and the headers that matter (``ETag``, ``Location``)."""

    data: Any = None
    status: int = 200
    etag: str | None = None
    location: str | None = None
    headers: dict = field(default_factory=dict)
    # A streamed response (an export), sent as it is once the transaction
    # (with its audit event) is committed.
    stream: Any = None
    # The answer shows a secret once: its idempotent replay copy is stored encrypted.
    secret: bool = False


@dataclass
class Operation:
    method: str
    rule: str
    endpoint: str
    scope: str | None
    summary: str
    description: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    list_page: bool
    etag: bool
    if_match: bool
    idempotent: bool
    errors: tuple[int, ...]
    media: tuple[str, ...] = ()


OPERATIONS: list[Operation] = []


# --------------------------------------------------------------------------- input
def _pointer(loc) -> str:
    return "/" + "/".join(str(p) for p in loc) if loc else ""


def _validation_problem(e: ValidationError, where: str = "body") -> Problem:
    errors = []
    for err in e.errors(include_url=False):
        pointer = _pointer(err["loc"])
        if where == "query":
            pointer = "#/query" + pointer
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "Unknown field." if where == "body" else "Unknown parameter."
        errors.append({"pointer": pointer, "detail": msg})
    return Problem("validation", "Some of what you sent is not valid.", errors)


def _has_nul(value) -> str | None:
    """The JSON Pointer of the first string holding a NUL, or ``None``."""
    stack = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str) and "\x00" in v:
            return path
        if isinstance(v, dict):
            for k, item in v.items():
                if "\x00" in k:
                    return path
                stack.append((f"{path}/{k}", item))
        elif isinstance(v, list):
            stack.extend((f"{path}/{i}", item) for i, item in enumerate(v))
    return None


def read_json() -> tuple[Any, bytes]:
    """The request's JSON body and its raw bytes (problems: 413, 415, 400, 422)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem("too-large", f"Send at most {MAX_BODY // 1024} KB.")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise Problem("too-large", f"Send at most {MAX_BODY // 1024} KB.")
    if request.mimetype != "application/json":
        raise Problem("unsupported-media-type", "Send the body as application/json.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem("malformed-json", f"The body is not valid JSON: {str(e)[:200]}") from None
    where = _has_nul(data)
    if where is not None:
        raise Problem(
            "validation",
            "Some of what you sent is not valid.",
            [field_error(where.lstrip("/"), "NUL characters are not allowed.")],
        )
    return data, raw


def parse_body(model: type[BaseModel]):
    data, raw = read_json()
    if not isinstance(data, dict):
        raise Problem("validation", "Send a JSON object.", [field_error(None, "Expected an object.")])
    try:
        # JSON mode: strings for dates and UUIDs are parsed as JSON would carry them.
        return model.model_validate_json(raw), raw
    except ValidationError as e:
        raise _validation_problem(e) from None


def parse_query(model: type[BaseModel]):
    # NUL in a parameter never gets here: the input guard answers 400.
    args = dict(request.args.items())
    try:
        return model.model_validate(args, strict=False)
    except ValidationError as e:
        raise _validation_problem(e, "query") from None


# --------------------------------------------------------------------------- output
def dump(data) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [dump(d) for d in data]
    if isinstance(data, dict):
        return {k: dump(v) for k, v in data.items()}
    return data


def json_response(payload, status: int, headers: dict):
    resp = current_app.response_class(json.dumps(payload, separators=(",", ":")), status, mimetype="application/json")
    for k, v in headers.items():
        if v is not None:
            resp.headers[k] = v
    return resp


# --------------------------------------------------------------------------- idempotency
def _request_hash(raw: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > IDEMPOTENCY_KEY_MAX or not value.isprintable():
        raise Problem(
            "validation",
            errors=[
                {
                    "pointer": "#/header/Idempotency-Key",
                    "detail": f"Use 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
                }
            ],
        )
    return value


def _replay(idem: str, req_hash: str):
    """The stored answer for this key, ``None`` when there is none (or it is older than 24 hours)."""
    key_id = g.api_key.id
    row = db.session.execute(
        select(ApiIdempotency).where(ApiIdempotency.api_key_id == key_id, ApiIdempotency.idempotency_key == idem)
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.created_at <= utcnow() - IDEMPOTENCY_TTL:
        db.session.execute(
            delete(ApiIdempotency).where(ApiIdempotency.api_key_id == key_id, ApiIdempotency.idempotency_key == idem)
        )
        return None
    if row.request_hash != req_hash:
        raise Problem(
            "idempotency-mismatch", "This Idempotency-Key was used with a different request in the last 24 hours."
        )
    body = row.body
    if body.startswith(SEALED):
        body = crypto.decrypt(body[len(SEALED) :]).decode()
    return json_response(json.loads(body), row.status, {"Location": row.location, "Idempotent-Replayed": "true"})


# --------------------------------------------------------------------------- the decorator
def operation(
    bp,
    method: str,
    rule: str,
    *,
    scope: str | None,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    list_page: bool = False,
    etag: bool = False,
    if_match: bool = False,
    errors: tuple[int, ...] = (),
    media: tuple[str, ...] = (),
):
    """Declare and register an API operation on ``bp`` (see the module docstring)."""
    if scope is not None and scope not in ALL:
        raise ValueError(f"unknown scope {scope!r}")

    def decorator(view):
        endpoint = view.__name__
        idempotent = method == "POST"

        @functools.wraps(view)
        def wrapped(**kwargs):
            if scope is not None and scope not in g.permissions:
                raise Problem(
                    "missing-scope",
                    f"This operation needs the scope {scope}, which this key does not have (or its creator no longer holds).",
                )
            raw = b""
            if body is not None:
                kwargs["body"], raw = parse_body(body)
            elif method in ("POST", "PATCH", "PUT") and request.get_data(cache=True):
                raise Problem("validation", "This operation takes no body.", [field_error(None, "Send no body.")])
            if query is not None:
                kwargs["query"] = parse_query(query)
            idem = _idempotency_key() if idempotent else None
            req_hash = None
            if idem is not None:
                req_hash = _request_hash(raw)
                replayed = _replay(idem, req_hash)
                if replayed is not None:
                    db.session.commit()
                    return replayed
            try:
                reply = view(**kwargs)
            except StaleEdit as e:
                db.session.rollback()
                raise Problem("precondition-failed", e.message) from None
            except UserError as e:
                db.session.rollback()
                if e.status == 403:
                    raise Problem("forbidden", e.message) from None
                if e.status == 409:
                    raise Problem("conflict", e.message) from None
                raise Problem(
                    "refused", e.message, [field_error(e.field, e.message)], status=e.status if e.status >= 400 else 422
                ) from None
            payload = dump(reply.data)
            headers = {"ETag": reply.etag, "Location": reply.location, **reply.headers}
            if idem is not None and reply.status < 500:
                stored = json.dumps(payload)
                if reply.secret:
                    stored = SEALED + crypto.encrypt(stored)
                db.session.add(
                    ApiIdempotency(
                        api_key_id=g.api_key.id,
                        idempotency_key=idem,
                        request_hash=req_hash,
                        status=reply.status,
                        body=stored,
                        location=reply.location,
                    )
                )
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                if idem is None:
                    raise
                raise Problem(
                    "idempotency-in-progress",
                    "A request with this Idempotency-Key was being processed at the same time; retry it.",
                ) from None
            if reply.stream is not None:
                return reply.stream
            if reply.status == 204:
                return current_app.response_class(b"", 204, headers={k: v for k, v in headers.items() if v})
            return json_response(payload, reply.status, headers)

        api_operation(wrapped, (scope,) if scope else ())
        bp.add_url_rule(rule, endpoint, wrapped, methods=[method])
        OPERATIONS.append(
            Operation(
                method,
                rule,
                f"{bp.name}.{endpoint}",
                scope,
                summary,
                (view.__doc__ or "").strip(),
                tag,
                body,
                query,
                response,
                status,
                list_page,
                etag,
                if_match,
                idempotent,
                errors,
                media,
            )
        )
        return wrapped

    return decorator


# --------------------------------------------------------------------------- ETags
def etag_of(*parts) -> str:
    """A strong ETag from the row's identity and version."""
    return '"' + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32] + '"'


def check_if_match(current: str) -> None:
    """Refuse an update without ``If-Match`` (428) or with a stale one (412):
    an update must say which state it was made from, so that it can never
    silently undo someone else's."""
    wanted = request.headers.get("If-Match")
    if not wanted:
        raise Problem("precondition-required", "Send If-Match with the ETag of the resource you are changing.")
    tags = [t.strip() for t in wanted.split(",")]
    if "*" not in tags and current not in tags:
        raise Problem("precondition-failed", "The resource changed since you read it: read it again and retry.")

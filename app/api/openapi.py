"""The OpenAPI 3.1 document, generated from the operations themselves.

One source of truth: ``app.api.http.operation`` registers each route with
its scope, its pydantic models and its docstring, and this module turns
that list into the document. Pydantic emits JSON Schema 2020-12, which is
exactly OpenAPI 3.1's schema dialect, so the models that validate a
request are the schemas the document publishes; nothing is written twice.

Why not a library: APIFlask replaces the Flask class (too invasive for an
app whose factory, host hook and error pages are its own); flask-smorest
(marshmallow, apispec) emits OpenAPI 3.0.x by default and would bring a
second validation library beside pydantic; spectree (3.0, 2026) validates
with pydantic but owns the request/response cycle (its own 422 body, not
RFC 9457) and the scope and idempotency rules would still live outside it.
The generator below is ~100 lines over ``model_json_schema``.
"""

from __future__ import annotations

import re
from functools import cache

from app.api.http import MAX_BODY, OPERATIONS
from app.api.problems import KINDS, MEDIA_TYPE

_RULE_VAR = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
REF = "#/components/schemas/{model}"

_STATUS_TEXT = {
    400: "Malformed request (bad JSON, bad cursor, a NUL character in a parameter or header)",
    401: "No key, or a key that does not authenticate here",
    403: "The key lacks the scope, or the organization is suspended",
    404: "No such resource in this organization",
    409: "Conflict (a concurrent request with the same Idempotency-Key)",
    412: "If-Match does not match the current ETag",
    413: "Body larger than the limit",
    415: "Body is not application/json",
    422: "Invalid input, or refused by a rule (errors name the fields)",
    428: "If-Match is required",
    429: "Rate limit reached (Retry-After)",
}


def _schema(model, defs: dict) -> dict:
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    for name, sub in schema.pop("$defs", {}).items():
        defs[name] = sub
    defs[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _input_schema(model, defs: dict) -> dict:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        defs[name] = sub
    defs[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _rate_headers() -> dict:
    return {
        name: {"description": text, "schema": {"type": "integer"}}
        for name, text in (
            (
                "RateLimit-Limit",
                "Requests allowed in the current window (the tighter of the organization's and the key's)",
            ),
            ("RateLimit-Remaining", "Requests left in the window"),
            ("RateLimit-Reset", "Seconds until the window resets"),
        )
    }


def _problem_schema() -> dict:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pointer", "detail"],
                    "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
        },
    }


def _problem_response(status: int) -> dict:
    out = {
        "description": _STATUS_TEXT.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if status == 429:
        out["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
            **_rate_headers(),
        }
    if status == 401:
        out["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


def _parameters(op, defs: dict) -> list[dict]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}}
        for name in _RULE_VAR.findall(op.rule)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(mode="validation")
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": prop,
                    "description": prop.get("description", ""),
                }
            )
    if op.if_match:
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 200},
                "description": "The ETag of the resource as read.",
            }
        )
    elif op.method == "DELETE":
        params.append(
            {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200}}
        )
    if op.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                "description": "Makes a retry safe for 24 hours: the same key and body replay the first answer.",
            }
        )
    return params


def _operation(op, defs: dict) -> dict:
    success: dict = {"description": op.summary, "headers": _rate_headers()}
    if op.response is not None and op.status != 204:
        success["content"] = {"application/json": {"schema": _schema(op.response, defs)}}
    if op.media:
        success["content"] = {m: {"schema": {"type": "string"}} for m in op.media}
    if op.etag:
        success["headers"] = {**success["headers"], "ETag": {"schema": {"type": "string"}}}
    responses = {str(op.status): success}
    # 400: the input guard refuses a NUL in any parameter or header, on every route.
    codes = {400, 401, 403, 429, *op.errors}
    if op.body is not None:
        codes |= {400, 413, 415, 422}
    if op.idempotent:
        codes |= {409, 422}
    if op.query is not None:
        codes |= {422}
    for code in sorted(codes):
        responses[str(code)] = _problem_response(code)
    out = {
        "operationId": op.endpoint.split(".", 1)[1],
        "summary": op.summary,
        "description": op.description + (f"\n\nScope: `{op.scope}`." if op.scope else ""),
        "tags": [op.tag],
        "parameters": _parameters(op, defs),
        "responses": responses,
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _input_schema(op.body, defs)}},
        }
    return out


@cache
def document() -> dict:
    """The OpenAPI 3.1 document of every registered operation (built once per process)."""
    defs: dict = {"Problem": _problem_schema()}
    paths: dict = {}
    for op in OPERATIONS:
        path = _RULE_VAR.sub(r"{\1}", "/api/v1" + op.rule)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tenantry API",
            "version": "1.0.0",
            "description": (
                "The organization's data as JSON, on the organization's own host. "
                "Authenticate with an API key: `Authorization: Bearer tnt_…`. "
                f"Errors are RFC 9457 problem+json ({', '.join(sorted(KINDS))}). "
                f"Bodies are at most {MAX_BODY // 1024} KB of JSON; unknown fields are refused."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "tnt_<key id>_<secret><crc>"}
            },
        },
    }

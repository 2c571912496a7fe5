"""Errors as RFC 9457 ``application/problem+json``.

Every refusal the API makes is a ``Problem``: ``type`` (a URI reference
to the documentation of that kind of problem, or ``about:blank`` when the
status says it all), ``title``, ``status``, ``detail`` and, for bad input,
``errors``: one ``{"pointer": "/field", "detail": "..."}`` per field (JSON
Pointer into the request body, or ``#/query/<name>`` for a parameter).
"""

from __future__ import annotations

import json

from flask import current_app, g

MEDIA_TYPE = "application/problem+json"
DOCS = "/api/v1/docs#problem-"

# slug -> (status, title): the documented kinds of problem.
KINDS = {
    "unauthenticated": (401, "Not authenticated"),
    "forbidden": (403, "Not allowed"),
    "missing-scope": (403, "The key lacks a scope"),
    "not-found": (404, "Not found"),
    "malformed-json": (400, "Malformed JSON"),
    "invalid-cursor": (400, "Invalid cursor"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "too-large": (413, "Request body too large"),
    "validation": (422, "Invalid input"),
    "refused": (422, "Refused"),
    "idempotency-mismatch": (422, "Idempotency-Key reused with another request"),
    "idempotency-in-progress": (409, "Idempotency-Key already in use"),
    "conflict": (409, "Conflict"),
    "precondition-failed": (412, "Precondition failed"),
    "precondition-required": (428, "Precondition required"),
    "rate-limited": (429, "Too many requests"),
    "suspended": (403, "Organization suspended"),
    "not-entitled": (403, "Not included in the plan"),
}


class Problem(Exception):
    """A refusal answered as problem+json. ``kind`` is a slug of ``KINDS``."""

    def __init__(
        self, kind: str, detail: str | None = None, errors: list[dict] | None = None, headers=None, status=None
    ):
        super().__init__(detail or kind)
        default_status, self.title = KINDS[kind]
        self.kind = kind
        self.status = status or default_status
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> dict:
        out = {"type": DOCS + self.kind, "title": self.title, "status": self.status}
        if self.detail:
            out["detail"] = self.detail
        if self.errors:
            out["errors"] = self.errors
        rid = g.get("request_id")
        if rid:
            out["request_id"] = rid
        return out


def response(problem: Problem):
    """The HTTP response for ``problem``."""
    resp = current_app.response_class(json.dumps(problem.body()), problem.status, mimetype=MEDIA_TYPE)
    for k, v in problem.headers.items():
        resp.headers[k] = v
    return resp


def field_error(field: str | None, detail: str) -> dict:
    """One entry of ``errors``: a JSON Pointer to the field and what is wrong."""
    return {"pointer": "/" + field if field else "", "detail": detail}

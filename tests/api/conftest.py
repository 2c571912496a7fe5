"""Fixtures for the API tests: keys made through the service, a client that speaks JSON with a key."""

from __future__ import annotations

import json as jsonlib

import pytest

from app.extensions import db
from app.scoping import tenant_context
from tests.conftest import url
from tests.fresh_client import fresh_requests  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fresh(fresh_requests):  # noqa: F811
    """Requests run in their own app context and session, as in production."""
    from app.api import usage

    usage.forget()


@pytest.fixture
def make_key(app):
    """``make_key(org, user, scopes, days=90)`` -> (key id, full key), committed."""
    from app.api import keys
    from app.members.memberships import get_membership

    def make(org, user, scopes, days=90):
        with tenant_context(org.id):
            m = get_membership(user.id)
            key, full = keys.create_key("test key", list(scopes), days, m)
            db.session.commit()
            return key.id, full

    return make


class Api:
    """``api.get(slug, path, key)``, ``api.post(slug, path, key, json=...)`` … answering Werkzeug responses."""

    def __init__(self, app):
        self.client = app.test_client()

    def call(self, method, slug, path, key=None, json=None, data=None, headers=None, content_type=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        kwargs = {}
        if json is not None:
            kwargs["data"] = jsonlib.dumps(json)
            kwargs["content_type"] = "application/json"
        if data is not None:
            kwargs["data"] = data
            kwargs["content_type"] = content_type or "application/json"
        return self.client.open(url(slug, "/api/v1" + path), method=method, headers=h, **kwargs)

    def get(self, *a, **kw):
        return self.call("GET", *a, **kw)

    def post(self, *a, **kw):
        return self.call("POST", *a, **kw)

    def patch(self, *a, **kw):
        return self.call("PATCH", *a, **kw)

    def delete(self, *a, **kw):
        return self.call("DELETE", *a, **kw)


@pytest.fixture
def api(app):
    return Api(app)


def problem(resp, status: int, kind: str | None = None) -> dict:
    """Assert ``resp`` is problem+json with ``status`` (and ``kind``) and return its body."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/problem+json", resp.mimetype
    body = resp.get_json(force=True)
    assert body["status"] == status and body["title"]
    if kind:
        assert body["type"].endswith("#problem-" + kind), body
    return body

"""Bad input: clear problem+json answers, nothing changed (one test each)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import problem

SCOPES = ["projects:view", "projects:create", "projects:update", "members:view"]


@pytest.fixture
def key(world, make_key):
    return make_key(world.acme, world.users["admin"], SCOPES)[1]


@pytest.fixture
def no_new_projects(owner_engine):
    def count():
        with owner_engine.connect() as c:
            return c.exec_driver_sql("SELECT count(*) FROM projects").scalar()

    before = count()
    yield
    assert count() == before, "a refused request created a project"


def test_malformed_json_is_400(world, api, key, no_new_projects):
    problem(api.post("acme", "/projects", key, data=b'{"name": "x",'), 400, "malformed-json")


def test_wrong_types_are_422_with_the_field(world, api, key, no_new_projects):
    body = problem(api.post("acme", "/projects", key, json={"name": 42, "owner_id": []}), 422, "validation")
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/name", "/owner_id"} <= pointers


def test_unknown_fields_are_422(world, api, key, no_new_projects):
    owner = str(world.users["owner"].id)
    body = problem(api.post("acme", "/projects", key, json={"name": "x", "owner_id": owner, "colour": "red"}), 422)
    assert body["errors"] == [{"pointer": "/colour", "detail": "Unknown field."}]


def test_unknown_query_parameters_are_422(world, api, key):
    body = problem(api.get("acme", "/projects?colour=red", key), 422)
    assert body["errors"][0]["pointer"] == "#/query/colour"


def test_oversized_body_is_413(world, api, key, no_new_projects):
    owner = str(world.users["owner"].id)
    big = json.dumps({"name": "x", "owner_id": owner, "description": "a" * 70_000})
    problem(api.post("acme", "/projects", key, data=big.encode()), 413, "too-large")


def test_non_json_body_is_415(world, api, key, no_new_projects):
    problem(api.post("acme", "/projects", key, data=b"name=x", content_type="application/x-www-form-urlencoded"), 415)


def test_a_json_array_is_422(world, api, key, no_new_projects):
    problem(api.post("acme", "/projects", key, json=["x"]), 422)


def test_nul_characters_are_422(world, api, key, no_new_projects):
    owner = str(world.users["owner"].id)
    problem(api.post("acme", "/projects", key, json={"name": "a\u0000b", "owner_id": owner}), 422)


@pytest.mark.parametrize("cursor", ["garbage", "WyJ4Il0", "W10", "!!!"])
def test_bad_cursors_are_400(world, api, key, cursor):
    problem(api.get("acme", f"/projects?cursor={cursor}", key), 400, "invalid-cursor")
    problem(api.get("acme", f"/members?cursor={cursor}", key), 400, "invalid-cursor")


def test_out_of_range_limits_are_422(world, api, key):
    problem(api.get("acme", "/members?limit=0", key), 422)
    problem(api.get("acme", "/members?limit=100000", key), 422)
    problem(api.get("acme", "/members?limit=ten", key), 422)


def test_unknown_route_and_method_are_problem_json(world, api, key):
    problem(api.get("acme", "/nothing-here", key), 404)
    # A method no route takes is, like an unknown route, a 404 to anyone the
    # host hook has not authenticated (it tells nobody what exists).
    problem(api.call("PUT", "acme", "/projects", key, json={}), 404)


def test_an_over_long_idempotency_key_is_422(world, api, key, no_new_projects):
    owner = str(world.users["owner"].id)
    r = api.post(
        "acme", "/projects", key, json={"name": "x", "owner_id": owner}, headers={"Idempotency-Key": "k" * 300}
    )
    problem(r, 422)

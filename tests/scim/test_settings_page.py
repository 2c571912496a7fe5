"""Settings → SCIM provisioning: who may open it, tokens shown once and
revoked, group mappings, 422s beside the field, the plan refusal."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.rbac.group_roles import GroupRoleMapping
from app.scim.models import ScimToken
from app.scoping import tenant_context
from tests.conftest import csrf_token, url
from tests.scim.conftest import ScimClient, set_plan


@pytest.fixture
def enterprise(world, owner_engine):
    set_plan(owner_engine, world.acme, "enterprise")
    return world


def _tokens(world):
    with tenant_context(world.acme.id):
        return db.session.execute(select(ScimToken)).unique().scalars().all()


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("admin", 200), ("manager", 403), ("viewer", 403)])
def test_only_sso_admins_open_the_page(enterprise, login, who, status):
    r = login(enterprise.users[who], "acme").get(url("acme", "/settings/scim/"))
    assert r.status_code == status


def test_plan_without_scim_gets_the_not_on_your_plan_page(world, login):
    r = login(world.users["owner"], "acme").get(url("acme", "/settings/scim/"))
    assert r.status_code == 403 and b"plan" in r.data


def test_token_is_shown_once_works_and_stops_when_revoked(app, enterprise, login):
    c = login(enterprise.users["admin"], "acme")
    r = c.post(
        url("acme", "/settings/scim/tokens"),
        data={"csrf_token": csrf_token(c, "acme"), "name": "Okta", "submit_key": "k1"},
    )
    assert r.status_code == 201
    full = re.search(rb'id="scim-token" type="text" readonly value="(scim_[^"]+)"', r.data).group(1).decode()
    with tenant_context(enterprise.acme.id):
        (tok,) = _tokens(enterprise)
        token_id, secret_hash = tok.id, tok.secret_hash
    assert secret_hash != full and full not in c.get(url("acme", "/settings/scim/")).data.decode()
    scim = ScimClient(app, "acme", full)
    assert scim("GET", "/Users").status_code == 200
    r = c.post(url("acme", f"/settings/scim/tokens/{token_id}/revoke"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302
    assert scim("GET", "/Users").status_code == 401


def test_double_submit_makes_one_token(enterprise, login):
    c = login(enterprise.users["admin"], "acme")
    data = {"csrf_token": csrf_token(c, "acme"), "name": "Okta", "submit_key": "sameSubmitKey-0123456789abcdefXYZ"}
    c.post(url("acme", "/settings/scim/tokens"), data=data)
    c.post(url("acme", "/settings/scim/tokens"), data=data)
    assert len(_tokens(enterprise)) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 81])
def test_bad_token_name_is_422_beside_the_field_and_saves_nothing(enterprise, login, name):
    c = login(enterprise.users["admin"], "acme")
    r = c.post(
        url("acme", "/settings/scim/tokens"),
        data={"csrf_token": csrf_token(c, "acme"), "name": name, "submit_key": "k"},
    )
    assert r.status_code == 422 and b"field__error" in r.data
    assert _tokens(enterprise) == []


def test_mapping_is_added_and_removed(enterprise, login):
    c = login(enterprise.users["admin"], "acme")
    r = c.post(
        url("acme", "/settings/scim/mappings"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "group": "Leads",
            "role": "manager",
            "source": "scim",
            "submit_key": "m",
        },
    )
    assert r.status_code == 302
    with tenant_context(enterprise.acme.id):
        (m,) = db.session.execute(select(GroupRoleMapping)).unique().scalars().all()
        mapping_id = m.id
    assert b"Leads" in c.get(url("acme", "/settings/scim/")).data
    r = c.post(url("acme", f"/settings/scim/mappings/{mapping_id}/delete"), data={"csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 302
    with tenant_context(enterprise.acme.id):
        assert db.session.execute(select(GroupRoleMapping)).first() is None


@pytest.mark.parametrize(("group", "role"), [("", "member"), ("Leads", "owner"), ("Leads", "nope")])
def test_bad_mapping_is_422_and_saves_nothing(enterprise, login, group, role):
    c = login(enterprise.users["admin"], "acme")
    r = c.post(
        url("acme", "/settings/scim/mappings"),
        data={"csrf_token": csrf_token(c, "acme"), "group": group, "role": role, "source": "scim", "submit_key": "m"},
    )
    assert r.status_code == 422 and b"field__error" in r.data
    with tenant_context(enterprise.acme.id):
        assert db.session.execute(select(GroupRoleMapping)).first() is None

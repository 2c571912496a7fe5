"""A page of a feature the organization's plan does not include answers 403
with a page saying so (not 404: members may know the feature), and offers
nothing; an override switching the feature on opens it again."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.rbac.decorators import requires_feature
from app.scoping import all_organizations
from app.tenancy.models import EntitlementOverride
from tests.conftest import csrf_token, url


def _switch(org, name, enabled):
    with all_organizations(reason="test: a feature override"):
        db.session.merge(
            EntitlementOverride(organization_id=org.id, name=name, kind="feature", enabled=enabled, reason="test")
        )
    db.session.commit()


def test_custom_roles_switched_off_answer_403_with_a_clear_page(world, login):
    _switch(world.acme, "custom_roles", False)
    c = login(world.users["owner"], "acme")
    r = c.get(url("acme", "/roles/new"))
    body = r.get_data(as_text=True)
    assert r.status_code == 403
    assert "Not on your plan" in body and "Custom roles is not included" in body
    r = c.post(url("acme", "/roles/"), data={"name": "Sneaky", "csrf_token": csrf_token(c, "acme")})
    assert r.status_code == 403
    roles = c.get(url("acme", "/roles/")).get_data(as_text=True)
    assert "New role" not in roles and "Duplicate" not in roles


def test_the_feature_switched_back_on_opens_the_page(world, login):
    _switch(world.acme, "custom_roles", False)
    _switch(world.acme, "custom_roles", True)
    c = login(world.users["owner"], "acme")
    assert c.get(url("acme", "/roles/new")).status_code == 200
    assert "New role" in c.get(url("acme", "/roles/")).get_data(as_text=True)


def test_an_unknown_feature_fails_when_the_view_is_declared():
    with pytest.raises(ValueError, match="unknown feature"):
        requires_feature("teleport")

"""Organization settings: the rename is the service's work, audited once."""

from __future__ import annotations

import pytest

from app.errors import UserError
from app.extensions import db
from app.scoping import all_organizations, tenant_context
from app.settings import services
from app.tenancy.models import Organization
from tests.conftest import csrf_token, url


def _org(org_id) -> Organization:
    with all_organizations(reason="test: read an organization"):
        return db.session.get(Organization, org_id)


def test_rename_changes_the_name_and_records_one_event(world, monkeypatch):
    from app import audit

    events = []
    monkeypatch.setattr(audit, "record", lambda action, **kw: events.append((action, kw)))
    with tenant_context(world.acme.id):
        org = _org(world.acme.id)
        assert services.rename(org, "  Acme Industries ") is True
        assert services.rename(org, "Acme Industries") is False  # unchanged: nothing recorded
    assert events == [
        (
            "org.settings_changed",
            {"target": org, "before": {"name": "Acme Corporation"}, "after": {"name": "Acme Industries"}},
        )
    ]


@pytest.mark.parametrize("name, message", [("   ", "Give the organization a name."), ("x" * 121, "at most 120")])
def test_rename_refuses_a_bad_name_beside_the_field(world, name, message):
    with tenant_context(world.acme.id), pytest.raises(UserError, match=message) as e:
        services.rename(_org(world.acme.id), name)
    assert e.value.field == "name"


def test_settings_page_saves_the_name(world, login):
    c = login(world.users["owner"], "acme")
    r = c.post(
        url("acme", "/settings/general"), data={"csrf_token": csrf_token(c, "acme"), "name": "Acme Two", "version": "1"}
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert _org(world.acme.id).name == "Acme Two"


def _version(owner_engine, org_id) -> int:
    from sqlalchemy import text

    with owner_engine.connect() as c:
        return c.execute(text("SELECT version FROM organizations WHERE id = :id"), {"id": org_id}).scalar_one()


def test_settings_form_carries_the_version_and_a_stale_save_is_409(world, login, owner_engine):
    c = login(world.users["owner"], "acme")
    version = _version(owner_engine, world.acme.id)
    assert f'name="version" type="hidden" value="{version}"' in c.get(url("acme", "/settings/general")).get_data(
        as_text=True
    )
    data = {"csrf_token": csrf_token(c, "acme"), "version": str(version)}
    assert c.post(url("acme", "/settings/general"), data={**data, "name": "Acme First"}).status_code == 302
    r = c.post(url("acme", "/settings/general"), data={**data, "name": "Acme Second"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "changed by someone else" in html
    assert 'value="Acme First"' in html and f'value="{version + 1}"' in html
    db.session.expire_all()
    assert _org(world.acme.id).name == "Acme First"
    assert _version(owner_engine, world.acme.id) == version + 1


def test_two_tabs_renaming_at_once_one_wins(world, login, owner_engine):
    from tests.drills import at_once

    tabs = login(world.users["owner"], "acme"), login(world.users["owner"], "acme")
    version = _version(owner_engine, world.acme.id)

    def rename(client, name):
        data = {"csrf_token": csrf_token(client, "acme"), "name": name, "version": str(version)}
        return lambda: client.post(url("acme", "/settings/general"), data=data)

    responses = at_once(rename(tabs[0], "Acme A"), rename(tabs[1], "Acme B"))
    assert sorted(r.status_code for r in responses) == [302, 409]
    assert _version(owner_engine, world.acme.id) == version + 1

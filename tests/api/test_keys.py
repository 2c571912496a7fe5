"""API keys: format, checksum, hashing, who may create what, revoke, rotate."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.api import keys
from app.api.models import ApiKey
from app.errors import UserError
from app.extensions import db
from app.members.memberships import get_membership
from app.scoping import tenant_context
from app.util import utcnow


def test_key_format_carries_a_valid_checksum():
    key_id, full = keys.new_key()
    assert full.startswith(f"tnt_{key_id}_") and keys.KEY_RE.match(full)
    assert keys.parse(full) == key_id
    # One changed character breaks the checksum: a scanner (and we) tell a real key offline.
    broken = full[:-8] + ("A" if full[-8] != "A" else "B") + full[-7:]
    assert keys.parse(broken) is None
    assert keys.parse("tnt_nothex_x") is None and keys.parse("") is None


def test_only_the_sha256_of_the_key_is_stored(world, make_key):
    kid, full = make_key(world.acme, world.users["admin"], ["members:view"])
    with tenant_context(world.acme.id):
        row = db.session.get(ApiKey, (world.acme.id, kid))
        assert row.secret_hash == hashlib.sha256(full.encode()).hexdigest()
        assert full not in repr(vars(row))
        assert row.prefix == "tnt_" + row.key_id and full.startswith(row.prefix + "_")


def test_scopes_beyond_the_creators_own_are_refused(world):
    with tenant_context(world.acme.id):
        manager = get_membership(world.users["manager"].id)
        manager.role = "admin"  # apikeys:manage for the test, then back: only the scope check matters
        with pytest.raises(UserError) as e:
            keys.create_key("k", ["org:delete"], 30, manager)
        assert e.value.field == "scopes" and "org:delete" in e.value.message
        db.session.rollback()
        assert db.session.execute(select(ApiKey)).first() is None


def test_members_without_apikeys_manage_create_keys_only_if_the_policy_allows(world):
    with tenant_context(world.acme.id):
        member = get_membership(world.users["member"].id)
        with pytest.raises(UserError) as e:
            keys.create_key("k", ["projects:view"], 30, member, members_may_create=False)
        assert e.value.status == 403
        key, _ = keys.create_key("k", ["projects:view"], 30, member, members_may_create=True)
        assert key.scopes == ["projects:view"]


def test_support_sessions_cannot_create_keys(world):
    with tenant_context(world.acme.id):
        admin = get_membership(world.users["admin"].id)
        with pytest.raises(UserError) as e:
            keys.create_key("k", ["projects:view"], 30, admin, impersonated=True)
        assert "Support" in e.value.message


def test_unknown_scopes_and_expiries_are_refused(world):
    with tenant_context(world.acme.id):
        admin = get_membership(world.users["admin"].id)
        with pytest.raises(UserError) as e:
            keys.create_key("k", ["nope:nope"], 30, admin)
        assert e.value.field == "scopes"
        with pytest.raises(UserError) as e:
            keys.create_key("k", ["projects:view"], 7, admin)
        assert e.value.field == "expires_in_days"
        with pytest.raises(UserError) as e:
            keys.create_key("   ", ["projects:view"], 30, admin)
        assert e.value.field == "name"


def test_creation_is_audited_without_the_secret(world, owner_engine):
    with tenant_context(world.acme.id):
        admin = get_membership(world.users["admin"].id)
        _, full = keys.create_key("deploy", ["projects:view"], 30, admin)
        db.session.commit()
    with owner_engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT changes::text, metadata::text FROM audit_events WHERE action = 'api_key.created'"
        ).all()
    assert len(rows) == 1 and full not in rows[0][0] and full[-38:] not in rows[0][0]


def test_rotation_keeps_the_old_key_for_the_overlap_only(world):
    with tenant_context(world.acme.id):
        admin = get_membership(world.users["admin"].id)
        old, _ = keys.create_key("deploy", ["projects:view"], 90, admin)
        new, full = keys.rotate_key(old, 24, admin)
        db.session.commit()
        assert new.scopes == ["projects:view"] and new.name == "deploy" and old.rotated_to == new.id
        assert timedelta(hours=23) < old.expires_at - utcnow() <= timedelta(hours=24)
        assert keys.verify(full).key.id == new.id

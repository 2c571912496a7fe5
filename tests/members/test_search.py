"""Member search: the two plans (trigram index through ``member_search_ids``,
or an ordered scan) return the same rows, and the SECURITY DEFINER search
function reveals nothing outside the organization the RLS setting names."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from app.extensions import db
from app.members import listing
from app.scoping import tenant_context
from tests.members.conftest import add_members, invite_row

ROLE_KEYS = {"owner", "admin", "manager", "member", "viewer"}


def _needs_trigram():
    if not listing.search_function_available():
        pytest.skip("pg_trgm is not installed on this PostgreSQL (the embedded server): search scans instead")


def test_search_function_returns_only_ids_of_the_organization_in_the_rls_setting(world):
    _needs_trigram()
    with tenant_context(world.acme.id):
        ids = set(db.session.execute(text("SELECT member_search_ids('%globex%')")).scalars())
        assert ids == set()  # globex's members exist, but not in acme
        ids = set(db.session.execute(text("SELECT member_search_ids('%consult%')")).scalars())
        assert ids == {world.users["consultant"].id}
    # No organization in scope: nothing, whatever the pattern.
    db.session.rollback()
    assert list(db.session.execute(text("SELECT member_search_ids('%')")).scalars()) == []


def test_index_and_scan_plans_return_the_same_pages(world):
    _needs_trigram()
    add_members(world.acme, 40, prefix="search")
    add_members(world.globex, 40, prefix="search")  # same names in another organization
    invite_row(world.acme, "search-invite@example.test")
    with tenant_context(world.acme.id):
        for q in ("search 001", "earch", "0003@acme", "acme.test", "consult", "nobody-at-all"):
            for sort in ("name", "email", "joined"):
                f = listing.parse_filters({"q": q, "sort": sort, "per_page": "7"}, ROLE_KEYS)
                indexed = listing.prepare(f)
                scanned = replace(f, via_index=False)
                assert [r.id for r in listing.iterate(replace(indexed, via_index=True))] == [
                    r.id for r in listing.iterate(scanned)
                ], (q, sort)
                assert listing.count(replace(f, via_index=True)) == listing.count(scanned), q


def test_prepare_uses_the_index_for_selective_searches_only(world, monkeypatch):
    _needs_trigram()
    monkeypatch.setattr(listing, "COUNT_CAP", 5)
    add_members(world.acme, 10, prefix="dense")
    with tenant_context(world.acme.id):
        assert listing.prepare(listing.parse_filters({"q": "consult"}, ROLE_KEYS)).via_index
        assert not listing.prepare(listing.parse_filters({"q": "dense"}, ROLE_KEYS)).via_index  # 10 > 5 matches
        assert not listing.prepare(listing.parse_filters({"q": "co"}, ROLE_KEYS)).via_index  # too short for trigrams


def test_search_keys_are_filled_for_members_added_through_the_orm(world):
    with tenant_context(world.acme.id):
        row = db.session.execute(
            text("SELECT search_name, search_email FROM memberships WHERE user_id = :u"), {"u": world.users["admin"].id}
        ).one()
    assert row == ("acme admin", "admin@acme.test")

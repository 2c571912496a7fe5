"""The console's figures stay cheap at scale: organizations' sizes and the
overview's user and activity figures are counted by a periodic job and read
from a cache, with the time they were counted; the size filter reads the
counted sizes."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from app.platform import stats
from tests import factories as f
from tests.conftest import url
from tests.tenancy.conftest import runtime_connect  # noqa: F401  (fixture)


def _refresh():
    stats.refresh()
    db.session.commit()


def test_refresh_counts_each_organizations_active_members(world, owner_engine):
    _refresh()
    with owner_engine.connect() as c:
        counts = dict(
            c.execute(text("SELECT slug, member_count FROM organizations WHERE slug IN ('acme', 'globex')")).all()
        )
    assert counts == {"acme": 6, "globex": 3}


def test_size_filter_lists_organizations_by_counted_members(console, world):
    solo = f.make_org("solo", "Solo Ltd", plan="free")
    f.add_member(solo, f.make_user("solo@solo.test", "Solo Owner"), "owner")
    _refresh()
    small = console.get(url(None, "/platform/organizations"), query_string={"size": "1"}).get_data(as_text=True)
    assert "Solo Ltd" in small and "Acme Corporation" not in small and "Globex" not in small
    mid = console.get(url(None, "/platform/organizations"), query_string={"size": "2-10"}).get_data(as_text=True)
    assert "Acme Corporation" in mid and "Globex" in mid and "Solo Ltd" not in mid
    # An unknown size is ignored (the whole list), never an error.
    r = console.get(url(None, "/platform/organizations"), query_string={"size": "huge"})
    assert r.status_code == 200 and "Solo Ltd" in r.get_data(as_text=True)


def test_overview_reads_cached_figures_with_their_time(console, world):
    _refresh()
    body = console.get(url(None, "/platform/")).get_data(as_text=True)
    assert "as counted" in body
    # A user added after the count is not counted until the next refresh.
    before = stats.overview().users
    f.make_user("late@example.test", "Late Comer")
    assert stats.overview().users == before
    _refresh()
    assert stats.overview().users == before + 1


def test_overview_counts_once_when_nothing_was_counted_yet(console, world, owner_engine):
    with owner_engine.begin() as c:
        c.execute(text("DELETE FROM platform_stats"))
    assert console.get(url(None, "/platform/")).status_code == 200
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM platform_stats")).scalar() == 1


def test_the_runtime_role_cannot_write_sizes_or_figures(world, runtime_connect):  # noqa: F811
    import psycopg
    import pytest

    for sql in (
        "UPDATE organizations SET member_count = 1",
        "INSERT INTO platform_stats (key, value) VALUES ('overview', '{}')",
    ):
        with runtime_connect() as conn:
            conn.execute("SELECT set_config('app.org_id', %s, false)", (str(world.acme.id),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)

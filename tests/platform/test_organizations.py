"""The console's organizations: the list, an organization's page, and the
actions (plan, suspend/reactivate, restore, purge), each with a reason
recorded in both logs; bad input is 422 beside the field and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from app.audit import PLATFORM_ORG_ID
from app.extensions import db
from app.scoping import all_organizations
from app.tenancy import lifecycle
from tests import factories as f
from tests.conftest import url


def _page(client, path="/platform/organizations", **params):
    r = client.get(url(None, path), query_string=params)
    assert r.status_code == 200, r.status_code
    return r.get_data(as_text=True)


# --------------------------------------------------------------------------- the list
def test_list_shows_every_organization_but_the_platform_itself(console, world):
    body = _page(console)
    assert "Acme Corporation" in body and "Globex" in body
    assert "Tenantry platform" not in body


def test_search_matches_name_address_domain_and_an_owners_email(console, world):
    with all_organizations(reason="test: a custom domain"):
        world.globex.custom_domain = "intranet.globex.example"
    db.session.commit()
    assert "Globex" in _page(console, q="globex") and "Acme Corporation" not in _page(console, q="globex")
    assert "Acme Corporation" in _page(console, q="acme corp")
    assert "Globex" in _page(console, q="intranet.globex")
    owner_hit = _page(console, q="owner@globex.test")
    assert "Globex" in owner_hit and "Acme Corporation" not in owner_hit
    # a member's e-mail is not an owner's: no match
    assert "Globex" not in _page(console, q="member@globex.test")


def test_search_treats_like_wildcards_literally(console, world):
    assert "No organizations match" in _page(console, q="%")


def test_filters_by_plan_and_status(console, world):
    body = _page(console, plan="free")
    assert "Globex" in body and "Acme Corporation" not in body
    with all_organizations(reason="test: suspend"):
        lifecycle.set_status(world.acme, "suspended", "unpaid")
    db.session.commit()
    body = _page(console, status="suspended")
    assert "Acme Corporation" in body and "Globex" not in body
    assert "Acme Corporation" not in _page(console, status="active")


def test_keyset_pages_neither_overlap_nor_skip(console, world):
    for i in range(55):
        f.make_org(f"bulk-{i:02d}", f"Bulk {i:02d}")
    seen, after, pages = [], "", 0
    while True:
        params = {"q": "bulk"} | ({"after": after} if after else {})
        r = console.get(url(None, "/platform/organizations"), query_string=params, headers={"HX-Request": "true"})
        body = r.get_data(as_text=True)
        assert "<html" not in body and "HX-Request" in r.headers.get("Vary", "")
        seen += [
            line.split(">")[1].split("<")[0] for line in body.splitlines() if 'href="/platform/organizations/' in line
        ]
        pages += 1
        marker = 'rel="next"'
        if marker not in body:
            break
        href = body.split(marker)[0].rsplit('href="', 1)[1].split('"')[0]
        after = href.split("after=")[1].split("&")[0]
    assert pages == 2
    assert seen == [f"Bulk {i:02d}" for i in range(55)]


def test_a_malformed_cursor_or_filter_shows_the_first_page(console, world):
    body = _page(console, after="!!not-a-cursor", plan="nonsense", status="weird", sort="x")
    assert "Acme Corporation" in body


# --------------------------------------------------------------------------- an organization's page
def test_organization_page_shows_owners_usage_entitlements_and_events(console, world):
    body = _page(console, f"/platform/organizations/{world.acme.id}")
    assert "owner@acme.test" in body
    assert "Seats" in body and "plan pro" in body  # usage row and its source
    assert "Audit retention (days)" in body


def test_unknown_or_malformed_organization_is_404(console, world):
    for oid in ("nope", "00000000-0000-0000-0000-00000000dead", str(PLATFORM_ORG_ID)):
        assert console.get(url(None, f"/platform/organizations/{oid}")).status_code == 404


# --------------------------------------------------------------------------- change plan
def test_change_plan_is_recorded_in_both_logs_with_the_reason(console, world, post, events, org_row):
    r = post(
        console,
        f"/platform/organizations/{world.acme.id}/plan",
        {"plan-plan": "enterprise", "plan-reason": "Signed", "plan-version": "1"},
    )
    assert r.status_code == 302
    assert org_row(world.acme.id)["plan_key"] == "enterprise"
    org_log = [e for e in events(world.acme.id) if e[0] == "org.plan_changed"]
    platform_log = [e for e in events(PLATFORM_ORG_ID) if e[0] == "platform.plan_changed"]
    assert org_log and org_log[0][2]["reason"] == "Signed"
    assert platform_log and platform_log[0][2]["organization"] == "acme"


def test_unknown_plan_is_422_beside_the_field_and_changes_nothing(console, world, post, events, org_row):
    r = post(
        console,
        f"/platform/organizations/{world.acme.id}/plan",
        {"plan-plan": "platinum", "plan-reason": "x", "plan-version": "1"},
    )
    assert r.status_code == 422
    assert "Choose one of the plans listed." in r.get_data(as_text=True)
    assert org_row(world.acme.id)["plan_key"] == "pro"
    assert not [e for e in events(world.acme.id) if e[0] == "org.plan_changed"]


def test_empty_reason_is_422_and_changes_nothing(console, world, post, org_row):
    r = post(
        console,
        f"/platform/organizations/{world.acme.id}/plan",
        {"plan-plan": "free", "plan-reason": "  ", "plan-version": "1"},
    )
    assert r.status_code == 422
    assert "Give a reason" in r.get_data(as_text=True)
    assert org_row(world.acme.id)["plan_key"] == "pro"


def test_a_limit_below_usage_is_explained_and_needs_a_confirmation(console, world, post, org_row):
    for i in range(5):
        f.add_member(world.acme, f.make_user(f"extra{i}@acme.test"), "member")
    path = f"/platform/organizations/{world.acme.id}/plan"
    r = post(console, path, {"plan-plan": "free", "plan-reason": "Downgrade", "plan-version": "1"})
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "uses 11 seats; the Free plan allows 10" in body and "Change the plan anyway" in body
    assert org_row(world.acme.id)["plan_key"] == "pro"
    r = post(console, path, {"plan-plan": "free", "plan-reason": "Downgrade", "plan-version": "1", "plan-confirm": "y"})
    assert r.status_code == 302
    assert org_row(world.acme.id)["plan_key"] == "free"


def test_a_plan_change_from_a_stale_page_is_409(console, world, post, org_row):
    r = post(
        console,
        f"/platform/organizations/{world.acme.id}/plan",
        {"plan-plan": "free", "plan-reason": "x", "plan-version": "7"},
    )
    assert r.status_code == 409
    assert org_row(world.acme.id)["plan_key"] == "pro"


# --------------------------------------------------------------------------- suspend and reactivate
def test_suspension_shows_its_reason_to_members_and_reactivation_lifts_it(console, world, post, login, events, org_row):
    r = post(console, f"/platform/organizations/{world.globex.id}/suspend", {"suspend-reason": "Unpaid invoice #42"})
    assert r.status_code == 302
    assert org_row(world.globex.id)["status"] == "suspended"
    member = login(world.users["globex_member"], "globex")
    page = member.get(url("globex", "/projects/"))
    assert page.status_code == 403 and "Unpaid invoice #42" in page.get_data(as_text=True)
    assert ("org.suspended", "user") in [(a, t) for a, t, _ in events(world.globex.id)]
    assert "platform.org_suspended" in [a for a, _, _ in events(PLATFORM_ORG_ID)]

    r = post(console, f"/platform/organizations/{world.globex.id}/reactivate", {"reactivate-reason": "Paid"})
    assert r.status_code == 302
    row = org_row(world.globex.id)
    assert row["status"] == "active" and row["suspension_reason"] is None
    assert member.get(url("globex", "/projects/")).status_code == 200
    assert "platform.org_reactivated" in [a for a, _, _ in events(PLATFORM_ORG_ID)]


def test_suspend_without_a_reason_is_422_and_changes_nothing(console, world, post, org_row, events):
    r = post(console, f"/platform/organizations/{world.globex.id}/suspend", {"suspend-reason": ""})
    assert r.status_code == 422 and "Give a reason" in r.get_data(as_text=True)
    assert org_row(world.globex.id)["status"] == "active"
    assert "platform.org_suspended" not in [a for a, _, _ in events(PLATFORM_ORG_ID)]


def test_reactivating_an_active_organization_is_422(console, world, post):
    r = post(console, f"/platform/organizations/{world.globex.id}/reactivate", {"reactivate-reason": "why"})
    assert r.status_code == 422


# --------------------------------------------------------------------------- restore and purge
def _delete(org, days_ago=0):
    with all_organizations(reason="test: delete"):
        lifecycle.delete(org)
        org.deleted_at = org.deleted_at - timedelta(days=days_ago)
    db.session.commit()


def test_restore_within_30_days_brings_the_organization_back(console, world, post, org_row, events):
    _delete(world.globex, days_ago=3)
    r = post(console, f"/platform/organizations/{world.globex.id}/restore", {"restore-reason": "Asked by owner"})
    assert r.status_code == 302
    assert org_row(world.globex.id)["deleted_at"] is None
    assert "platform.org_restored" in [a for a, _, _ in events(PLATFORM_ORG_ID)]


def test_restore_after_the_window_is_422_and_changes_nothing(console, world, post, org_row):
    _delete(world.globex, days_ago=31)
    r = post(console, f"/platform/organizations/{world.globex.id}/restore", {"restore-reason": "Too late"})
    assert r.status_code == 422 and "restore window has passed" in r.get_data(as_text=True)
    assert org_row(world.globex.id)["deleted_at"] is not None


def test_purge_needs_the_typed_address_and_then_removes_the_data(console, world, post, owner_engine, org_row):
    _delete(world.globex)
    path = f"/platform/organizations/{world.globex.id}/purge"
    r = post(console, path, {"purge-reason": "Owner asked", "purge-confirm": "globe"})
    assert r.status_code == 422 and "Type globex to confirm" in r.get_data(as_text=True)
    with owner_engine.connect() as c:
        count = "SELECT count(*) FROM projects WHERE organization_id = :o"
        assert c.execute(text(count), {"o": world.globex.id}).scalar() == 3
    r = post(console, path, {"purge-reason": "Owner asked", "purge-confirm": "globex"})
    assert r.status_code == 302
    assert org_row(world.globex.id)["purged_at"] is not None
    with owner_engine.connect() as c:
        assert c.execute(text(count), {"o": world.globex.id}).scalar() == 0
        assert c.execute(text(count), {"o": world.acme.id}).scalar() == 3


def test_a_live_organization_cannot_be_purged(console, world, post, org_row):
    r = post(
        console, f"/platform/organizations/{world.globex.id}/purge", {"purge-reason": "x", "purge-confirm": "globex"}
    )
    assert r.status_code == 422
    assert org_row(world.globex.id)["purged_at"] is None


@pytest.mark.parametrize("trigrams", [True, False], ids=["trigram-indexes", "no-pg_trgm"])
def test_search_finds_the_same_organizations_with_or_without_trigram_indexes(console, world, monkeypatch, trigrams):
    """The embedded PostgreSQL has no pg_trgm: the search then scans, and
    must answer the same as through the indexes."""
    from app.platform import organizations as orgs

    monkeypatch.setattr(orgs, "trigram_indexes", lambda: trigrams)
    assert "Globex" in _page(console, q="lobe") and "Acme Corporation" not in _page(console, q="lobe")
    assert "Globex" in _page(console, q="owner@globex.test")  # a whole address: exact
    partial = _page(console, q="owner@glo")  # part of an address: contains
    assert "Globex" in partial and "Acme Corporation" not in partial
    assert "No organizations match" in _page(console, q="zzzqqq")


def _naive(rows, q: str) -> set:
    """The search's meaning, as a plain filter over every organization:
    name, address or custom domain contains ``q`` (case-insensitively); an
    owner's e-mail equals a whole address, contains a term of three
    characters or more, and is not searched for a shorter one."""
    t = q.lower()
    whole = "@" in t and " " not in t and "." in t.rsplit("@", 1)[1]
    out = set()
    for oid, name, slug, domain, owners in rows:
        own = t in name.lower() or t in slug or t in (domain or "").lower()
        if own or any((e == t) if whole else (len(t) >= 3 and t in e) for e in owners):
            out.add(oid)
    return out


@pytest.mark.parametrize("trigrams", [True, False], ids=["trigram-indexes", "no-pg_trgm"])
def test_search_answers_as_a_naive_filter_over_a_few_hundred_organizations(world, app, owner_engine, trigrams):
    """Every page of every search, walked by its keyset cursor, holds exactly
    the organizations a plain filter over all of them finds, in order,
    whichever branch (name, address, domain, owner) matched."""
    import random

    from app.platform import organizations as orgs

    rng = random.Random(14)
    words = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "Ünïcode"]
    kinds = ["Labs", "Group", "Systems", "Works", "100%", "a_b"]
    with owner_engine.begin() as c:
        for i in range(300):
            oid = c.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, plan_key, custom_domain)"
                    " VALUES (gen_random_uuid(), :s, :n, 'free', :d) RETURNING id"
                ),
                {
                    "s": f"nf-{i:03d}-{rng.choice(words[:7])}",
                    "n": f"{rng.choice(words)} {rng.choice(kinds)} {i}",
                    "d": f"portal.{rng.choice(words[:7])}{i}.example" if i % 7 == 0 else None,
                },
            ).scalar_one()
            for j in range(rng.choice([0, 1, 1, 2])):
                uid = c.execute(
                    text("INSERT INTO users (id, email, name) VALUES (gen_random_uuid(), :e, 'x') RETURNING id"),
                    {"e": f"{rng.choice(words[:7])}.{i}.{j}@{rng.choice(['mail.test', 'corp.example'])}"},
                ).scalar_one()
                c.execute(
                    text("INSERT INTO memberships (organization_id, user_id, role) VALUES (:o, :u, 'owner')"),
                    {"o": oid, "u": uid},
                )
        rows = c.execute(
            text(
                "SELECT o.id, o.name, o.slug, o.custom_domain,"
                " coalesce(array_agg(lower(u.email)) FILTER (WHERE u.id IS NOT NULL), '{}')"
                " FROM organizations o LEFT JOIN memberships m ON m.organization_id = o.id AND m.role = 'owner'"
                " LEFT JOIN users u ON u.id = m.user_id WHERE o.id <> :p GROUP BY o.id"
            ),
            {"p": PLATFORM_ORG_ID},
        ).all()
        names = {r[0]: (r[1].lower(), r[0]) for r in rows}
        some_owner = next(e for r in rows for e in r[4])
    terms = [
        "acme",
        "ACME sys",
        "nf-01",
        "umbrella",
        "100%",
        "a_b",
        "ünï",
        "example",
        "ex",
        "a",
        "%",
        "_",
        "corp.example",
        "globex.1",
        "mail",
        some_owner,
        "nobody@mail.test",
        "zzzqqq",
        "wayne works 1",
    ]
    with app.test_request_context(url(None, "/platform/organizations")):
        orig = orgs.trigram_indexes
        orgs.trigram_indexes = lambda: trigrams
        try:
            for term in terms:
                for sort in ("name", "-name"):
                    seen, after = [], ""
                    while True:
                        page = orgs.list_organizations(orgs.OrgQuery(q=term, sort=sort, after=after))
                        seen += [r.org.id for r in page.rows]
                        if not page.next_cursor:
                            break
                        after = page.next_cursor
                    db.session.rollback()
                    want = sorted(_naive(rows, term), key=lambda oid: names[oid], reverse=sort == "-name")
                    assert seen == want, (term, sort, len(seen), len(want))
        finally:
            orgs.trigram_indexes = orig

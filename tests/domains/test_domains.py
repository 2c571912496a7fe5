"""Domains: add (TXT record shown), verify against a real DNS server, every
bad input 422 beside its field with nothing changed, one organization per
verified domain (race included), permissions, isolation, the plan feature."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from app.domains import names, services
from app.domains.models import Domain
from app.extensions import db
from app.scoping import tenant_context
from tests.conftest import UNKNOWN_ID, url
from tests.factories import make_org


def domains(owner_engine, org_id=None):
    sql = "SELECT * FROM domains" + (" WHERE organization_id = :o" if org_id else "") + " ORDER BY created_at"
    with owner_engine.connect() as c:
        return c.execute(text(sql), {"o": org_id}).mappings().all()


def actions(owner_engine, org_id, prefix="org.domain"):
    with owner_engine.connect() as c:
        return (
            c.execute(
                text("SELECT action FROM audit_events WHERE organization_id = :o AND action LIKE :p ORDER BY id"),
                {"o": org_id, "p": prefix + "%"},
            )
            .scalars()
            .all()
        )


def add(org, name):
    with tenant_context(org.id):
        d = services.add_domain(name)
        db.session.commit()
        return d.id, d.token


def admin(login, world):
    return login(world.users["admin"], "acme")


# --------------------------------------------------------------------------- add
def test_admin_adds_a_domain_and_the_page_shows_the_txt_record_to_publish(world, login, post, owner_engine):
    c = admin(login, world)
    assert c.get(url("acme", "/settings/domains/")).status_code == 200
    r = post(c, "acme", "/settings/domains/", {"name": "  Acme-Widgets.COM. "})
    assert r.status_code == 302
    [row] = domains(owner_engine, world.acme.id)
    assert row["name"] == "acme-widgets.com" and row["status"] == "pending" and len(row["token"]) == 32
    page = c.get(url("acme", r.headers["Location"])).get_data(as_text=True)
    assert "_tenantry.acme-widgets.com" in page
    assert f"tenantry-verification={row['token']}" in page
    assert "Verify now" in page
    assert actions(owner_engine, world.acme.id) == ["org.domain_added"]


def test_a_second_submit_of_the_add_form_adds_nothing_more(world, login, post, owner_engine):
    c = admin(login, world)
    form = {"name": "acme-widgets.com", "submit_key": "k" * 24}
    first = post(c, "acme", "/settings/domains/", form)
    second = post(c, "acme", "/settings/domains/", form)
    assert second.status_code == 302 and second.headers["Location"] == first.headers["Location"]
    assert len(domains(owner_engine, world.acme.id)) == 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Enter a domain"),
        ("not a domain", "no spaces"),
        ("acme", "full domain name"),
        ("https://acme.com/", "domain alone"),
        ("bob@acme.com", "domain alone"),
        ("192.168.1.1", "not an IP address"),
        ("-acme.com", "not a valid domain name"),
        ("a" * 64 + ".com", "not a valid domain name"),
        ("acme.123", "full domain name"),
        ("acme.localhost", "never reach the public DNS"),
        ("acme.tenantry.localhost", "never reach the public DNS"),
        ("gmail.com", "free e-mail provider"),
        ("Outlook.com", "free e-mail provider"),
        ("mail.yahoo.co.uk", "free e-mail provider"),
    ],
)
def test_an_invalid_or_free_mail_domain_is_422_beside_the_field_and_adds_nothing(
    world, login, post, owner_engine, name, message
):
    c = admin(login, world)
    r = post(c, "acme", "/settings/domains/", {"name": name})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'id="name-error"' in page and message in page
    assert domains(owner_engine) == []
    assert actions(owner_engine, world.acme.id) == []


def test_a_domain_already_on_the_page_is_422(world, login, post, owner_engine):
    add(world.acme, "acme-widgets.com")
    r = post(admin(login, world), "acme", "/settings/domains/", {"name": "ACME-widgets.com"})
    assert r.status_code == 422 and "already on this page" in r.get_data(as_text=True)
    assert len(domains(owner_engine)) == 1


def test_a_domain_another_organization_verified_is_422_already_claimed(world, login, post, owner_engine, dns_zone):
    did, token = add(world.globex, "shared-name.com")
    dns_zone.publish("_tenantry.shared-name.com", f"tenantry-verification={token}")
    with tenant_context(world.globex.id):
        services.verify_domain(db.session.get(Domain, (world.globex.id, did)))
        db.session.commit()
    r = post(admin(login, world), "acme", "/settings/domains/", {"name": "shared-name.com"})
    assert r.status_code == 422
    assert "already verified by another organization" in r.get_data(as_text=True)
    assert domains(owner_engine, world.acme.id) == []


def test_the_shipped_free_mail_list_holds_a_few_hundred_providers():
    listed = names.freemail_domains()
    assert len(listed) >= 250
    assert {"gmail.com", "outlook.com", "yahoo.com", "proton.me", "qq.com", "web.de"} <= listed
    assert all(d == d.strip().lower() and "." in d for d in listed)


def test_an_international_domain_is_stored_in_its_ascii_form(world):
    did, _ = add(world.acme, "bücher-acme.de")
    with tenant_context(world.acme.id):
        assert db.session.get(Domain, (world.acme.id, did)).name == "xn--bcher-acme-9db.de"


# --------------------------------------------------------------------------- verify
@pytest.mark.parametrize("where", ["_tenantry.acme-widgets.com", "acme-widgets.com"])
def test_verify_finds_the_record_on_the_asked_name_or_the_domain_itself(
    world, login, post, owner_engine, dns_zone, where
):
    did, token = add(world.acme, "acme-widgets.com")
    dns_zone.publish(where, "v=spf1 -all")
    dns_zone.publish(where, f"tenantry-verification={token}")
    c = admin(login, world)
    r = post(c, "acme", f"/settings/domains/{did}/verify")
    assert r.status_code == 302
    [row] = domains(owner_engine)
    assert row["status"] == "verified" and row["verified_at"] and row["last_checked_at"]
    assert row["record_seen_at"] and row["last_check_error"] is None
    assert actions(owner_engine, world.acme.id) == ["org.domain_added", "org.domain_verified"]
    assert "Verified" in c.get(url("acme", f"/settings/domains/{did}")).get_data(as_text=True)


def unchanged(owner_engine, before):
    [row] = domains(owner_engine)
    assert dict(row) == dict(before)


def test_a_missing_record_is_422_beside_the_button_and_records_the_failed_check(
    world, login, post, owner_engine, dns_zone
):
    """The check happened: the domain shows "failed" with the time of the
    check and what was missing, audited; the answer is still a 422 with the
    message beside the button."""
    did, _ = add(world.acme, "acme-widgets.com")
    c = admin(login, world)
    r = post(c, "acme", f"/settings/domains/{did}/verify")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'id="verify-error"' in page and "No TXT record" in page and "_tenantry.acme-widgets.com" in page
    assert "Checked at" in page and "Failed" in page and "last checked" in page
    [row] = domains(owner_engine)
    assert row["status"] == "failed" and row["last_checked_at"] is not None
    assert "No TXT record" in row["last_check_error"] and row["verified_at"] is None
    assert ("_tenantry.acme-widgets.com", "TXT") in dns_zone.questions
    assert ("acme-widgets.com", "TXT") in dns_zone.questions  # the domain itself is asked too
    assert actions(owner_engine, world.acme.id) == ["org.domain_added", "org.domain_check_failed"]
    with owner_engine.connect() as conn:
        ev = conn.execute(
            text("SELECT changes, metadata FROM audit_events WHERE action = 'org.domain_check_failed'")
        ).one()
    assert ev.changes == {"status": ["pending", "failed"]} and ev.metadata["outcome"] == "missing"
    # The page and the list say so afterwards.
    shown = c.get(url("acme", f"/settings/domains/{did}")).get_data(as_text=True)
    assert "Failed" in shown and "Last check (" in shown and "No TXT record" in shown
    listed = c.get(url("acme", "/settings/domains/")).get_data(as_text=True)
    assert "Failed" in listed and "Never" not in listed
    # Publishing the record and checking again verifies it.
    dns_zone.publish("_tenantry.acme-widgets.com", f"tenantry-verification={row['token']}")
    assert post(c, "acme", f"/settings/domains/{did}/verify").status_code == 302
    [row] = domains(owner_engine)
    assert row["status"] == "verified" and row["last_check_error"] is None
    assert actions(owner_engine, world.acme.id)[-1] == "org.domain_verified"


def test_a_record_with_another_token_is_422_naming_the_value_to_set(world, login, post, owner_engine, dns_zone):
    did, token = add(world.acme, "acme-widgets.com")
    dns_zone.publish("_tenantry.acme-widgets.com", "tenantry-verification=somebody-elses-token")
    r = post(admin(login, world), "acme", f"/settings/domains/{did}/verify")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "its value is not this domain" in page and f"tenantry-verification={token}" in page
    [row] = domains(owner_engine)
    assert row["status"] == "failed" and "its value is not this domain" in row["last_check_error"]


def test_a_verified_domain_whose_manual_check_fails_stays_verified_with_the_check_recorded(
    world, login, post, owner_engine, dns_zone
):
    """Like the daily re-check: a verified domain is unverified only after its
    record has been missing for 7 days; the failed check is still recorded."""
    did, token = add(world.acme, "acme-widgets.com")
    dns_zone.publish("_tenantry.acme-widgets.com", f"tenantry-verification={token}")
    c = admin(login, world)
    assert post(c, "acme", f"/settings/domains/{did}/verify").status_code == 302
    dns_zone.clear()
    r = post(c, "acme", f"/settings/domains/{did}/verify")
    assert r.status_code == 422 and "No TXT record" in r.get_data(as_text=True)
    [row] = domains(owner_engine)
    assert row["status"] == "verified" and "No TXT record" in row["last_check_error"]
    assert actions(owner_engine, world.acme.id)[-1] == "org.domain_check_failed"


def test_dns_that_does_not_answer_is_422_and_says_so(world, login, post, owner_engine, dns_zone):
    did, _ = add(world.acme, "acme-widgets.com")
    dns_zone.silent = True
    [before] = domains(owner_engine)
    r = post(admin(login, world), "acme", f"/settings/domains/{did}/verify")
    assert r.status_code == 422 and "DNS did not answer" in r.get_data(as_text=True)
    unchanged(owner_engine, before)


def test_verifying_a_domain_another_organization_verified_first_is_422_already_claimed(
    world, login, post, owner_engine, dns_zone
):
    acme_id, acme_token = add(world.acme, "shared-name.com")
    globex_id, globex_token = add(world.globex, "shared-name.com")
    dns_zone.publish("_tenantry.shared-name.com", f"tenantry-verification={acme_token}")
    dns_zone.publish("_tenantry.shared-name.com", f"tenantry-verification={globex_token}")
    c = login(world.users["globex_owner"], "globex")
    assert post(c, "globex", f"/settings/domains/{globex_id}/verify").status_code == 403  # globex is on Free
    with tenant_context(world.globex.id):
        services.verify_domain(db.session.get(Domain, (world.globex.id, globex_id)))
        db.session.commit()
    r = post(admin(login, world), "acme", f"/settings/domains/{acme_id}/verify")
    assert r.status_code == 422 and "already verified by another organization" in r.get_data(as_text=True)
    assert domains(owner_engine, world.acme.id)[0]["status"] == "pending"


def test_two_organizations_verifying_one_domain_at_once_end_with_one_verified(app, world, owner_engine, dns_zone):
    """The race the lock and the unique index close: both find the record,
    exactly one verification lands, the other is refused."""
    third = make_org("initech", "Initech", plan="pro")
    ids = {}
    for org in (world.acme, third):
        did, token = add(org, "contested.com")
        dns_zone.publish("_tenantry.contested.com", f"tenantry-verification={token}")
        ids[org.id] = did
    barrier = threading.Barrier(2)
    outcomes = []

    def verify(org_id):
        with app.app_context(), tenant_context(org_id):
            try:
                domain = db.session.get(Domain, (org_id, ids[org_id]))
                barrier.wait(5)
                services.verify_domain(domain)
                db.session.commit()
                outcomes.append("verified")
            except Exception as e:  # noqa: BLE001 (the refusal is the outcome)
                db.session.rollback()
                outcomes.append(type(e).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=verify, args=(o,)) for o in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["UserError", "verified"]
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM domains WHERE status = 'verified'")).scalar() == 1


def test_the_database_refuses_a_second_verified_row_for_one_name(world, owner_engine):
    with owner_engine.begin() as c:
        for org in (world.acme, world.globex):
            c.execute(
                text(
                    "INSERT INTO domains (organization_id, id, name, token, status, verified_at)"
                    " VALUES (:o, gen_random_uuid(), 'x-corp.com', 't', 'pending', NULL)"
                ),
                {"o": org.id},
            )
        c.execute(
            text("UPDATE domains SET status = 'verified', verified_at = now() WHERE organization_id = :o"),
            {"o": world.acme.id},
        )
    with pytest.raises(Exception, match="uq_domains_verified_name"), owner_engine.begin() as c:
        c.execute(
            text("UPDATE domains SET status = 'verified', verified_at = now() WHERE organization_id = :o"),
            {"o": world.globex.id},
        )


# --------------------------------------------------------------------------- settings, remove
def test_auto_join_settings_are_saved_audited_and_refuse_owner_or_unverified(
    world, login, post, owner_engine, dns_zone
):
    did, token = add(world.acme, "acme-widgets.com")
    c = admin(login, world)
    r = post(
        c,
        "acme",
        f"/settings/domains/{did}/settings",
        {"auto_join": "auto", "auto_join_role": "member", "version": "1"},
    )
    assert r.status_code == 422 and "Verify the domain first" in r.get_data(as_text=True)
    dns_zone.publish("acme-widgets.com", f"tenantry-verification={token}")
    assert post(c, "acme", f"/settings/domains/{did}/verify").status_code == 302
    version = str(domains(owner_engine)[0]["version"])
    r = post(
        c,
        "acme",
        f"/settings/domains/{did}/settings",
        {"auto_join": "auto", "auto_join_role": "owner", "version": version},
    )
    assert r.status_code == 422 and 'id="auto_join_role-error"' in r.get_data(as_text=True)
    for mode in ("sometimes", "always"):
        r = post(
            c,
            "acme",
            f"/settings/domains/{did}/settings",
            {"auto_join": mode, "auto_join_role": "viewer", "version": version},
        )
        assert r.status_code == 422 and 'id="auto_join-error"' in r.get_data(as_text=True)
    assert domains(owner_engine)[0]["auto_join"] == "off"
    r = post(
        c,
        "acme",
        f"/settings/domains/{did}/settings",
        {"auto_join": "auto", "auto_join_role": "viewer", "version": version},
    )
    assert r.status_code == 302
    row = domains(owner_engine)[0]
    assert (row["auto_join"], row["auto_join_role"]) == ("auto", "viewer")
    assert actions(owner_engine, world.acme.id)[-1] == "org.domain_settings_changed"
    stale = post(
        c,
        "acme",
        f"/settings/domains/{did}/settings",
        {"auto_join": "off", "auto_join_role": "viewer", "version": version},
    )
    assert stale.status_code == 409 and domains(owner_engine)[0]["auto_join"] == "auto"


def test_removing_a_domain_deletes_it_and_is_audited(world, login, post, owner_engine):
    did, _ = add(world.acme, "acme-widgets.com")
    r = post(admin(login, world), "acme", f"/settings/domains/{did}/delete")
    assert r.status_code == 302 and domains(owner_engine) == []
    assert actions(owner_engine, world.acme.id)[-1] == "org.domain_removed"


# --------------------------------------------------------------------------- who may
@pytest.mark.parametrize("role", ["manager", "member", "viewer"])
def test_members_without_settings_domain_get_403(world, login, post, role):
    did, _ = add(world.acme, "acme-widgets.com")
    c = login(world.users[role], "acme")
    assert c.get(url("acme", "/settings/domains/")).status_code == 403
    assert c.get(url("acme", f"/settings/domains/{did}")).status_code == 403
    assert post(c, "acme", "/settings/domains/", {"name": "other-acme.com"}).status_code == 403


def test_another_organizations_domain_is_404(world, login, post, owner_engine):
    did, _ = add(world.globex, "globex-corp.com")
    c = admin(login, world)
    for path in (f"/settings/domains/{did}", f"/settings/domains/{UNKNOWN_ID}", "/settings/domains/not-a-uuid"):
        assert c.get(url("acme", path)).status_code == 404
    assert post(c, "acme", f"/settings/domains/{did}/delete").status_code == 404
    assert post(c, "acme", f"/settings/domains/{did}/verify").status_code == 404
    assert len(domains(owner_engine, world.globex.id)) == 1
    assert "globex-corp.com" not in c.get(url("acme", "/settings/domains/")).get_data(as_text=True)


def test_a_plan_without_custom_domains_gets_a_403_page_that_says_so_and_offers_nothing(world, login, post):
    c = login(world.users["globex_owner"], "globex")
    r = c.get(url("globex", "/settings/domains/"))
    assert r.status_code == 403
    page = r.get_data(as_text=True)
    assert "not part of the Free plan" in page and "Add domain" not in page
    assert post(c, "globex", "/settings/domains/", {"name": "globex-corp.com"}).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(world, client):
    r = client.get(url("acme", "/settings/domains/"))
    assert r.status_code == 302 and "/login" in r.headers["Location"]

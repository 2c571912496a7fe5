from tests.conftest import url


def test_apex_landing_renders(client):
    r = client.get(url(None, "/"))
    assert r.status_code == 200
    assert b"Tenantry" in r.data


def test_member_sees_own_dashboard(world, login):
    c = login(world.users["owner"], "acme")
    r = c.get(url("acme", "/dashboard"))
    assert r.status_code == 200, r.data[:500]
    assert b"Acme Corporation" in r.data


def test_outsider_gets_404_on_org_host(world, login):
    c = login(world.users["outsider"], "acme")
    assert c.get(url("acme", "/dashboard")).status_code == 404

"""scim2-tester, the SCIM compliance checker, against the live server.

The app is served for real on a loopback port (the e2e suite's
``live_server``); scim2-tester's client speaks HTTP to acme's host with a
token made the way an admin makes one, discovers the server from its
``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas``, then
creates, reads, queries, replaces, patches and deletes Users and Groups.
The test fails on any check that does not pass (or is not an accepted
optional behaviour), listing each with its reason.
"""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.e2e.conftest import live_server  # noqa: F401 (the fixture)
from tests.scim.conftest import make_token, set_plan

# What a compliant server may answer: an optional feature it does not offer is not a failure.
PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}


def test_scim2_tester_finds_no_failed_check(world, owner_engine, live_server):  # noqa: F811
    set_plan(owner_engine, world.acme, "enterprise")
    token = make_token(world.acme, world.users["owner"], "scim2-tester")
    # *.localhost resolves in browsers, not in Python: connect to loopback
    # and name acme's host in the Host header, as a browser would send it.
    http = httpx2.Client(
        base_url=f"http://127.0.0.1:{live_server.port}/scim/v2",
        headers={"Host": f"acme.localhost:{live_server.port}", "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    results = check_server(client)
    assert len(results) > 30, [r.title for r in results]
    failed = [r for r in results if r.status not in PASSING]
    assert not failed, "\n".join(f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}" for r in failed)

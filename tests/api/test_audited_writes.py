"""Every write of the JSON API records exactly its audit events, as the
key (actor type ``api_key``), in the key's organization: the API's part of
``tests/audit/test_mutating_routes.py`` (whose clients are browsers)."""

from __future__ import annotations

from sqlalchemy import text

from app.permissions import ALL


def _events_since(owner_engine, org_id, since: int) -> list[tuple[str, str]]:
    with owner_engine.connect() as c:
        rows = c.execute(
            text("SELECT action, actor_type FROM audit_events WHERE organization_id = :o AND id > :s ORDER BY id"),
            {"o": org_id, "s": since},
        ).all()
    return [(r.action, r.actor_type) for r in rows]


def _last_id(owner_engine) -> int:
    with owner_engine.connect() as c:
        return c.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar()


def test_every_api_write_records_its_events_as_the_key(app, world, api, make_key, owner_engine, mailbox):
    _, key = make_key(world.acme, world.users["owner"], sorted(ALL))
    done: dict[str, list[str]] = {}

    def call(endpoint, expect, method, path, json=None, etag_of=None, status=(200, 201, 202, 204)):
        headers = {}
        if etag_of:
            headers["If-Match"] = api.get("acme", etag_of, key).headers["ETag"]
        before = _last_id(owner_engine)
        r = getattr(api, method)("acme", path, key, json=json, headers=headers)
        assert r.status_code in status, f"{endpoint}: {r.status_code} {r.get_data(as_text=True)[:400]}"
        got = _events_since(owner_engine, world.acme.id, before)
        assert [a for a, _ in got] == expect, f"{endpoint}: expected {expect}, got {got}"
        assert {t for _, t in got} <= {"api_key"}, f"{endpoint}: recorded as {got}"
        done[endpoint] = expect
        return r

    call(
        "api.update_organization",
        ["org.settings_changed"],
        "patch",
        "/organization",
        {"name": "Acme Co"},
        "/organization",
    )
    pid = call(
        "api.create_project",
        ["project.created"],
        "post",
        "/projects",
        {"name": "Apollo", "owner_id": str(world.users["owner"].id)},
    ).get_json()["id"]
    call(
        "api.update_project",
        ["project.updated"],
        "patch",
        f"/projects/{pid}",
        {"description": "Moon"},
        f"/projects/{pid}",
    )
    call("api.delete_project", ["project.deleted"], "delete", f"/projects/{pid}")
    role = call(
        "api.create_role",
        ["role.created"],
        "post",
        "/roles",
        {"name": "Auditors", "permissions": ["org:view", "audit:view"]},
    ).get_json()["key"]
    call(
        "api.update_role",
        ["role.updated"],
        "patch",
        f"/roles/{role}",
        {"description": "Read the log"},
        f"/roles/{role}",
    )
    uid = world.users["member"].id
    call("api.change_role", ["member.role_changed"], "patch", f"/members/{uid}", {"role": "viewer"}, f"/members/{uid}")
    call("api.deactivate_member", ["member.deactivated"], "post", f"/members/{uid}/deactivate")
    call("api.reactivate_member", ["member.reactivated"], "post", f"/members/{uid}/reactivate")
    call("api.remove_member", ["member.removed"], "delete", f"/members/{uid}")
    inv = call(
        "api.create_invitations",
        ["member.invited"],
        "post",
        "/invitations",
        {"emails": ["new@acme.test"], "role": "viewer"},
    ).get_json()["invited"][0]["id"]
    call("api.resend_invitation", ["member.invitation_resent"], "post", f"/invitations/{inv}/resend")
    call("api.revoke_invitation", ["member.invitation_revoked"], "delete", f"/invitations/{inv}")
    hook = call(
        "api.create_webhook",
        ["webhook.created"],
        "post",
        "/webhooks",
        {"url": "https://93.184.215.14/hook", "event_types": ["project.created"]},
    ).get_json()["id"]
    w = f"/webhooks/{hook}"
    call("api.update_webhook", ["webhook.updated"], "patch", w, {"description": "CRM"}, w)
    call("api.rotate_webhook_secret", ["webhook.secret_rotated"], "post", f"{w}/rotate-secret")
    sent = call("api.send_test_event", ["webhook.test_sent"], "post", f"{w}/test").get_json()["delivery_id"]
    call("api.redeliver", ["webhook.redelivered"], "post", f"{w}/deliveries/{sent}/redeliver")
    call("api.replay_failed", ["webhook.replay_started"], "post", f"{w}/replay", {"since": "2026-01-01T00:00:00Z"})
    call("api.disable_webhook", ["webhook.disabled"], "post", f"{w}/disable")
    call("api.enable_webhook", ["webhook.enabled"], "post", f"{w}/enable")
    call("api.delete_webhook", ["webhook.deleted"], "delete", w)

    writes = {
        r.endpoint
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.") and (r.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert set(done) == writes, f"API writes without an audit expectation here: {sorted(writes - set(done))}"

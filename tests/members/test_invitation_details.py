"""Invitations, the details an invitee and an admin need: a personal message
(length-limited, escaped) and "invited by" in the mail, the list and the
accept page; changing a pending invitation's role (versioned, audited, safe
against an accept); inviting many people from a CSV upload with each row's
outcome exact."""

from __future__ import annotations

import io
import re

from tests.conftest import Mailbox, csrf_token, url
from tests.factories import add_member, make_org, make_user
from tests.members.conftest import (
    add_members,
    invitation,
    invitations,
    invite_row,
    link_in,
    membership,
)


def invite(c, emails, role="member", message="", slug="acme"):
    return c.post(
        url(slug, "/members/invite"),
        data={"csrf_token": csrf_token(c, slug), "emails": emails, "role": role, "message": message},
    )


def html_of(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


# --------------------------------------------------------------------------- message and inviter
def test_personal_message_and_inviter_reach_the_mail_and_the_accept_page_escaped(world, app, login, mailbox):
    c = login(world.users["admin"], "acme")
    note = "Welcome aboard!\n<script>alert(1)</script> & see you Monday"
    assert invite(c, "fresh@example.test", message=note).status_code == 302
    inv = invitations(world.acme)[0]
    assert inv.message == note and inv.invited_by == world.users["admin"].id
    msg = mailbox.last("fresh@example.test")
    assert "Acme Admin invited you" in Mailbox.text(msg) and "<script>alert(1)</script> & see you" in Mailbox.text(msg)
    html = html_of(msg)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; see you Monday" in html and "<script>" not in html
    link, _token = link_in(msg)
    page = app.test_client().get(link).get_data(as_text=True)
    assert "Acme Admin invited" in page
    assert re.search(r'id="invite-message">.*&lt;script&gt;alert\(1\)&lt;/script&gt; &amp; see you', page, re.S)
    assert "<script>alert(1)</script>" not in page


def test_a_message_over_500_characters_is_422_beside_the_field_and_nobody_is_invited(world, login, mailbox):
    c = login(world.users["admin"], "acme")
    r = invite(c, "fresh@example.test", message="x" * 501)
    assert r.status_code == 422
    assert re.search(rb'id="message-error"[^>]*>Keep the message to 500 characters', r.data)
    assert invitations(world.acme) == [] and mailbox.messages == []


def test_the_invitation_list_shows_who_invited(world, login):
    invite_row(world.acme, "a@example.test", invited_by=world.users["owner"].id)
    page = login(world.users["admin"], "acme").get(url("acme", "/members?status=invited")).get_data(as_text=True)
    assert re.search(r"Invitation</span><div class=\"small muted\">by Acme Owner</div>", page)


# --------------------------------------------------------------------------- changing the role
def edit(c, inv_id, role, version):
    return c.post(
        url("acme", f"/members/invitations/{inv_id}/role"),
        data={"csrf_token": csrf_token(c, "acme"), "role": role, "version": version},
    )


def test_changing_a_pending_invitations_role_is_audited_and_the_invitee_joins_with_it(world, login, audit_events):
    inv_id, token = invite_row(world.acme, "outsider@example.test", role="member")
    c = login(world.users["admin"], "acme")
    page = c.get(url("acme", f"/members/invitations/{inv_id}")).get_data(as_text=True)
    assert 'name="version" type="hidden" value="1"' in page or 'type="hidden" name="version" value="1"' in page
    r = edit(c, inv_id, "viewer", "1")
    assert r.status_code == 302
    assert invitation(world.acme, inv_id).role == "viewer" and invitation(world.acme, inv_id).version == 2
    [(action, kw)] = audit_events
    assert action == "member.invitation_role_changed"
    assert kw["before"]["role"] == "Member" and kw["after"]["role"] == "Viewer"
    outsider = login(world.users["outsider"], "acme")
    assert outsider.get(url("acme", f"/invitations/{token}")).status_code == 302
    assert membership(world.acme, world.users["outsider"].id).role == "viewer"


def test_a_stale_invitation_edit_is_409_and_changes_nothing(world, login, audit_events):
    inv_id, _ = invite_row(world.acme, "x@example.test", role="member")
    c = login(world.users["admin"], "acme")
    assert edit(c, inv_id, "viewer", "1").status_code == 302
    r = edit(c, inv_id, "manager", "1")  # drawn before the first save
    assert r.status_code == 409 and b"changed by someone else" in r.data
    assert b'value="viewer" selected' in r.data or b'selected value="viewer"' in r.data  # the current state
    assert invitation(world.acme, inv_id).role == "viewer"
    assert [a for a, _ in audit_events] == ["member.invitation_role_changed"]


def test_an_invitation_accepted_meanwhile_keeps_its_role_and_the_edit_is_409(world, login, audit_events):
    inv_id, token = invite_row(world.acme, "outsider@example.test", role="member")
    login(world.users["outsider"], "acme").get(url("acme", f"/invitations/{token}"))
    c = login(world.users["admin"], "acme")
    r = edit(c, inv_id, "viewer", "1")
    assert r.status_code == 409 and b"was accepted meanwhile" in r.data
    assert membership(world.acme, world.users["outsider"].id).role == "member"
    assert "member.invitation_role_changed" not in [a for a, _ in audit_events]


def test_an_invitation_role_the_editor_may_not_give_is_422_beside_the_field(world, login):
    inv_id, _ = invite_row(world.acme, "x@example.test", role="member")
    r = edit(login(world.users["admin"], "acme"), inv_id, "owner", "1")
    assert r.status_code == 422 and re.search(rb'id="role-error"[^>]*>Choose a role you are allowed to give', r.data)
    assert invitation(world.acme, inv_id).role == "member"
    # Another organization's invitation is not found.
    g_id, _ = invite_row(world.globex, "g@example.test")
    assert edit(login(world.users["admin"], "acme"), g_id, "viewer", "1").status_code == 404


# --------------------------------------------------------------------------- CSV upload
def upload(c, content: bytes, role="member", slug="acme", message=""):
    return c.post(
        url(slug, "/members/invite/csv"),
        data={
            "csrf_token": csrf_token(c, slug),
            "role": role,
            "message": message,
            "file": (io.BytesIO(content), "people.csv"),
        },
        content_type="multipart/form-data",
    )


def outcomes(html: str) -> list[tuple[str, str, str, str]]:
    table = html[html.index('id="csv-rows"') :]
    return [
        (line, email, role, outcome)
        for line, email, role, outcome in re.findall(
            r"<tr>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td><span class=\"badge[^\"]*\">([^<]+)</span>",
            table,
        )
    ]


def test_csv_upload_invites_each_row_and_reports_each_outcome_exactly(world, login, mailbox, audit_events):
    small = make_org("tiny", "Tiny Co", plan="free")  # 10 seats
    boss = make_user("boss@tiny.test", "Tiny Boss")
    add_member(small, boss, "owner")
    admin = make_user("admin@tiny.test", "Tiny Admin")
    add_member(small, admin, "admin")
    add_members(small, 4, prefix="crew")  # 6 active
    invite_row(small, "pending@example.test")  # 7 seats taken: 3 left
    content = (
        b"email,role\n"
        b"ann@example.test\n"  # 2: invited (default role)
        b"bob@example.test,Viewer\n"  # 3: invited as Viewer
        b"crew0001@tiny.test\n"  # 4: already a member
        b"pending@example.test,viewer\n"  # 5: already invited
        b"not-an-address,viewer\n"  # 6: invalid e-mail
        b"cy@example.test,Astronaut\n"  # 7: unknown role
        b"dee@example.test,Owner\n"  # 8: a role an admin may not give
        b"ann@example.test\n"  # 9: listed twice
        b"eve@example.test\n"  # 10: invited (the last seat)
        b"fay@example.test,manager\n"  # 11: over the seat limit
    )
    r = upload(login(admin, "tiny"), content, slug="tiny", message="Hello from Tiny")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert outcomes(html) == [
        ("2", "ann@example.test", "Member", "Invited"),
        ("3", "bob@example.test", "Viewer", "Invited"),
        ("4", "crew0001@tiny.test", "Member", "Already a member"),
        ("5", "pending@example.test", "Viewer", "Already invited"),
        ("6", "not-an-address", "viewer", "Invalid e-mail"),
        ("7", "cy@example.test", "Astronaut", "Unknown role"),
        ("8", "dee@example.test", "Owner", "Role you may not give"),
        ("9", "ann@example.test", "Member", "Listed twice"),
        ("10", "eve@example.test", "Member", "Invited"),
        ("11", "fay@example.test", "Manager", "Over the seat limit"),
    ]
    assert "3 of 10 rows invited" in html
    got = {i.email: i for i in invitations(small) if i.state == "pending"}
    assert set(got) == {"pending@example.test", "ann@example.test", "bob@example.test", "eve@example.test"}
    assert got["bob@example.test"].role == "viewer" and got["ann@example.test"].message == "Hello from Tiny"
    assert got["eve@example.test"].invited_by == admin.id
    invited = [kw for a, kw in audit_events if a == "member.invited"]
    assert len(invited) == 3 and all(kw["metadata"]["via"] == "csv" for kw in invited)
    assert {m["To"] for m in mailbox.messages} == {"ann@example.test", "bob@example.test", "eve@example.test"}


def test_csv_upload_bad_files_are_422_beside_the_file_and_invite_nobody(world, login, mailbox, monkeypatch):
    from app.members import invitations as service

    c = login(world.users["admin"], "acme")
    for content, message in [
        (b"", "Choose a CSV file to upload."),
        (b"email,role\n", "The file has no rows to invite."),
        ("café@example.test\n".encode("latin-1"), "The file is not UTF-8 text."),
        (b"a@example.test\n" * 0 + b"x" * (service.CSV_MAX_BYTES + 1), "larger than 256 KB"),
        ("".join(f"p{i}@example.test\n" for i in range(service.CSV_MAX_ROWS + 1)).encode(), "upload at most 500"),
    ]:
        r = upload(c, content)
        assert r.status_code == 422, message
        assert re.search(rf'id="file-error"[^>]*>[^<]*{re.escape(message)}', r.get_data(as_text=True)), message
    r = upload(c, b"a@example.test\n", role="owner")
    assert r.status_code == 422 and b'id="role-error"' in r.data
    r = upload(c, b"a@example.test\n", message="x" * 501)
    assert r.status_code == 422 and b'id="message-error"' in r.data
    assert invitations(world.acme) == [] and mailbox.messages == []


def test_csv_upload_needs_the_invite_permission(world, login):
    r = upload(login(world.users["manager"], "acme"), b"a@example.test\n")
    assert r.status_code == 403
    assert invitations(world.acme) == []


def test_csv_upload_with_a_file_in_a_text_field_is_422_beside_it(world, login):
    c = login(world.users["admin"], "acme")
    r = c.post(
        url("acme", "/members/invite/csv"),
        data={
            "csrf_token": csrf_token(c, "acme"),
            "role": "member",
            "message": (io.BytesIO(b"hello"), "note.txt"),
            "file": (io.BytesIO(b"a@example.test\n"), "people.csv"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 422 and re.search(rb'id="message-error"[^>]*>Send text here, not a file.', r.data)
    assert invitations(world.acme) == []

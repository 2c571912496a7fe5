"""Notification e-mails of an organization's admins, sent as jobs.

Changes that other areas make (a member joined, a role changed) are heard
through ``hooks.event_recorded``: their audit event is recorded in their
transaction, and the mail is enqueued in the same one, so a change that
rolls back mails nobody. Who receives each is ``app.tenancy.notify``'s
``recipients(org, kind)``: members whose role may act on it and who did not
turn it off. The webhooks area asks the same for its "endpoint disabled"
mail; the security policy's own change mails from ``app.settings.services``.
"""

from __future__ import annotations

from flask import current_app, g, has_request_context, url_for
from sqlalchemy import select

from app import hooks
from app.extensions import db
from app.mail import queue_mail
from app.tenancy import notify
from app.tenancy.models import Organization
from app.web import hosts

# Audit action -> notification kind, for the changes heard through the hook.
ACTION_KINDS = {"member.joined": "member_joined", "member.role_changed": "role_changed"}


def links(org: Organization, endpoint: str = "dashboard.index", **values) -> tuple[str, str]:
    """``(page link, preferences link)`` on the organization's host, from any context (request or job)."""
    if has_request_context():
        # Not a nested test_request_context: popping it would run the
        # request's teardown (and reset its organization scope) mid-request.
        return _links(org, endpoint, values)
    with current_app.test_request_context(base_url=hosts.apex_url("/")):
        return _links(org, endpoint, values)


def _links(org: Organization, endpoint: str, values: dict) -> tuple[str, str]:
    page = url_for(endpoint, **values) if endpoint in current_app.view_functions else "/"
    return hosts.org_url(org, page), hosts.org_url(org, url_for("settings.notifications"))


def send(org: Organization, kind: str, subject: str, headline: str, lines: list[str], endpoint: str, **values) -> int:
    """Mail ``kind`` to its recipients in ``org`` (jobs, in the current transaction); returns how many."""
    recipients = notify.recipients(org, kind)
    if not recipients:
        return 0
    link, prefs = links(org, endpoint, **values)
    for m in recipients:
        queue_mail(
            m.user.email,
            subject,
            "notification",
            user=m.user,
            org=org,
            kind=notify.KINDS[kind],
            headline=headline,
            lines=lines,
            link=link,
            preferences_link=prefs,
        )
    return len(recipients)


def _change_lines(changes) -> list[str]:
    out = []
    for key, value in (changes or {}).items() if isinstance(changes, dict) else ():
        if isinstance(value, dict) and "before" in value:
            out.append(f"{key}: {value.get('before')} → {value.get('after')}")
        elif isinstance(value, list | tuple) and len(value) == 2:
            out.append(f"{key}: {value[0]} → {value[1]}")
    return out


@hooks.event_recorded.connect
def _mail_on_event(row: dict) -> None:
    """A member joined or a role changed: mail the admins who opted in. Cheap
    for every other event (one dictionary look-up)."""
    kind = ACTION_KINDS.get(row.get("action"))
    if kind is None:
        return
    current = g.get("org") if has_request_context() else None
    if current is not None and current.id == row["organization_id"]:
        org = current  # the row the request already read
    else:
        org = db.session.execute(select(Organization).where(Organization.id == row["organization_id"])).scalar_one()
    who = row.get("target_label") or "A member"
    if kind == "member_joined":
        send(org, kind, f"{who} joined {org.name}", f"{who} joined {org.name}.", [], "members.index")
    else:
        send(
            org,
            kind,
            f"A role changed in {org.name}",
            f"{row.get('actor_label') or 'Someone'} changed the role of {who} in {org.name}.",
            _change_lines(row.get("changes")),
            "members.index",
        )

"""The members blueprint and what its two view modules share.

The routes live in ``views`` (the list, bulk actions, a member's page and
changes) and ``invitation_views`` (inviting, resending, revoking, accepting),
both on ``bp``. Here too: the area's navigation entries and dashboard figure,
and the table row both modules answer with after an inline change.
"""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, g, request, url_for
from markupsafe import Markup, escape

from app.members import invitations, listing, memberships
from app.rbac import services as rbac
from app.web import hosts, nav, templating
from app.web.fragments import FragmentCache
from app.web.htmx import render

bp = Blueprint("members", __name__)
nav.link(bp, "index", "Members", section="admin", order=10)
nav.entity_page(bp, ("member", "user"), "show", lambda user_id: {"user_id": user_id})
nav.entity_page(bp, "invitation", "index", lambda _id: {"status": "invited"})
nav.dashboard_figure(bp, "Seats used", memberships.dashboard_figure, order=10)
nav.getting_started(
    bp,
    "invite",
    "Invite your team",
    view="new",
    done=invitations.team_invited,
    hint="Invite people by e-mail; each joins with the role you choose.",
    order=10,
)


def back(default_endpoint: str = "members.index") -> str:
    """Where a no-JavaScript form goes back to: a local ``next`` or the list."""
    return hosts.safe_next(request.values.get("next"), default=url_for(default_endpoint))


def roles_and_keys():
    roles = rbac.all_roles()
    return roles, {r.key: r for r in roles}


def choices_and_touchable() -> tuple[list[tuple[str, str]], set[str]]:
    """The roles the actor may give (for role selects; none without
    ``members:update_role``) and the role keys of members the actor may act
    on at all: roles within the actor's own permissions, Owner only for
    Owners. Controls for anyone else are hidden; the services refuse anyway."""
    allowed = rbac.role_choices(g.membership)
    return (allowed if "members:update_role" in g.permissions else []), {k for k, _ in allowed}


def row_urls() -> dict:
    """Each row action's URL with ``__id__`` for the id: built once per page,
    not 12 ``url_for`` calls for each of 50 rows (a third of the render time)."""
    urls = {
        name: url_for(f"members.{name}", user_id="__id__")
        for name in ("update", "show", "row", "deactivate", "reactivate", "delete")
    }
    urls.update(
        {name: url_for(f"members.{name}", invitation_id="__id__") for name in ("resend", "revoke", "show_invitation")}
    )
    return urls


def role_options(choices: list[tuple[str, str]]) -> dict[str, Markup]:
    """The role select's ``<option>`` list for each current role key, built
    once a page: a row picks its own instead of looping over the roles (a
    page of 50 rows had 300 option renders)."""
    plain = [(k, f'<option value="{escape(k)}"', f">{escape(n)}</option>") for k, n in choices]
    return {
        current: Markup("".join(f"{head}{' selected' if k == current else ''}{tail}" for k, head, tail in plain))
        for current, _ in choices
    }


def role_badges(by_key: dict) -> dict[str, Markup]:
    """Each role's badge (``members/_macros.html`` ``role_badge``), built once
    a page; a key no role has (a deleted custom role) reads "Custom role".
    Importing the macro in ``_row.html`` loaded the macro module once a row."""
    badges = {
        key: Markup(f'<span class="badge badge--{escape(r.badge)}">{escape(r.name)}</span>')
        for key, r in by_key.items()
    }
    return defaultdict(lambda: Markup('<span class="badge badge--custom">Custom role</span>'), badges)


def row_permissions() -> dict:
    """What the actor may do to a row, asked once a page, not once a row
    (members/_row.html renders 50 of them)."""
    held = g.permissions
    return {
        "may_update_role": "members:update_role" in held,
        "may_remove": "members:remove" in held,
        "may_invite": "members:invite" in held,
    }


def row_context(**extra) -> dict:
    roles, by_key = roles_and_keys()
    choices, touchable = choices_and_touchable()
    return {
        "roles": roles,
        "role_by_key": by_key,
        "choices": choices,
        "choice_keys": {k for k, _ in choices},
        "role_options": role_options(choices),
        "role_badges": role_badges(by_key),
        "touchable": touchable,
        "me": g.membership.user_id,
        "back": back(),
        "urls": row_urls(),
        **row_permissions(),
        **extra,
    }


_ROWS = FragmentCache("members/_row.html")


def rows_html(rows: list[listing.Row], ctx: dict) -> Markup:
    """The list's rows, each rendered once per process and kept until the
    member (or invitation) changes. The key holds every input of
    ``members/_row.html`` in a list page (``ctx``: ``_list_context``): the
    row's values and whether it has expired; the viewer (``me``) and what
    they may do (the three ``may_*``, whether the row's role is one they
    may touch or give); the role's options and badge; the action URLs; the
    page's time zone. The one-row renders of HTMX actions (with an error, a
    note, a confirmation) do not come here."""
    page_key = (
        ctx["me"],
        ctx["may_update_role"],
        ctx["may_remove"],
        ctx["may_invite"],
        tuple(ctx["urls"].values()),
        templating.page_zone(),
    )
    options, badges, choice_keys, touchable = (
        ctx["role_options"],
        ctx["role_badges"],
        ctx["choice_keys"],
        ctx["touchable"],
    )
    out = []
    for row in rows:
        rk = row.role_key
        key = (
            page_key,
            row.kind,
            row.id,
            row.name,
            row.email,
            rk,
            row.status,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
            row.is_expired,
            row.invited_by,
            row.role_source,
            rk in choice_keys,
            rk in touchable,
            options.get(rk),
            badges[rk],
        )
        out.append(_ROWS.render(key, **{**ctx, "rows": (row,)}))
    return Markup("").join(out)


def render_row(row: listing.Row, status: int = 200, **extra):
    return render("members/_row.html", None, status=status, **row_context(rows=[row], **extra))

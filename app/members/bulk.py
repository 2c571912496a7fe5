"""Bulk actions on the member list: one action over many selected rows, as a summary.

Each row goes through the same service as the single-row action (its
guardrails, its audit event) in its own savepoint, so a refusal is counted
and never undoes the others.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.errors import UserError
from app.extensions import db
from app.members import two_factor
from app.members.invitations import resend, revoke
from app.members.memberships import assignable_role, deactivate, reactivate, refuse_self, remove
from app.members.models import Invitation
from app.rbac import services as rbac
from app.tenancy.models import Membership
from app.util import parse_uuid

log = logging.getLogger("tenantry.members")

# --------------------------------------------------------------------------- bulk
BULK_ACTIONS = {
    # action: (permission, label, past tense, applies to)
    "role": ("members:update_role", "Change role to", "changed", "member"),
    "deactivate": ("members:remove", "Deactivate", "deactivated", "member"),
    "reactivate": ("members:remove", "Reactivate", "reactivated", "member"),
    "remove": ("members:remove", "Remove", "removed", "member"),
    "resend": ("members:invite", "Resend invitation", "resent", "invitation"),
    "revoke": ("members:invite", "Revoke invitation", "revoked", "invitation"),
    "remind_2fa": ("settings:security", "Remind to set up two-factor", "reminded", "member"),
}
BULK_LIMIT = 5000


def parse_row_keys(values) -> list[tuple[str, uuid.UUID]]:
    """``m:<uuid>`` / ``i:<uuid>`` values from a bulk form; ``UserError`` on anything else."""
    out, seen = [], set()
    for v in values:
        kind, _, raw = (v or "").partition(":")
        rid = parse_uuid(raw)
        if kind not in ("m", "i") or rid is None:
            raise UserError("The selection contains a row that is not valid. Reload the page and try again.", "ids")
        key = ("member" if kind == "m" else "invitation", rid)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one selected row: ``changed``, ``unchanged``, ``refused``,
    ``not_found`` or ``skipped``, with the reason when it was not changed."""

    who: str  # "Name <e-mail>" of a member, the address of an invitation, or "(not found)"
    outcome: str
    reason: str = ""

    @property
    def changed(self) -> bool:
        return self.outcome == "changed"


# Why a row was left as it was, per action (the service answered "no change").
UNCHANGED_REASON = {
    "role": "already has that role",
    "deactivate": "already deactivated",
    "reactivate": "already active",
    "remind_2fa": "already uses two-factor authentication",
}


@dataclass
class BulkResult:
    action: str
    changed: int = 0
    unchanged: int = 0
    refused: dict = field(default_factory=dict)  # reason -> count
    not_found: int = 0
    wrong_kind: int = 0
    truncated: bool = False
    mails: list = field(default_factory=list)  # (invitation, token) whose mail to queue
    rows: list = field(default_factory=list)  # RowOutcome of every selected row, in selection order

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())

    @property
    def ok(self) -> bool:
        return not (self.refused or self.not_found)

    @property
    def changed_rows(self) -> list[RowOutcome]:
        return [r for r in self.rows if r.changed]

    @property
    def other_rows(self) -> list[RowOutcome]:
        """Rows not changed, each with its reason (refusals first)."""
        order = {"refused": 0, "not_found": 1, "unchanged": 2, "skipped": 3}
        return sorted((r for r in self.rows if not r.changed), key=lambda r: order.get(r.outcome, 9))

    def summary(self) -> str:
        """``12 changed, 1 refused: X is the last Owner…``"""
        _perm, _label, past, applies = BULK_ACTIONS[self.action]
        parts = [f"{self.changed} {past}"]
        if self.unchanged:
            already = {"role": "in that role", "remind_2fa": "using two-factor authentication"}.get(self.action, "so")
            parts.append(f"{self.unchanged} already {already}")
        if self.refused:
            reasons = "; ".join(f"{r.rstrip('.')}{f' (×{n})' if n > 1 else ''}" for r, n in self.refused.items())
            parts.append(f"{self.refused_count} refused: {reasons}")
        if self.not_found:
            parts.append(f"{self.not_found} not found")
        if self.wrong_kind:
            parts.append(f"{self.wrong_kind} skipped: not {'members' if applies == 'member' else 'invitations'}")
        text_out = ", ".join(parts) + "."
        if self.truncated:
            text_out += f" Only the first {BULK_LIMIT} rows were processed; run it again for the rest."
        return text_out


def bulk(
    action: str, keys: list[tuple[str, uuid.UUID]], actor: Membership, org, new_role: str | None = None
) -> BulkResult:
    """Apply ``action`` to each selected row, one at a time, each in its own savepoint.

    Every id is looked up again inside the current organization (another
    organization's id is "not found") and every change goes through the same
    service as the single-row action, with its guardrails and its own audit
    event. A refusal is counted with its reason and never undoes the others:
    the result is a summary, not all-or-nothing.
    """
    if action not in BULK_ACTIONS:
        raise UserError("Choose an action.", "action")
    perm, _label, _past, applies = BULK_ACTIONS[action]
    if perm not in actor.permissions:
        raise UserError("Your role does not allow this action.", "action")
    if action == "role":
        assignable_role(new_role or "", actor)
    if not keys:
        raise UserError("Select at least one row.", "ids")
    result = BulkResult(action)
    if len(keys) > BULK_LIMIT:
        keys, result.truncated = keys[:BULK_LIMIT], True
    wanted, targets, result.wrong_kind = _load_targets(applies, keys)
    for rid in wanted:
        target = targets.get(rid)
        if target is None:
            result.not_found += 1
            result.rows.append(RowOutcome("(not found)", "not_found", "no longer in this organization"))
            continue
        who = describe(target)
        try:
            with db.session.begin_nested():
                changed = _bulk_one(action, target, actor, org, new_role, result)
        except UserError as e:
            result.refused[e.message] = result.refused.get(e.message, 0) + 1
            result.rows.append(RowOutcome(who, "refused", e.message))
            continue
        except IntegrityError:
            log.exception("bulk %s failed for %s", action, rid)
            result.refused["could not be changed"] = result.refused.get("could not be changed", 0) + 1
            result.rows.append(RowOutcome(who, "refused", "could not be changed"))
            continue
        if changed:
            result.changed += 1
            result.rows.append(RowOutcome(who, "changed"))
        else:
            result.unchanged += 1
            result.rows.append(RowOutcome(who, "unchanged", UNCHANGED_REASON.get(action, "no change")))
    return result


def describe(target) -> str:
    """How a row is named in a preview or a result: ``Name <e-mail>`` or the invited address."""
    if isinstance(target, Invitation):
        return target.email
    return f"{target.user.name} <{target.user.email}>"


def _load_targets(applies: str, keys) -> tuple[list, dict, int]:
    """``(ids of the rows the action applies to, id -> row found in this
    organization, how many rows are of the other kind)``; chunks of 1,000 ids."""
    wanted = [rid for kind, rid in keys if kind == applies]
    targets = {}
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        if applies == "member":
            stmt = select(Membership).where(Membership.user_id.in_(chunk))
            targets.update((m.user_id, m) for m in db.session.execute(stmt).unique().scalars())
        else:
            stmt = select(Invitation).where(Invitation.id.in_(chunk))
            targets.update((inv.id, inv) for inv in db.session.execute(stmt).unique().scalars())
    return wanted, targets, len(keys) - len(wanted)


# --------------------------------------------------------------------------- preview
WHAT_HAPPENS = {
    "role": "Each member gets the new role; their permissions change as below.",
    "deactivate": "They lose access to the organization until someone reactivates them. Nothing is deleted.",
    "reactivate": "They get their access back with the role they had, if the plan has a seat for each.",
    "remove": "They leave the organization at once; their accounts remain. Projects they own stay, without an owner.",
    "resend": "Each gets a new link, valid for 7 days; the link they have stops working.",
    "revoke": "Their links stop working at once and their seats are freed.",
    "remind_2fa": "Each member without a second factor gets an e-mail asking them to set one up "
    "(with the deadline, if the organization requires it). Members who have one are left alone.",
}


@dataclass(frozen=True)
class RoleShift:
    """Members moving from one role to the new one, and the permissions they gain and lose."""

    from_name: str
    count: int
    gained: list
    lost: list


@dataclass
class BulkPreview:
    """What a bulk action will do, before it runs: for the confirmation step."""

    action: str
    applies: str  # "member" | "invitation"
    targets: list  # rows found, in selection order
    new_role: object = None  # rbac.RoleInfo for a role change
    shifts: list = field(default_factory=list)  # RoleShift, for a role change
    already: int = 0  # role change: members already holding the new role
    not_found: int = 0
    wrong_kind: int = 0
    truncated: bool = False

    @property
    def count(self) -> int:
        return len(self.targets)

    @property
    def names(self) -> list[str]:
        return [describe(t) for t in self.targets]

    @property
    def headline(self) -> str:
        """``Change the role of 12 members to Manager?`` and the like."""
        n = self.count
        noun = f"{n} {self.applies}{'' if n == 1 else 's'}"
        if self.action == "role":
            return f"Change the role of {noun} to {self.new_role.name}?"
        verb = {
            "deactivate": "Deactivate",
            "reactivate": "Reactivate",
            "remove": "Remove",
            "resend": "Resend",
            "revoke": "Revoke",
            "remind_2fa": "E-mail a two-factor reminder to",
        }[self.action]
        return f"{verb} {noun}?"

    @property
    def what_happens(self) -> str:
        return WHAT_HAPPENS[self.action]


def preview(action: str, keys: list[tuple[str, uuid.UUID]], actor: Membership, new_role: str | None = None):
    """What ``bulk(action, keys, ...)`` would do, changing nothing: the same
    checks of the request (``UserError`` for no action, no permission, a role
    the actor may not give, an empty selection), the rows found in this
    organization, and for a role change the permissions each group of members
    gains and loses. Guardrails that depend on each row (the last Owner, more
    powerful members) are answered row by row when the action runs."""
    if action not in BULK_ACTIONS:
        raise UserError("Choose an action.", "action")
    perm, _label, _past, applies = BULK_ACTIONS[action]
    if perm not in actor.permissions:
        raise UserError("Your role does not allow this action.", "action")
    info = assignable_role(new_role or "", actor) if action == "role" else None
    if not keys:
        raise UserError("Select at least one row.", "ids")
    truncated = len(keys) > BULK_LIMIT
    keys = keys[:BULK_LIMIT]
    wanted, targets, wrong_kind = _load_targets(applies, keys)
    found = [targets[rid] for rid in wanted if rid in targets]
    p = BulkPreview(
        action,
        applies,
        found,
        new_role=info,
        not_found=len(wanted) - len(found),
        wrong_kind=wrong_kind,
        truncated=truncated,
    )
    if info is not None:
        groups: dict[str, tuple] = {}
        for m in found:
            old = rbac.role_of(m)
            if old.key == info.key:
                p.already += 1
                continue
            known = groups.get(old.key)
            groups[old.key] = (old, (known[1] if known else 0) + 1)
        for old, n in sorted(groups.values(), key=lambda g: -g[1]):
            p.shifts.append(
                RoleShift(
                    old.name,
                    n,
                    sorted(info.permissions - old.permissions),
                    sorted(old.permissions - info.permissions),
                )
            )
    return p


def _bulk_one(action, target, actor, org, new_role, result: BulkResult) -> bool:
    if action == "role":
        refuse_self(target, actor, "change the role of")
        return rbac.change_role(target, new_role, actor)
    if action == "deactivate":
        return deactivate(target, actor)
    if action == "reactivate":
        return reactivate(target, actor, org)
    if action == "remove":
        remove(target, actor)
        return True
    if action == "resend":
        result.mails.append((target, resend(target, actor, org)))
        return True
    if action == "revoke":
        revoke(target, actor)
        return True
    if action == "remind_2fa":
        return two_factor.remind(target, actor, org)
    raise UserError("Choose an action.")

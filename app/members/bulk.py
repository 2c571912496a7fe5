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

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())

    @property
    def ok(self) -> bool:
        return not (self.refused or self.not_found)

    def summary(self) -> str:
        """``12 changed, 1 refused: X is the last Owner…``"""
        _perm, _label, past, applies = BULK_ACTIONS[self.action]
        parts = [f"{self.changed} {past}"]
        if self.unchanged:
            parts.append(f"{self.unchanged} already {'so' if self.action != 'role' else 'in that role'}")
        if self.refused:
            reasons = "; ".join(f"{r}{f' (×{n})' if n > 1 else ''}" for r, n in self.refused.items())
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
    wanted = [rid for kind, rid in keys if kind == applies]
    result.wrong_kind = len(keys) - len(wanted)
    targets = {}
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        if applies == "member":
            stmt = select(Membership).where(Membership.user_id.in_(chunk))
            targets.update((m.user_id, m) for m in db.session.execute(stmt).unique().scalars())
        else:
            stmt = select(Invitation).where(Invitation.id.in_(chunk))
            targets.update((inv.id, inv) for inv in db.session.execute(stmt).unique().scalars())
    for rid in wanted:
        target = targets.get(rid)
        if target is None:
            result.not_found += 1
            continue
        try:
            with db.session.begin_nested():
                changed = _bulk_one(action, target, actor, org, new_role, result)
        except UserError as e:
            result.refused[e.message] = result.refused.get(e.message, 0) + 1
            continue
        except IntegrityError:
            log.exception("bulk %s failed for %s", action, rid)
            result.refused["could not be changed"] = result.refused.get("could not be changed", 0) + 1
            continue
        if changed:
            result.changed += 1
        else:
            result.unchanged += 1
    return result


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
    raise UserError("Choose an action.")

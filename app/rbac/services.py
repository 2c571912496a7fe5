"""Roles: who may hold, grant, shape and give away which permissions.

Every function here works inside the current organization (the ORM hook and
RLS scope every query), checks its guardrails itself (views check the route's
permission too, but a service never trusts its caller), raises a
``UserError`` with a message fit for the user, records an audit event, and
never commits: the view commits, so the change and its audit event land in
one transaction or not at all.

Guardrails, in one place:

* **No escalation.** Nobody grants a permission they do not hold: not by
  assigning a role, not by creating or editing a custom role, not by
  duplicating one. Nobody changes, edits or removes something that holds
  more power than they do (a member, or a role, granting a permission the
  actor lacks): demoting someone more powerful is escalation in reverse.
* **Owners.** Only a holder of ``members:manage_owners`` makes, changes or
  removes an Owner. The last active Owner can be neither demoted nor removed,
  nor leave; ownership moves only by an explicit transfer.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

from flask import current_app, g, has_app_context
from sqlalchemy import event, func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit, hooks
from app.auth.models import User
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.permissions import ALL, PERMISSIONS, ROLE_ORDER, SYSTEM_ROLES
from app.rbac.models import Role
from app.scoping import current_org_id
from app.tenancy.entitlements import entitled
from app.tenancy.models import Membership, Organization
from app.util import parse_uuid
from app.web.access import access_of

CUSTOM_PREFIX = "custom:"
NAME_MAX = 64
DESCRIPTION_MAX = 500


# --------------------------------------------------------------------------- roles as values
@dataclass(frozen=True)
class RoleInfo:
    """A system or custom role, seen the same way by views and templates."""

    key: str  # "owner" … "viewer" or "custom:<uuid>"
    name: str
    description: str
    permissions: frozenset[str]
    system: bool
    role: Role | None = field(default=None, compare=False)

    @property
    def param(self) -> str:
        """The role's identifier in URLs: the system key, or the custom role's id."""
        return self.key if self.system else str(self.role.id)

    @property
    def badge(self) -> str:
        return self.key if self.system else "custom"


def _system_info(key: str) -> RoleInfo:
    r = SYSTEM_ROLES[key]
    return RoleInfo(key, r.name, r.description, r.permissions, True)


def _custom_info(role: Role) -> RoleInfo:
    return RoleInfo(
        f"{CUSTOM_PREFIX}{role.id}",
        role.name,
        role.description or "",
        frozenset(role.permissions or ()) & ALL,
        False,
        role,
    )


def custom_role_by_id(role_id) -> Role | None:
    """A custom role of the current organization, or ``None`` (another organization's is ``None`` too)."""
    rid = parse_uuid(role_id)
    if rid is None:
        return None
    return db.session.execute(select(Role).where(Role.id == rid)).scalar_one_or_none()


def get_role(key: str | None) -> RoleInfo | None:
    """The role named by ``key``: a system key, ``custom:<uuid>`` or a bare custom role id.

    ``None`` for anything else, including a custom role of another organization.
    """
    key = (key or "").strip()
    if key in SYSTEM_ROLES:
        return _system_info(key)
    if key.startswith(CUSTOM_PREFIX):
        key = key[len(CUSTOM_PREFIX) :]
    role = custom_role_by_id(key)
    return _custom_info(role) if role else None


def role_of(membership: Membership) -> RoleInfo:
    """The role a membership holds."""
    if membership.role:
        return _system_info(membership.role)
    if membership.custom_role is not None:
        return _custom_info(membership.custom_role)
    return RoleInfo(membership.role_key, membership.role_name, "", frozenset(), False)


def all_roles() -> list[RoleInfo]:
    """System roles (Owner first), then the organization's custom roles by name.

    Read once per transaction and organization (a members page asks three
    times); never stale: a Role written in this transaction (flushed or
    still pending in the session) drops the memo, and a new transaction
    (the next request, job or command step) reads again."""
    memo = g.get("_all_roles") if has_app_context() else None
    key = (current_org_id(), db.session().get_transaction())
    if memo is not None and key[1] is not None and memo[0] == key and not _roles_pending():
        return memo[1]
    custom = db.session.execute(select(Role).order_by(func.lower(Role.name))).scalars().all()
    roles = [_system_info(k) for k in ROLE_ORDER] + [_custom_info(r) for r in custom]
    if has_app_context():
        g._all_roles = ((current_org_id(), db.session().get_transaction()), roles)
    return roles


def _roles_pending() -> bool:
    s = db.session
    return any(isinstance(o, Role) for o in (*s.new, *s.dirty, *s.deleted))


def _forget_roles(*_args) -> None:
    if has_app_context():
        g.pop("_all_roles", None)


for _event in ("after_insert", "after_update", "after_delete"):
    event.listen(Role, _event, _forget_roles)
# A rolled-back (sub)transaction may have held a role the memo saw.
event.listen(Session, "after_soft_rollback", _forget_roles)


def member_counts() -> dict[str, int]:
    """Active members per role key."""
    rows = db.session.execute(
        select(Membership.role, Membership.custom_role_id, func.count())
        .where(Membership.status == "active")
        .group_by(Membership.role, Membership.custom_role_id)
    ).all()
    return {(r if r else f"{CUSTOM_PREFIX}{cid}"): n for r, cid, n in rows}


def _holders_stmt(info: RoleInfo):
    stmt = select(Membership)
    if info.system:
        return stmt.where(Membership.role == info.key)
    return stmt.where(Membership.custom_role_id == info.role.id)


def members_with_role(info: RoleInfo, include_inactive: bool = False) -> list[Membership]:
    """The members holding ``info``, by name (active only unless asked)."""
    stmt = _holders_stmt(info).join(User, User.id == Membership.user_id).order_by(func.lower(User.name))
    if not include_inactive:
        stmt = stmt.where(Membership.status == "active")
    return list(db.session.execute(stmt).unique().scalars())


def active_members() -> list[Membership]:
    """Every active member of the organization, by name."""
    return list(
        db.session.execute(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.status == "active")
            .order_by(func.lower(User.name))
        )
        .unique()
        .scalars()
    )


PICK_LIMIT = 20  # matches a member picker offers at once: type more to narrow


def search_members(
    q: str, limit: int = PICK_LIMIT, not_role: str | None = None, not_user=None, any_status: bool = False
) -> list[Membership]:
    """Active members whose name or e-mail contains ``q`` (any case), by name,
    at most ``limit``: what a member picker offers as you type
    (``any_status``: deactivated members too, e.g. to filter the audit log).

    ``not_role`` leaves out the holders of that role key (they cannot be
    given it again); ``not_user`` leaves out one member (yourself). Searches
    the lower-cased copies of name and e-mail kept on ``memberships`` (no
    join before the cut); ``users`` is joined for the rows returned only.
    """
    needle = " ".join((q or "").split()).lower()[:100]
    stmt = select(Membership)
    if not any_status:
        stmt = stmt.where(Membership.status == "active")
    if needle:
        haystack = Membership.search_name.op("||")(literal_column("' '")).op("||")(Membership.search_email)
        stmt = stmt.where(func.strpos(haystack, needle) > 0)
    if not_role:
        info = get_role(not_role)
        if info is not None and info.system:
            stmt = stmt.where(or_(Membership.role.is_(None), Membership.role != info.key))
        elif info is not None:
            stmt = stmt.where(or_(Membership.custom_role_id.is_(None), Membership.custom_role_id != info.role.id))
    if not_user is not None:
        stmt = stmt.where(Membership.user_id != not_user)
    stmt = stmt.order_by(Membership.search_name, Membership.user_id).limit(limit)
    return list(db.session.execute(stmt).unique().scalars())


def membership_of(user_id) -> Membership | None:
    """The membership of ``user_id`` in the current organization (any status), or ``None``."""
    uid = parse_uuid(user_id)
    if uid is None:
        return None
    return db.session.execute(select(Membership).where(Membership.user_id == uid)).unique().scalar_one_or_none()


# --------------------------------------------------------------------------- assignment
def _perm_list(perms) -> str:
    return ", ".join(sorted(perms))


def _is_owner(m: Membership) -> bool:
    return m.role == "owner"


def _active_owner_ids(lock: bool = True) -> list[uuid.UUID]:
    # FOR UPDATE: two Owners demoting each other at the same moment must not
    # both see "another Owner remains".
    stmt = select(Membership.user_id).where(Membership.role == "owner", Membership.status == "active")
    if lock:
        stmt = stmt.with_for_update()
    return list(db.session.execute(stmt).scalars())


def _is_last_owner(m: Membership) -> bool:
    if not _is_owner(m) or m.status != "active":
        return False
    return [uid for uid in _active_owner_ids() if uid != m.user_id] == []


def may_touch(target: Membership, actor: Membership, verb: str) -> str | None:
    """Why ``actor`` may not ``verb`` ``target`` (``"remove"``, ``"sign out"``…),
    or ``None``: the one rule for acting on another member's account.

    Only a holder of ``members:manage_owners`` acts on an Owner, and nobody
    acts on someone holding a permission they lack themselves (escalation in
    reverse). Acting on yourself is never refused here; the caller decides
    whether it may be done to oneself at all.
    """
    if target.user_id == actor.user_id:
        return None
    held = actor.permissions
    if _is_owner(target) and "members:manage_owners" not in held:
        return f"Only an Owner can {verb} an Owner."
    beyond = role_of(target).permissions - held
    if beyond:
        return (
            f"{target.user.name} holds permissions you do not have ({_perm_list(beyond)}); "
            f"only someone who holds them can {verb} this member."
        )
    return None


def _check_may_touch(target: Membership, actor: Membership, verb: str) -> None:
    reason = may_touch(target, actor, verb)
    if reason:
        raise UserError(reason)


def role_choices(actor: Membership) -> list[tuple[str, str]]:
    """The roles ``actor`` may assign, as ``(key, name)``: every role whose
    permissions the actor holds; Owner only for holders of ``members:manage_owners``."""
    held = actor.permissions
    out = []
    for info in all_roles():
        if info.key == "owner" and "members:manage_owners" not in held:
            continue
        if info.permissions <= held:
            out.append((info.key, info.name))
    return out


def change_role(target: Membership, new_role_key: str, actor: Membership) -> bool:
    """Give ``target`` the role ``new_role_key``; ``True`` when something changed.

    Raises ``UserError`` when: the role is unknown (or another
    organization's); the actor lacks ``members:update_role``; the new role
    grants a permission the actor lacks; the target or the new role is Owner
    and the actor cannot manage Owners; the target holds permissions the actor
    lacks; or the target is the last active Owner and would stop being one.
    Records ``member.role_changed`` with the role names before and after.
    The role's source becomes ``manual`` (a member managed by SSO or SCIM
    keeps it until the directory next changes their groups:
    ``app.rbac.group_roles``).
    """
    new = get_role(new_role_key)
    if new is None:
        raise UserError("Choose one of this organization's roles.")
    if "members:update_role" not in actor.permissions:
        raise UserError("Your role does not allow changing members' roles.")
    old = role_of(target)
    if new.key == old.key:
        return False
    _check_may_touch(target, actor, "change the role of")
    if new.key == "owner" and "members:manage_owners" not in actor.permissions:
        raise UserError("Only an Owner can make someone an Owner.")
    beyond = new.permissions - actor.permissions
    if beyond:
        raise UserError(f"{new.name} grants permissions you do not have ({_perm_list(beyond)}); you cannot assign it.")
    if _is_last_owner(target):
        raise UserError(
            f"{target.user.name} is the last Owner. Make someone else an Owner (or transfer ownership) first."
        )
    old_source = target.role_source
    target.role = new.key if new.system else None
    target.custom_role_id = None if new.system else new.role.id
    # A person chose this role: it is no longer the directory's (SSO or
    # SCIM) until the member's groups next change (app.rbac.group_roles).
    target.role_source = "manual"
    db.session.flush()
    db.session.expire(target, ["custom_role"])
    audit.record(
        "member.role_changed",
        target=target,
        before={"role": old.name, "role_key": old.key, "role_source": old_source},
        after={"role": new.name, "role_key": new.key, "role_source": "manual"},
        metadata={"user_id": str(target.user_id), "email": target.user.email},
    )
    return True


def check_can_remove(target: Membership, actor: Membership) -> None:
    """Raise ``UserError`` unless ``actor`` may remove (or deactivate) ``target``.

    Leaving (``target`` is the actor) needs no permission; removing someone
    else needs ``members:remove``. Owners are removed only by Owners, nobody
    removes a member more powerful than themselves, and the last active Owner
    can neither be removed nor leave.
    """
    leaving = target.user_id == actor.user_id
    if not leaving:
        if "members:remove" not in actor.permissions:
            raise UserError("Your role does not allow removing members.")
        _check_may_touch(target, actor, "remove")
    if _is_last_owner(target):
        if leaving:
            raise UserError(
                "You are the last Owner, so you cannot leave. Transfer ownership to another member, "
                "or delete the organization, first."
            )
        raise UserError(f"{target.user.name} is the last Owner and cannot be removed.")


def transfer_ownership(new_owner: Membership, actor: Membership) -> None:
    """Make ``new_owner`` an Owner and the acting Owner an Admin, in one step.

    Only an Owner (holding ``org:transfer``) transfers; the new Owner must be
    another active member who is not already an Owner. Records
    ``org.ownership_transferred``.
    """
    if not _is_owner(actor) or "org:transfer" not in actor.permissions:
        raise UserError("Only an Owner can transfer ownership.")
    if new_owner.user_id == actor.user_id:
        raise UserError("Choose another member: you are already the Owner.", field="user_id")
    if new_owner.status != "active":
        raise UserError("Choose an active member.", field="user_id")
    if _is_owner(new_owner):
        raise UserError(f"{new_owner.user.name} is already an Owner.", field="user_id")
    _active_owner_ids()  # lock the Owners while they change
    before = role_of(new_owner)
    new_owner.role, new_owner.custom_role_id = "owner", None
    actor.role, actor.custom_role_id = "admin", None
    db.session.flush()
    db.session.expire(new_owner, ["custom_role"])
    audit.record(
        "org.ownership_transferred",
        target=new_owner,
        before={"owner": actor.user.email, "new_owner_role": before.name},
        after={"owner": new_owner.user.email, "previous_owner_role": SYSTEM_ROLES["admin"].name},
        metadata={"from_user_id": str(actor.user_id), "to_user_id": str(new_owner.user_id)},
    )


def explain(membership: Membership) -> list[tuple[str, str]]:
    """ "Why can they?": each permission the member holds, in catalogue order,
    with the name of the role that grants it (one role per member)."""
    held = membership.permissions
    name = membership.role_name
    return [(p.name, name) for p in PERMISSIONS if p.name in held]


# --------------------------------------------------------------------------- custom roles
@dataclass(frozen=True)
class RoleChanges:
    """What saving a role changed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[str, str] | None = None
    description_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.description_changed)

    @property
    def summary(self) -> str:
        """``Added audit:view; removed projects:delete`` (or ``No changes``)."""
        parts = []
        if self.renamed:
            parts.append(f"renamed {self.renamed[0]} to {self.renamed[1]}")
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.description_changed:
            parts.append("changed the description")
        text = "; ".join(parts) or "no changes"
        return text[0].upper() + text[1:]


def _require_manage(actor: Membership) -> None:
    if "roles:manage" not in actor.permissions:
        raise UserError("Your role does not allow managing roles.")


def _clean_name(name: str | None, exclude_id=None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give the role a name.", "name")
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    if name.lower() in {r.name.lower() for r in SYSTEM_ROLES.values()} | set(SYSTEM_ROLES):
        raise UserError(f"{name} is a system role; choose another name.", "name")
    stmt = select(func.count()).select_from(Role).where(func.lower(Role.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Role.id != exclude_id)
    if db.session.execute(stmt).scalar_one():
        raise UserError("Another role already has this name.", "name")
    return name


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise UserError(f"Use at most {DESCRIPTION_MAX} characters.", "description")
    return description


# --------------------------------------------------------------------------- offered permissions
_ENFORCED_KEY = "tenantry_enforced_permissions"


def _built_permissions() -> frozenset[str]:
    """Permissions some part of the running app enforces: a registered view
    requires it, or the catalogue marks it ``checked_in_code``. Computed once
    per app (the views do not change once it serves)."""
    cached = current_app.extensions.get(_ENFORCED_KEY)
    if cached is None:
        names = {p.name for p in PERMISSIONS if p.checked_in_code}
        for view in current_app.view_functions.values():
            access = access_of(view) or {}
            if access.get("kind") == "permission":
                names.update(access.get("permissions", ()))
        cached = current_app.extensions[_ENFORCED_KEY] = frozenset(names) & ALL
    return cached


def offered_permissions(org: Organization) -> frozenset[str]:
    """The permissions a custom role of ``org`` may be given: those of features
    that exist (``_built_permissions``) and that ``org``'s plan includes
    (``entitled(org, feature)`` for a permission that names a feature).

    A permission of a feature not built yet guards nothing, so offering it
    would only mislead; when the feature's views are registered it is
    offered without a change here.
    """
    built = _built_permissions()
    return frozenset(p.name for p in PERMISSIONS if p.name in built and (p.feature is None or entitled(org, p.feature)))


def offered_for(actor: Membership) -> frozenset[str]:
    """``offered_permissions`` of the actor's organization (already loaded: no query)."""
    return offered_permissions(db.session.get(Organization, actor.organization_id))


def _clean_permissions(permissions, actor: Membership, held_before=()) -> list[str]:
    """The permissions asked for, checked: known, offered in this organization
    (or already held by the role: a permission that stopped being offered is
    kept, not silently dropped), and held by the actor. Catalogue order."""
    wanted = set(permissions or ())
    unknown = wanted - ALL
    if unknown:
        raise UserError(f"Unknown permission(s): {_perm_list(unknown)}.", "permissions")
    not_offered = wanted - offered_for(actor) - set(held_before)
    if not_offered:
        raise UserError(
            f"Not available in this organization (the feature does not exist or is not in its plan): "
            f"{_perm_list(not_offered)}.",
            "permissions",
        )
    beyond = wanted - actor.permissions
    if beyond:
        raise UserError(f"You cannot grant permissions you do not have yourself: {_perm_list(beyond)}.", "permissions")
    return [p.name for p in PERMISSIONS if p.name in wanted]  # catalogue order


def _check_within_actor(role: Role, actor: Membership, verb: str) -> None:
    beyond = set(role.permissions or ()) - actor.permissions
    if beyond:
        raise UserError(
            f"{role.name} grants permissions you do not have ({_perm_list(beyond)}); "
            f"only someone who holds them can {verb} it."
        )


def _flush_unique(role: Role) -> None:
    # The unique index on lower(name) is the final word when two admins race.
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise UserError("Another role already has this name.", "name") from None


def create_role(name: str, description: str, permissions, actor: Membership) -> Role:
    """Create a custom role. Raises ``UserError`` (with ``field``) when the name
    is empty, too long, a system role's or already used (case-insensitively),
    or when a permission is unknown or not held by the actor. Records ``role.created``."""
    _require_manage(actor)
    role = Role(
        name=_clean_name(name),
        description=_clean_description(description),
        permissions=_clean_permissions(permissions, actor),
    )
    db.session.add(role)
    _flush_unique(role)
    audit.record(
        "role.created",
        target=role,
        after={"name": role.name, "description": role.description, "permissions": list(role.permissions)},
    )
    return role


def update_role(
    role: Role,
    name: str | None = None,
    description: str | None = None,
    permissions=None,
    actor: Membership | None = None,
    version=None,
) -> RoleChanges:
    """Edit a custom role (``None`` leaves a field as it is) and say what changed.

    Same checks as ``create_role``; besides, a role granting a permission the
    actor lacks cannot be edited by them at all. Records ``role.updated`` with
    the permission sets before and after, and what was added and removed.

    The role is locked and re-read first, so the checks and the audit
    "before" see what it holds now; ``version`` (the one the editor was drawn
    from) differing from it raises ``StaleEdit`` (409), nothing written.
    """
    _require_manage(actor)
    lock_for_edit(role, version)
    _check_within_actor(role, actor, "edit")
    before_perms = list(role.permissions or ())
    before = {"name": role.name, "description": role.description, "permissions": before_perms}
    new_name = _clean_name(name, exclude_id=role.id) if name is not None else role.name
    new_desc = _clean_description(description) if description is not None else role.description
    if permissions is None:
        new_perms = before_perms
    else:
        # The editor shows only offered permissions: one the role holds that
        # is not offered (any more) is kept as it was, not removed unseen.
        hidden = set(before_perms) - offered_for(actor)
        wanted = set(_clean_permissions(permissions, actor, held_before=before_perms)) | hidden
        new_perms = [p.name for p in PERMISSIONS if p.name in wanted]
    changes = RoleChanges(
        added=tuple(p for p in new_perms if p not in before_perms),
        removed=tuple(p.name for p in PERMISSIONS if p.name in before_perms and p.name not in new_perms),
        renamed=(role.name, new_name) if new_name != role.name else None,
        description_changed=new_desc != (role.description or ""),
    )
    if not changes:
        return changes
    role.name, role.description, role.permissions = new_name, new_desc, new_perms
    _flush_unique(role)
    audit.record(
        "role.updated",
        target=role,
        before=before,
        after={"name": new_name, "description": new_desc, "permissions": new_perms},
        metadata={"added": list(changes.added), "removed": list(changes.removed)},
    )
    return changes


def _copy_name(base: str) -> str:
    taken = {n.lower() for n in db.session.execute(select(Role.name)).scalars()}
    stem = f"Copy of {base}"[:NAME_MAX]
    name, n = stem, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name = stem[: NAME_MAX - len(suffix)] + suffix
        n += 1
    return name


def duplicate_role(source_key: str, actor: Membership) -> tuple[Role, frozenset[str]]:
    """A new custom role "Copy of <source>" starting from a system or custom role.

    Permissions the actor does not hold are left out (no escalation by
    copying); returns the new role and the permissions left out. Records
    ``role.created`` (with the source).
    """
    _require_manage(actor)
    source = get_role(source_key)
    if source is None:
        raise UserError("That role does not exist.")
    dropped = source.permissions - actor.permissions
    role = Role(
        name=_copy_name(source.name),
        description=source.description,
        permissions=[p.name for p in PERMISSIONS if p.name in source.permissions - dropped],
    )
    db.session.add(role)
    _flush_unique(role)
    audit.record(
        "role.created",
        target=role,
        after={"name": role.name, "description": role.description, "permissions": list(role.permissions)},
        metadata={"duplicated_from": source.key, "left_out": sorted(dropped)},
    )
    return role, frozenset(dropped)


def delete_role(role: Role, actor: Membership | None = None) -> None:
    """Delete a custom role. Refused (``UserError`` naming the members to
    reassign) while anyone, active or deactivated, holds it, or while another
    area still uses it (``hooks.role_in_use``: a pending invitation offers it),
    and refused to an actor lacking any permission it grants. Records
    ``role.deleted``."""
    if actor is not None:
        _require_manage(actor)
        _check_within_actor(role, actor, "delete")
    holders = members_with_role(_custom_info(role), include_inactive=True)
    if holders:
        names = ", ".join(f"{m.user.name} ({m.user.email})" for m in holders)
        raise UserError(f"{role.name} is still assigned. Give these members another role first: {names}.")
    # Other areas keep references to roles (an invitation offers one): they say
    # whether the role is still in use, and let go of what is only history.
    in_use = [reason for reason in hooks.role_in_use.send(role) if reason]
    if in_use:
        raise UserError(" ".join(in_use))
    hooks.role_deleted.send(role)
    audit.record(
        "role.deleted",
        target=role,
        before={"name": role.name, "description": role.description, "permissions": list(role.permissions or ())},
    )
    db.session.delete(role)
    db.session.flush()


def roles_reviewed(_org=None):
    """For the getting-started checklist: a SQL boolean, true once roles were
    put to use beyond the defaults: a custom role exists, or a member holds a
    role other than Owner and Member. The same expression object every time
    (it names no organization: the ORM adds the current one's filter)."""
    return _roles_reviewed()


@functools.cache
def _roles_reviewed():
    return or_(
        select(Role.id).exists(),
        select(Membership.user_id)
        .where(or_(Membership.role.not_in(("owner", "member")), Membership.custom_role_id.is_not(None)))
        .exists(),
    )

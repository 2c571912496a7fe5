"""Identity-provider groups → roles: which role a directory gives a member.

An organization maps a group (its name or id, exactly as the identity
provider sends it; compared case-insensitively) to a system or custom role,
for SSO sign-ins (``sso``: a SAML attribute, an OIDC claim), for SCIM
(``scim``: the organization's SCIM groups) or for both (``any``). SSO
(``app.sso``) and SCIM (``app.scim``) ask ``roles_for_groups``; both then
give the member the role with ``apply_mapped_role``.

**When several groups match, the role granting the most permissions wins**
(so Admin beats Manager beats Member beats Viewer, the system roles' own
order); a tie goes to a system role over a custom one, then to the higher
system rank, then to the role's name in alphabetical order — one answer
for the same groups, whatever order the provider lists them in.

**Owner is never given or taken by a directory**: a mapping cannot name it
(a check constraint too), and ``apply_mapped_role`` leaves an Owner's role
alone. Ownership moves only by an Owner's own action.

**A manual change of a directory-managed member** (an admin picks a role on
the members page or through the API) is allowed — an emergency demotion
must not wait for IT — and makes the role's source ``manual``. It holds
until the directory next changes that member's groups (a SCIM group change,
an SSO sign-in, as its area decides), when the mapping applies again and the
source returns to ``scim``/``sso``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, String, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import audit, hooks
from app.concurrency import lock_for_edit, versioned
from app.errors import UserError
from app.extensions import db
from app.permissions import SYSTEM_ROLES
from app.rbac import services as rbac
from app.scoping import TenantScoped, current_org_id
from app.tenancy.models import HoldsRole, Membership
from app.util import parse_uuid

SOURCES = ("sso", "scim", "any")
SOURCE_NAMES = {"sso": "SSO sign-in", "scim": "SCIM", "any": "SSO and SCIM"}
# Where a membership's role comes from (``Membership.role_source``).
ROLE_SOURCES = ("manual", "sso", "scim")
GROUP_MAX = 256


class GroupRoleMapping(HoldsRole, TenantScoped, db.Model):
    """One identity-provider group and the role it gives (never Owner)."""

    __tablename__ = "group_role_mappings"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    source: Mapped[str] = mapped_column(String(8), nullable=False)
    group_name: Mapped[str] = mapped_column(String(GROUP_MAX), nullable=False)
    role: Mapped[str | None] = mapped_column(String(32))
    custom_role_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    version: Mapped[int] = versioned()

    __mapper_args__ = {"version_id_col": version}

    custom_role = relationship(
        "Role",
        primaryjoin="and_(GroupRoleMapping.organization_id == foreign(Role.organization_id),"
        " GroupRoleMapping.custom_role_id == foreign(Role.id))",
        viewonly=True,
        uselist=False,
        lazy="joined",
    )

    __table_args__ = (
        CheckConstraint("source IN ('sso', 'scim', 'any')", name="source"),
        CheckConstraint("(role IS NULL) <> (custom_role_id IS NULL)", name="one_role"),
        CheckConstraint("role IS NULL OR role <> 'owner'", name="not_owner"),
        CheckConstraint("char_length(group_name) BETWEEN 1 AND 256", name="group"),
        ForeignKeyConstraint(
            ["organization_id", "custom_role_id"],
            ["roles.organization_id", "roles.id"],
            name="fk_group_role_mappings_custom_role",
        ),
        Index(
            "uq_group_role_mappings_org_source_group", "organization_id", "source", func.lower(group_name), unique=True
        ),
    )

    def __audit_target__(self):
        return ("group_role_mapping", str(self.id), f"{self.group_name} → {self.role_name}")


# --------------------------------------------------------------------------- the rule
def _rank(info: rbac.RoleInfo) -> tuple:
    """Sort key: the best role sorts first (see the module docstring)."""
    system_rank = SYSTEM_ROLES[info.key].rank if info.system else 0
    return (-len(info.permissions), not info.system, -system_rank, info.name.lower(), info.key)


def best_role(infos) -> rbac.RoleInfo | None:
    """The winning role among ``infos`` (``None`` for none): most permissions,
    then system before custom, then system rank, then name."""
    infos = [i for i in infos if i is not None]
    return min(infos, key=_rank) if infos else None


def _clean_groups(groups) -> list[str]:
    out = []
    for g in groups or ():
        if isinstance(g, str) and g.strip():
            out.append(g.strip().lower()[:GROUP_MAX])
    return sorted(set(out))


def mappings_for_groups(source: str, groups) -> list[GroupRoleMapping]:
    """The current organization's mappings for ``source`` (and ``any``) whose group is in ``groups``."""
    if source not in ("sso", "scim"):
        raise ValueError(f"unknown source {source!r}")
    wanted = _clean_groups(groups)
    if not wanted:
        return []
    return list(
        db.session.execute(
            select(GroupRoleMapping).where(
                GroupRoleMapping.source.in_((source, "any")), func.lower(GroupRoleMapping.group_name).in_(wanted)
            )
        )
        .unique()
        .scalars()
    )


def roles_for_groups(org, source: str, groups) -> rbac.RoleInfo | None:
    """The role the identity provider's ``groups`` give in ``org`` through
    ``source`` (``sso`` or ``scim``; mappings for ``any`` count for both), or
    ``None`` when no group is mapped. Several matches: the role granting the
    most permissions wins (module docstring). Never Owner.

    ``org`` must be the organization in scope (the query is scoped by it,
    three times, like every other)."""
    if org is not None and current_org_id() != org.id:
        raise ValueError("roles_for_groups: org is not the organization in scope")
    return best_role(rbac.role_of(m) for m in mappings_for_groups(source, groups))  # type: ignore[arg-type]


def apply_mapped_role(m: Membership, source: str, role: rbac.RoleInfo | None, groups=()) -> bool:
    """Give ``m`` the directory's ``role`` and mark its source ``source``
    (``sso``/``scim``); ``True`` when the role changed.

    Left alone: an Owner (a directory never takes ownership away), and any
    member when ``role`` is ``None`` (no group maps: the member keeps the
    role they have, and its source). Records ``member.role_changed`` with
    the source and the groups, as the actor in context (the SCIM token, the
    signing-in person).
    """
    if m.role == "owner" or role is None:
        return False
    if role.key == "owner":
        raise ValueError("a directory never gives Owner")
    old = rbac.role_of(m)
    changed = old.key != role.key
    if not changed and m.role_source == source:
        return False
    old_source = m.role_source
    m.role = role.key if role.system else None
    m.custom_role_id = None if role.system else role.role.id
    m.role_source = source
    db.session.flush()
    db.session.expire(m, ["custom_role"])
    audit.record(
        "member.role_changed",
        target=m,
        before={"role": old.name, "role_key": old.key, "role_source": old_source},
        after={"role": role.name, "role_key": role.key, "role_source": source},
        metadata={"user_id": str(m.user_id), "email": m.user.email, "groups": sorted(groups)[:50]},
    )
    return changed


# --------------------------------------------------------------------------- managing mappings
def list_mappings(sources=SOURCES) -> list[GroupRoleMapping]:
    """The organization's mappings for ``sources``, by group name."""
    return list(
        db.session.execute(
            select(GroupRoleMapping)
            .where(GroupRoleMapping.source.in_(tuple(sources)))
            .order_by(func.lower(GroupRoleMapping.group_name), GroupRoleMapping.source)
        )
        .unique()
        .scalars()
    )


def find_mapping(mapping_id) -> GroupRoleMapping | None:
    """The current organization's mapping with this id (malformed and foreign ids: ``None``)."""
    mid = parse_uuid(mapping_id)
    if mid is None:
        return None
    return db.session.execute(select(GroupRoleMapping).where(GroupRoleMapping.id == mid)).unique().scalar_one_or_none()


def add_mapping(source: str, group: str | None, role_key: str | None, actor: Membership) -> GroupRoleMapping:
    """Map ``group`` to a role for ``source``. Refused (``UserError`` beside
    the field, nothing written): an unknown source, an empty or overlong
    group, a group already mapped for that source, Owner, a role the actor
    could not give by hand (``rbac.role_choices``: no escalation through a
    directory). Records ``role.group_mapped``."""
    if source not in SOURCES:
        raise UserError("Choose where the group comes from: SSO, SCIM or both.", "source")
    group = " ".join((group or "").split())
    if not group:
        raise UserError("Enter the group's name or id, as your identity provider sends it.", "group")
    if len(group) > GROUP_MAX:
        raise UserError(f"Use at most {GROUP_MAX} characters.", "group")
    info = _givable_role(role_key, actor)
    mapping = GroupRoleMapping(
        source=source,
        group_name=group,
        role=info.key if info.system else None,
        custom_role_id=None if info.system else info.role.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(mapping)
            db.session.flush()
    except IntegrityError:
        raise UserError(f"The group {group} is already mapped for {SOURCE_NAMES[source]}.", "group") from None
    audit.record(
        "role.group_mapped",
        target=mapping,
        after={"group": group, "source": source, "role": info.name, "role_key": info.key},
    )
    return mapping


def _givable_role(role_key: str | None, actor: Membership) -> rbac.RoleInfo:
    """The role ``role_key`` names, if ``actor`` could give it by hand and
    it is not Owner; else ``UserError`` on ``role``."""
    info = rbac.get_role(role_key)
    if info is not None and info.key == "owner":
        raise UserError("A directory group cannot make someone an Owner; Owners are made by an Owner.", "role")
    if info is None or info.key not in {k for k, _ in rbac.role_choices(actor)}:
        raise UserError("Choose a role you are allowed to give.", "role")
    return info


def change_mapping_role(mapping: GroupRoleMapping, role_key: str | None, actor: Membership, version=None) -> bool:
    """Make ``mapping`` give another role (the same rules as ``add_mapping``:
    never Owner, only a role ``actor`` could give). ``StaleEdit`` (409) for
    a change made from an older version; ``UserError`` on ``role`` for a
    refused role, nothing written. ``False`` when the role is the same.
    Members keep their role until their groups next change (as for a new
    mapping). Records ``role.group_mapping_changed``."""
    lock_for_edit(mapping, version)
    info = _givable_role(role_key, actor)
    old = rbac.role_of(mapping)  # type: ignore[arg-type]
    if old is not None and old.key == info.key:
        return False
    mapping.role = info.key if info.system else None
    mapping.custom_role_id = None if info.system else info.role.id
    db.session.flush()
    db.session.expire(mapping, ["custom_role"])
    audit.record(
        "role.group_mapping_changed",
        target=mapping,
        before={"group": mapping.group_name, "source": mapping.source, "role": old.name if old else None},
        after={"group": mapping.group_name, "source": mapping.source, "role": info.name, "role_key": info.key},
    )
    return True


def delete_mapping(mapping: GroupRoleMapping) -> None:
    """Remove a mapping (members keep the role they have until their groups
    next change). Records ``role.group_unmapped``."""
    audit.record(
        "role.group_unmapped",
        target=mapping,
        before={"group": mapping.group_name, "source": mapping.source, "role": mapping.role_name},
    )
    db.session.delete(mapping)
    db.session.flush()


@hooks.role_in_use.connect
def _mapped_custom_role(role) -> str | None:
    """A custom role a group maps to is in use: deleting it would leave the mapping pointing nowhere."""
    groups = list(
        db.session.execute(
            select(GroupRoleMapping.group_name).where(GroupRoleMapping.custom_role_id == role.id)
        ).scalars()
    )
    if not groups:
        return None
    return f"{role.name} is given to members of the identity-provider group(s) {', '.join(sorted(groups))}; remove those mappings first."

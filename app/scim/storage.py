"""Where SCIM resources live: accounts, memberships and SCIM groups.

``OrgStorage`` is the storage scim2-server calls between its protocol steps
(it validates, applies PUT and PATCH, checks ETags, pages and answers; see
``app.scim.views``). Everything here runs inside the host's organization:
the ORM hook and RLS scope every statement, so another organization's
users and groups do not exist here.

**Users** are members. A SCIM User's ``id`` is the account's id; its
document (what the provider wrote, never a password) is kept in
``scim_users``; ``active`` is the membership's status and ``externalId``
the membership's ``scim_external_id``; ``groups`` is read from the SCIM
groups. Creating a User:

* finds the account by e-mail (the primary of ``emails``, else the first,
  else ``userName`` when it is an address) or creates one without a
  password (the person signs in through SSO, or sets a password with
  "forgot password");
* adopts an existing member not yet provisioned (an identity provider
  connected after people were invited), keeping their role; adds anyone
  else as a member, under the plan's seat limit, with the role their groups
  map to (``app.rbac.group_roles``), ``member`` when none does.

The account's own name and e-mail are the person's, shared by every
organization they belong to: SCIM sets them when it creates the account
and never rewrites them (another organization's provider must not rename
or re-address someone). The SCIM view keeps what the provider sends.

**Deprovisioning** — ``active: false`` (PUT or PATCH) or DELETE —
deactivates the membership and revokes at once every session of that
person that reached this organization's hosts: their next request here is
refused (signed out, or "not a member"). DELETE also forgets the SCIM user
(a later GET is 404) and its group memberships; the deactivated member
stays, with their history, for an admin to remove. ``active: true`` again
reactivates them if a seat is free. The last active Owner is never
deactivated (403).

**Groups** are the organization's SCIM groups; adding or removing members,
or renaming a group, re-applies the group → role mappings to the members
concerned (role source ``scim``; see ``app.rbac.group_roles`` for a manual
change). A member whose role came from SCIM and whom no group maps any
more falls back to ``member``: leaving the "Admins" group must take Admin
away.

Every change is audited with actor type ``scim`` (the token).
"""

from __future__ import annotations

import uuid
from typing import Any

from scim2_models import (
    ForbiddenException,
    Group,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SearchRequest,
    UniquenessException,
    User,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.auth import services as auth_services
from app.auth.models import User as Account
from app.extensions import db
from app.members import memberships as member_services
from app.members import sessions as member_sessions
from app.rbac import group_roles
from app.rbac import services as rbac
from app.scim.models import DISPLAY_NAME_MAX, USER_NAME_MAX, ScimGroup, ScimGroupMember, ScimUser
from app.tenancy.models import Membership
from app.util import parse_uuid, utcnow

# The role of a member SCIM adds when no group maps one, and the one a
# SCIM-managed member falls back to when no group maps one any more.
DEFAULT_ROLE = "member"
# Attributes never stored: a password is not ours to keep (write-only, and
# people sign in through SSO); read-only ones are computed on every read.
_NOT_STORED = {"password", "groups", "members", "meta", "id"}
NAME_MAX = 120  # users.name
# The address of an account SCIM made without one (RFC 2606 reserves .invalid).
PLACEHOLDER_DOMAIN = "@placeholder.invalid"
# Where a group's document keeps the display names its members were given.
MEMBER_DISPLAY_KEY = "tenantry:memberDisplay"


def _version(n: int) -> str:
    return f'W/"{n}"'


def _check_version(current: int, expected: str | None) -> None:
    if expected is not None and expected != _version(current):
        raise PreconditionFailedException(detail="The resource changed since you read it (its version differs).")


def _document(resource: Resource[Any]) -> dict:
    doc = resource.model_dump(mode="json")
    for key in _NOT_STORED:
        doc.pop(key, None)
    doc.pop("externalId", None)
    # Whether ``active`` was sent is kept (the membership's status is its value):
    # a provider that removes the attribute gets it back absent, not invented.
    if "active" in doc:
        doc["active"] = True
    return doc


def _ref(kind: str, rid) -> str:
    return f"{kind}/{rid}"


def _comparison(search_request: SearchRequest[Any]) -> tuple[str, str] | None:
    """``(attribute, value)`` when the filter is one ``eq`` comparison to a string, else ``None``."""
    f = search_request.filter
    node = getattr(f, "ast", None)
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str):
        return None
    path = node.attr_path
    name = path.attr + (f".{path.sub_attr}" if getattr(path, "sub_attr", None) else "")
    return name.lower(), node.value


def _page(search_request: SearchRequest[Any], found: list) -> SearchPage:
    start = search_request.start_index_0 or 0
    stop = None if search_request.count is None else start + search_request.count
    return SearchPage(len(found), found[start:stop])


class OrgStorage(ScimStorage):
    """The current organization's SCIM Users and Groups (see the module docstring)."""

    def __init__(self, org, service):
        self.org = org
        self.service = service

    # ------------------------------------------------------------------ dispatch
    def get(
        self, resource_type: ResourceType, resource_id: str, *, response_parameters: ResponseParameters | None = None
    ):
        if resource_type.name == "User":
            return self._user_resource(self._scim_user(resource_id))
        return self._group_resource(self._group(resource_id))

    def search(self, resource_types, search_request, *, position=None) -> SearchPage:
        names = {rt.name for rt in resource_types}
        found: list[Resource[Any]] = []
        if "User" in names:
            found += self._search_users(search_request)
        if "Group" in names:
            found += self._search_groups(search_request)
        if search_request.filter is not None:
            found = [r for r in found if search_request.filter.match(r)]
        return _page(search_request, found)

    def create(self, resource_type: ResourceType, resource: Resource[Any]):
        if resource_type.name == "User":
            return self._user_resource(self._create_user(resource))
        return self._group_resource(self._create_group(resource))

    def update(self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None):
        if resource_type.name == "User":
            return self._user_resource(self._update_user(resource, expected_version))
        return self._group_resource(self._update_group(resource, expected_version))

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        if resource_type.name == "User":
            self._delete_user(resource_id, expected_version)
        else:
            self._delete_group(resource_id, expected_version)

    # ------------------------------------------------------------------ users: reading
    def _scim_user(self, resource_id, lock: bool = False) -> ScimUser:
        uid = parse_uuid(resource_id)
        row = None
        if uid is not None:
            stmt = select(ScimUser).where(ScimUser.user_id == uid)
            if lock:
                stmt = stmt.with_for_update()
            row = db.session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return row

    def _membership(self, user_id) -> Membership:
        return db.session.execute(select(Membership).where(Membership.user_id == user_id)).unique().scalar_one()

    def _groups_of(self, user_ids) -> dict:
        out: dict = {}
        if not user_ids:
            return out
        rows = db.session.execute(
            select(ScimGroupMember.user_id, ScimGroup.id, ScimGroup.display_name)
            .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
            .where(ScimGroupMember.user_id.in_(list(user_ids)))
            .order_by(ScimGroup.display_name, ScimGroup.id)
        )
        for uid, gid, name in rows:
            out.setdefault(uid, []).append(
                {"value": str(gid), "display": name, "$ref": _ref("Groups", gid), "type": "direct"}
            )
        return out

    def _user_resource(self, row: ScimUser, membership: Membership | None = None, groups=None) -> User:
        m = membership or self._membership(row.user_id)
        if groups is None:
            groups = self._groups_of([row.user_id]).get(row.user_id, [])
        doc = dict(row.document)
        if "active" in doc or m.status != "active":
            doc["active"] = m.status == "active"
        doc.update(
            id=str(row.user_id),
            userName=row.user_name,
            meta={
                "resourceType": "User",
                "created": row.created_at.isoformat(),
                "lastModified": row.updated_at.isoformat(),
                "version": _version(row.version),
            },
        )
        if m.scim_external_id is not None:
            doc["externalId"] = m.scim_external_id
        if groups:
            doc["groups"] = groups
        return self.service.get_model(self.service.get_resource_type("User")).model_validate(doc)

    def _search_users(self, search_request) -> list[User]:
        stmt = select(ScimUser, Membership).join(Membership, Membership.user_id == ScimUser.user_id)
        eq = _comparison(search_request) if search_request.filter is not None else None
        # The filters identity providers send before creating (userName,
        # externalId, an e-mail) use an index; any other filter is checked on
        # every SCIM user of the organization, in Python, by scim2-models.
        if eq is not None:
            attr, value = eq
            if attr == "username":
                stmt = stmt.where(func.lower(ScimUser.user_name) == value.lower())
            elif attr == "externalid":
                stmt = stmt.where(Membership.scim_external_id == value)
            elif attr in ("emails", "emails.value"):
                stmt = stmt.where(ScimUser.emails.contains([value.lower()]))
            elif attr == "id":
                uid = parse_uuid(value)
                if uid is None:
                    return []
                stmt = stmt.where(ScimUser.user_id == uid)
        rows = db.session.execute(stmt.order_by(ScimUser.created_at, ScimUser.user_id)).unique().all()
        groups = self._groups_of([r.ScimUser.user_id for r in rows])
        return [self._user_resource(r.ScimUser, r.Membership, groups.get(r.ScimUser.user_id, [])) for r in rows]

    # ------------------------------------------------------------------ users: writing
    @staticmethod
    def _email_of(resource: User) -> str | None:
        """The account address the resource names (primary e-mail, else the
        first, else a ``userName`` that is an address), or ``None``."""
        emails = list(resource.emails or [])
        chosen = next((e.value for e in emails if e.primary and e.value), None) or next(
            (e.value for e in emails if e.value), None
        )
        if chosen is None and resource.user_name and "@" in resource.user_name:
            chosen = resource.user_name
        if not chosen:
            return None
        try:
            return auth_services.normalise_email(chosen)
        except ValueError as e:
            raise InvalidValueException(detail=f"{chosen!r} is not a valid e-mail address: {e}") from None

    @staticmethod
    def _display_name(resource: User) -> str:
        name = resource.display_name or (resource.name.formatted if resource.name else None)
        if not name and resource.name:
            name = " ".join(p for p in (resource.name.given_name, resource.name.family_name) if p)
        name = " ".join((name or resource.user_name or "").split())
        return name[:NAME_MAX] or "Provisioned user"

    def _check_user_name(self, user_name: str | None, own_id=None) -> str:
        name = (user_name or "").strip()
        if not name:
            raise InvalidValueException(detail="userName is required.")
        if len(name) > USER_NAME_MAX:
            raise InvalidValueException(detail=f"userName is longer than {USER_NAME_MAX} characters.")
        stmt = select(ScimUser.user_id).where(func.lower(ScimUser.user_name) == name.lower())
        if own_id is not None:
            stmt = stmt.where(ScimUser.user_id != own_id)
        if db.session.execute(stmt).first() is not None:
            raise UniquenessException(detail=f"The userName {name!r} is already provisioned in this organization.")
        return name

    def _check_external_id(self, external_id: str | None, own_id=None) -> None:
        if external_id is None:
            return
        stmt = select(Membership.user_id).where(Membership.scim_external_id == external_id)
        if own_id is not None:
            stmt = stmt.where(Membership.user_id != own_id)
        if db.session.execute(stmt).first() is not None:
            raise UniquenessException(
                detail=f"The externalId {external_id!r} is already provisioned in this organization."
            )

    @staticmethod
    def _emails(resource: User) -> list[str]:
        return sorted({(e.value or "").strip().lower() for e in (resource.emails or []) if e.value})

    def _create_user(self, resource: User) -> ScimUser:
        user_name = self._check_user_name(resource.user_name)
        self._check_external_id(resource.external_id)
        email = self._email_of(resource)
        account = auth_services.find_user(email) if email else None
        created_account = account is None
        m = None
        if account is None:
            if email is None:
                # No address sent: an account at a reserved address that no
                # mail reaches and no one can sign in to, until the provider
                # sends a real one (``_claim_address``).
                account = Account(
                    email=f"scim-{uuid.uuid4().hex}{PLACEHOLDER_DOMAIN}", name=self._display_name(resource)
                )
                db.session.add(account)
                db.session.flush()
            else:
                account = auth_services.create_user(email, self._display_name(resource), None)
        else:
            m = (
                db.session.execute(select(Membership).where(Membership.user_id == account.id))
                .unique()
                .scalar_one_or_none()
            )
            if m is not None and db.session.get(ScimUser, (self.org.id, account.id)) is not None:
                raise UniquenessException(
                    detail=f"{email} is already provisioned in this organization under another userName."
                )
        adopted = m is not None
        if m is None:
            problem = member_services.seats(self.org, lock=True).refusal(1)
            if problem:
                raise ForbiddenException(detail=problem)
            m = Membership(user_id=account.id, role=DEFAULT_ROLE, role_source="scim")
            db.session.add(m)
            db.session.flush()
            audit.record(
                "member.added",
                target=account,
                after={"role": rbac.get_role(DEFAULT_ROLE).name, "role_source": "scim"},
                metadata={"user_id": str(account.id), "email": account.email, "via": "scim"},
            )
        m.scim_external_id = resource.external_id
        row = ScimUser(
            user_id=account.id, user_name=user_name, emails=self._emails(resource), document=_document(resource)
        )
        try:
            with db.session.begin_nested():
                db.session.add(row)
                db.session.flush()
        except IntegrityError:
            raise UniquenessException(detail="This user is already provisioned in this organization.") from None
        audit.record(
            "scim.user_created",
            target=account,
            after={"userName": user_name, "externalId": resource.external_id, "active": resource.active is not False},
            metadata={
                "user_id": str(account.id),
                "email": account.email,
                "account_created": created_account,
                "adopted_member": adopted,
            },
        )
        if resource.active is False:
            self._deprovision(m)
        return row

    def _update_user(self, resource: User, expected_version: str | None) -> ScimUser:
        row = self._scim_user(resource.id, lock=True)
        _check_version(row.version, expected_version)
        m = self._membership(row.user_id)
        user_name = self._check_user_name(resource.user_name, own_id=row.user_id)
        self._check_external_id(resource.external_id, own_id=row.user_id)
        before = {"userName": row.user_name, "externalId": m.scim_external_id, "active": m.status == "active"}
        doc = _document(resource)
        changed_doc = doc != row.document or user_name != row.user_name
        row.user_name, row.document, row.emails = user_name, doc, self._emails(resource)
        m.scim_external_id = resource.external_id
        self._claim_address(m, resource)
        wants_active = resource.active is not False
        if wants_active and m.status != "active":
            self._reactivate(m)
        elif not wants_active and m.status == "active":
            self._deprovision(m)
        after = {"userName": user_name, "externalId": m.scim_external_id, "active": m.status == "active"}
        row.version += 1
        row.updated_at = utcnow()
        db.session.flush()
        if changed_doc or before != after:
            audit.record(
                "scim.user_updated", target=m.user, before=before, after=after, metadata={"user_id": str(row.user_id)}
            )
        return row

    def _claim_address(self, m: Membership, resource: User) -> None:
        """An account SCIM made without an address takes the first real one
        the provider sends, unless another account has it. Any other
        account's address is the person's own: never rewritten here."""
        account = m.user
        if not account.email.endswith(PLACEHOLDER_DOMAIN):
            return
        email = self._email_of(resource)
        if email is None or auth_services.find_user(email) is not None:
            return
        account.email = email
        db.session.flush()

    def _delete_user(self, resource_id, expected_version: str | None) -> None:
        row = self._scim_user(resource_id, lock=True)
        _check_version(row.version, expected_version)
        m = self._membership(row.user_id)
        if m.status == "active":
            self._deprovision(m)
        m.scim_external_id = None
        user_name = row.user_name
        db.session.delete(row)
        db.session.flush()
        audit.record(
            "scim.user_deleted", target=m.user, before={"userName": user_name}, metadata={"user_id": str(m.user_id)}
        )

    def _deprovision(self, m: Membership) -> None:
        """Deactivate ``m`` and revoke, at once, every session of theirs that
        reached this organization (its subdomain or custom host). The last
        active Owner is refused (403): an organization must keep one."""
        if m.role == "owner":
            owners = db.session.execute(
                select(Membership.user_id)
                .where(Membership.role == "owner", Membership.status == "active")
                .with_for_update()
            ).scalars()
            if [u for u in owners if u != m.user_id] == []:
                raise ForbiddenException(
                    detail="This is the organization's last active Owner; SCIM cannot deactivate them."
                )
        m.status = "deactivated"
        db.session.flush()
        audit.record(
            "member.deactivated",
            target=m.user,
            before={"status": "active"},
            after={"status": "deactivated"},
            metadata={"user_id": str(m.user_id), "email": m.user.email, "role": m.role_name, "via": "scim"},
        )
        # Every live sign-in of theirs that reached this organization's hosts
        # (``session_organizations``), signed out on every host it reached.
        for rec in member_sessions.sessions_here(m.user):
            auth_services.revoke_session(m.user, rec.id)

    def _reactivate(self, m: Membership) -> None:
        problem = member_services.seats(self.org, lock=True).refusal(1)
        if problem:
            raise ForbiddenException(detail=problem)
        m.status = "active"
        db.session.flush()
        audit.record(
            "member.reactivated",
            target=m.user,
            before={"status": "deactivated"},
            after={"status": "active"},
            metadata={"user_id": str(m.user_id), "email": m.user.email, "role": m.role_name, "via": "scim"},
        )

    # ------------------------------------------------------------------ groups
    def _group(self, resource_id, lock: bool = False) -> ScimGroup:
        gid = parse_uuid(resource_id)
        row = None
        if gid is not None:
            stmt = select(ScimGroup).where(ScimGroup.id == gid)
            if lock:
                stmt = stmt.with_for_update()
            row = db.session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return row

    def _members_of(self, group_ids) -> dict:
        out: dict = {}
        if not group_ids:
            return out
        rows = db.session.execute(
            select(ScimGroupMember.group_id, ScimUser.user_id, ScimUser.user_name, ScimUser.document)
            .join(ScimUser, ScimUser.user_id == ScimGroupMember.user_id)
            .where(ScimGroupMember.group_id.in_(list(group_ids)))
            .order_by(ScimUser.user_name)
        )
        for gid, uid, user_name, doc in rows:
            display = (doc or {}).get("displayName") or user_name
            out.setdefault(gid, []).append(
                {"value": str(uid), "display": display, "$ref": _ref("Users", uid), "type": "User"}
            )
        return out

    def _group_resource(self, row: ScimGroup, members=None) -> Group:
        if members is None:
            members = self._members_of([row.id]).get(row.id, [])
        doc = dict(row.document)
        # The display names the provider gave its members, kept with the group.
        shown = doc.pop(MEMBER_DISPLAY_KEY, None) or {}
        for member in members:
            member["display"] = shown.get(member["value"], member["display"])
        doc.update(
            id=str(row.id),
            displayName=row.display_name,
            meta={
                "resourceType": "Group",
                "created": row.created_at.isoformat(),
                "lastModified": row.updated_at.isoformat(),
                "version": _version(row.version),
            },
        )
        if row.external_id is not None:
            doc["externalId"] = row.external_id
        if members:
            doc["members"] = members
        return self.service.get_model(self.service.get_resource_type("Group")).model_validate(doc)

    def _search_groups(self, search_request) -> list[Group]:
        stmt = select(ScimGroup)
        eq = _comparison(search_request) if search_request.filter is not None else None
        if eq is not None:
            attr, value = eq
            if attr == "displayname":
                stmt = stmt.where(func.lower(ScimGroup.display_name) == value.lower())
            elif attr == "externalid":
                stmt = stmt.where(ScimGroup.external_id == value)
            elif attr == "id":
                gid = parse_uuid(value)
                if gid is None:
                    return []
                stmt = stmt.where(ScimGroup.id == gid)
        rows = list(db.session.execute(stmt.order_by(ScimGroup.created_at, ScimGroup.id)).scalars())
        members = self._members_of([r.id for r in rows])
        return [self._group_resource(r, members.get(r.id, [])) for r in rows]

    @staticmethod
    def _display_name_of(resource: Group) -> str:
        name = " ".join((resource.display_name or "").split())
        if not name:
            raise InvalidValueException(detail="displayName is required.")
        if len(name) > DISPLAY_NAME_MAX:
            raise InvalidValueException(detail=f"displayName is longer than {DISPLAY_NAME_MAX} characters.")
        return resource.display_name

    def _member_ids(self, resource: Group) -> set[uuid.UUID]:
        wanted = set()
        for member in resource.members or []:
            uid = parse_uuid(member.value)
            if uid is None:
                raise InvalidValueException(detail=f"Group member {member.value!r} is not a user of this organization.")
            wanted.add(uid)
        if wanted:
            known = set(
                db.session.execute(select(ScimUser.user_id).where(ScimUser.user_id.in_(list(wanted)))).scalars()
            )
            unknown = wanted - known
            if unknown:
                raise InvalidValueException(
                    detail=f"Group members must be users provisioned here (not groups): unknown {', '.join(sorted(map(str, unknown)))}."
                )
        return wanted

    def _set_members(self, row: ScimGroup, wanted: set[uuid.UUID]) -> tuple[set, set]:
        current = set(
            db.session.execute(select(ScimGroupMember.user_id).where(ScimGroupMember.group_id == row.id)).scalars()
        )
        added, removed = wanted - current, current - wanted
        if removed:
            db.session.execute(
                delete(ScimGroupMember)
                .where(ScimGroupMember.group_id == row.id, ScimGroupMember.user_id.in_(list(removed)))
                .execution_options(synchronize_session=False)
            )
        for uid in sorted(added):
            db.session.add(ScimGroupMember(group_id=row.id, user_id=uid))
        db.session.flush()
        return added, removed

    @staticmethod
    def _group_document(resource: Group) -> dict:
        doc = _document(resource)
        doc.pop("displayName", None)
        shown = {m.value: m.display for m in resource.members or [] if m.value and m.display}
        if shown:
            doc[MEMBER_DISPLAY_KEY] = shown
        return doc

    def _create_group(self, resource: Group) -> ScimGroup:
        name = self._display_name_of(resource)
        wanted = self._member_ids(resource)
        row = ScimGroup(display_name=name, external_id=resource.external_id, document=self._group_document(resource))
        db.session.add(row)
        db.session.flush()
        self._set_members(row, wanted)
        audit.record(
            "scim.group_created",
            target=row,
            after={"displayName": name, "externalId": resource.external_id, "members": len(wanted)},
        )
        self.remap(wanted)
        return row

    def _update_group(self, resource: Group, expected_version: str | None) -> ScimGroup:
        row = self._group(resource.id, lock=True)
        _check_version(row.version, expected_version)
        name = self._display_name_of(resource)
        wanted = self._member_ids(resource)
        renamed = (name, resource.external_id) != (row.display_name, row.external_id)
        before = {"displayName": row.display_name, "externalId": row.external_id}
        row.display_name, row.external_id = name, resource.external_id
        row.document = self._group_document(resource)
        added, removed = self._set_members(row, wanted)
        row.version += 1
        row.updated_at = utcnow()
        db.session.flush()
        audit.record(
            "scim.group_updated",
            target=row,
            before=before,
            after={"displayName": name, "externalId": resource.external_id},
            metadata={"members_added": sorted(map(str, added)), "members_removed": sorted(map(str, removed))},
        )
        self.remap((wanted | removed) if renamed else (added | removed))
        return row

    def _delete_group(self, resource_id, expected_version: str | None) -> None:
        row = self._group(resource_id, lock=True)
        _check_version(row.version, expected_version)
        former = set(
            db.session.execute(select(ScimGroupMember.user_id).where(ScimGroupMember.group_id == row.id)).scalars()
        )
        audit.record("scim.group_deleted", target=row, before={"displayName": row.display_name, "members": len(former)})
        db.session.delete(row)
        db.session.flush()
        self.remap(former)

    # ------------------------------------------------------------------ roles
    def remap(self, user_ids) -> None:
        """Re-apply the group → role mappings to these members (their SCIM
        groups' names, ids and external ids, ``app.rbac.group_roles``). A
        member whose role came from SCIM and whom no group maps any more
        falls back to ``DEFAULT_ROLE``; a manually set role stays when no
        group maps one."""
        if not user_ids:
            return
        rows = db.session.execute(
            select(ScimGroupMember.user_id, ScimGroup.id, ScimGroup.display_name, ScimGroup.external_id)
            .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
            .where(ScimGroupMember.user_id.in_(list(user_ids)))
        ).all()
        names: dict = {uid: set() for uid in user_ids}
        for uid, gid, display, external in rows:
            names[uid] |= {display, str(gid)} | ({external} if external else set())
        for uid in sorted(user_ids):
            m = db.session.execute(select(Membership).where(Membership.user_id == uid)).unique().scalar_one_or_none()
            if m is None:
                continue
            role = group_roles.roles_for_groups(self.org, "scim", names[uid])
            if role is None and m.role_source == "scim":
                role = rbac.get_role(DEFAULT_ROLE)
            group_roles.apply_mapped_role(m, "scim", role, sorted(names[uid]))

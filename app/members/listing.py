"""The members list: members and pending invitations in one table, searched,
filtered, sorted and paged by keyset.

Why keyset and not OFFSET: an organization may have 50,000 members; page 900
of an OFFSET query reads and throws away 45,000 rows, a keyset page reads 51.
Each sort has an index that leads with ``organization_id`` and ends with the
tie-breaker ``user_id`` (migration 0003_invitations); the name and e-mail are
copied (lower-cased, by trigger) into ``memberships`` so that neither sorting
nor searching joins ``users`` before the page is cut. ``users`` is joined
only for the rows shown.

Members and invitations are merged in SQL (``UNION ALL`` of two branches,
each already ordered and limited), so the order is PostgreSQL's collation
everywhere and a cursor taken from one page is exact on the next.

Search ("contains", on name and e-mail) has two plans, chosen per query by
``prepare()`` (measured on 50,000 members, see bench/members_bench.py):

* **selective** (at most ``COUNT_CAP`` matches): the trigram index, through
  ``member_search_ids()`` (migration 0003 explains why a function: RLS keeps
  ``LIKE`` out of index scans), then the matches are sorted — a few ms;
* **dense** (more matches, or fewer than 3 characters, which trigrams cannot
  serve): the sort's own index is walked with the pattern as a filter and
  stops after one page — dense matches fill a page within a few hundred rows.

A lazy probe of the index (``LIMIT COUNT_CAP + 1``) tells the two apart.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import (
    String,
    Text,
    and_,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

from app.auth import factors
from app.auth.models import User
from app.extensions import db
from app.members.models import Invitation
from app.permissions import SYSTEM_ROLES
from app.scoping import current_org_id
from app.tenancy.models import Membership
from app.util import escape_like, parse_uuid, utcnow

SORTS = ("name", "email", "joined", "last_seen")
DEFAULT_DIR = {"name": "asc", "email": "asc", "joined": "desc", "last_seen": "desc"}
STATUSES = ("active", "deactivated", "invited")
TWO_FACTOR_FILTERS = ("", "off")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_QUERY = 100

SORT_LABELS = {"name": "Name", "email": "E-mail", "joined": "Joined", "last_seen": "Last seen"}
# Counts stop here ("1,000+ matching"): exact counts of 50,000 rows under RLS
# cost 25-50 ms per keystroke, a capped one about 1 ms.
COUNT_CAP = 1000
TRIGRAM_MIN = 3


class BadListRequest(ValueError):
    """A filter, sort or page link that cannot be served (answered with 422)."""


@dataclass(frozen=True)
class Filters:
    """What the list shows. Parsed from the query string; reflected in every link."""

    q: str = ""
    role: str = ""  # "", a system key, or "custom:<uuid>"
    status: str = ""  # "", or one of STATUSES
    sort: str = "name"
    dir: str = "asc"
    per_page: int = PAGE_SIZE
    errors: dict = field(default_factory=dict, compare=False)
    # False: members only, never pending invitations (the API's member list,
    # where invitations are a resource of their own).
    invitations: bool = True
    # Set by prepare(): search through the trigram index (selective) or not.
    via_index: bool = field(default=False, compare=False)
    # "off": only members without a second factor (invitations have none to show).
    two_factor: str = ""

    @property
    def needle(self) -> str:
        """The search text, lower-cased, LIKE wildcards escaped."""
        return escape_like(self.q.lower())

    def params(self, **override) -> dict:
        """Query-string parameters for a link that keeps these filters (defaults left out)."""
        p = {
            "q": self.q,
            "role": self.role,
            "status": self.status,
            "two_factor": self.two_factor,
            "sort": self.sort,
            "dir": self.dir,
        }
        if self.per_page != PAGE_SIZE:
            p["per_page"] = self.per_page
        p.update(override)
        if p.get("sort") == "name" and p.get("dir") == "asc":
            p.pop("sort"), p.pop("dir")
        return {k: v for k, v in p.items() if v not in ("", None)}

    def sort_link(self, column: str) -> dict:
        """Parameters for a column header: flip the direction when it is the current sort."""
        if column == self.sort:
            return self.params(sort=column, dir="desc" if self.dir == "asc" else "asc")
        return self.params(sort=column, dir=DEFAULT_DIR[column])

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.role or self.status or self.two_factor)


def parse_filters(args, role_keys) -> Filters:
    """Read the filters from a query string (or form). Unknown values are kept
    in ``errors`` (field → message) rather than silently ignored."""
    errors = {}
    q = " ".join((args.get("q") or "").split())
    if len(q) > MAX_QUERY:
        errors["q"] = f"Search for at most {MAX_QUERY} characters."
        q = q[:MAX_QUERY]
    role = (args.get("role") or "").strip()
    if role and role not in role_keys:
        errors["role"] = "Choose one of this organization's roles."
        role = ""
    status = (args.get("status") or "").strip()
    if status and status not in STATUSES:
        errors["status"] = "Choose active, deactivated or invited."
        status = ""
    two_factor = (args.get("two_factor") or "").strip()
    if two_factor not in TWO_FACTOR_FILTERS:
        errors["two_factor"] = "Choose any member or members without two-factor authentication."
        two_factor = ""
    sort = (args.get("sort") or "name").strip()
    if sort not in SORTS:
        errors["sort"] = "Sort by name, e-mail, joined or last seen."
        sort = "name"
    direction = (args.get("dir") or DEFAULT_DIR[sort]).strip()
    if direction not in ("asc", "desc"):
        errors["dir"] = "Sort ascending or descending."
        direction = DEFAULT_DIR[sort]
    per_page = PAGE_SIZE
    raw = args.get("per_page")
    if raw not in (None, ""):
        try:
            per_page = int(raw)
            if not 1 <= per_page <= MAX_PAGE_SIZE:
                raise ValueError
        except ValueError:
            errors["per_page"] = f"Show between 1 and {MAX_PAGE_SIZE} rows a page."
            per_page = PAGE_SIZE
    return Filters(q, role, status, sort, direction, per_page, errors, two_factor=two_factor)


# --------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Row:
    """One line of the table: a member or a pending invitation."""

    kind: str  # "member" | "invitation"
    id: uuid.UUID  # user id or invitation id
    name: str
    email: str
    role: str | None
    custom_role_id: uuid.UUID | None
    status: str  # active | deactivated | invited
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime | None
    cursor_value: str
    invited_by: str | None = None  # an invitation's inviter (their name), when known
    role_source: str = "manual"  # a member's: manual, sso or scim (app.rbac.group_roles)

    @property
    def is_member(self) -> bool:
        return self.kind == "member"

    @property
    def role_key(self) -> str:
        return self.role if self.role else f"custom:{self.custom_role_id}"

    @property
    def key(self) -> str:
        """The row's value in bulk forms: ``m:<user id>`` or ``i:<invitation id>``."""
        return f"{'m' if self.is_member else 'i'}:{self.id}"

    @property
    def dom_id(self) -> str:
        return f"row-{'m' if self.is_member else 'i'}-{self.id}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()


def row_from_membership(m: Membership) -> Row:
    return Row(
        "member",
        m.user_id,
        m.user.name,
        m.user.email,
        m.role,
        m.custom_role_id,
        m.status,
        m.created_at,
        m.last_seen_at,
        None,
        "",
        role_source=m.role_source,
    )


def row_from_invitation(inv: Invitation) -> Row:
    return Row(
        "invitation",
        inv.id,
        "",
        inv.email,
        inv.role,
        inv.custom_role_id,
        "invited",
        inv.created_at,
        None,
        inv.expires_at,
        "",
        inv.inviter.name if inv.inviter is not None else None,
    )


# --------------------------------------------------------------------------- cursors
def encode_cursor(f: Filters, row: Row) -> str:
    raw = json.dumps([f.sort, f.dir, row.cursor_value, str(row.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(f: Filters, token: str) -> tuple[str, uuid.UUID]:
    """``(sort value, id)`` from a page link; ``BadListRequest`` when it is not one of ours
    or was taken under another sort."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        sort, direction, value, rid = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadListRequest("This page link is not valid. Start again from the first page.") from None
    row_id = parse_uuid(rid)
    if sort != f.sort or direction != f.dir or not isinstance(value, str) or row_id is None:
        raise BadListRequest("This page link belongs to another sort order. Start again from the first page.")
    if f.sort in ("joined", "last_seen") and value != "-infinity":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise BadListRequest("This page link is not valid. Start again from the first page.") from None
    return value, row_id


# --------------------------------------------------------------------------- SQL
_NEG_INF = literal_column("'-infinity'::timestamptz")


def _member_key(sort: str):
    if sort == "name":
        return Membership.search_name
    if sort == "email":
        return Membership.search_email
    if sort == "joined":
        return Membership.created_at
    return func.coalesce(Membership.last_seen_at, _NEG_INF)


def _invitation_key(sort: str):
    if sort in ("name", "email"):
        # Invitations have no name yet: they sort by their address.
        return func.lower(Invitation.email)
    if sort == "joined":
        return Invitation.created_at
    return _NEG_INF


def _cursor_param(sort: str, value: str):
    if sort in ("name", "email"):
        return literal(value, Text)
    return cast(literal(value, String), TIMESTAMP(timezone=True))


def _role_clause(model, role: str):
    if not role:
        return true()
    if role in SYSTEM_ROLES:
        return model.role == role
    return model.custom_role_id == parse_uuid(role.removeprefix("custom:"))


def _member_where(f: Filters):
    org_id = current_org_id()
    conds = [Membership.organization_id == org_id, _role_clause(Membership, f.role)]
    if f.status in ("active", "deactivated"):
        conds.append(Membership.status == f.status)
    if f.two_factor == "off":
        conds.append(~factors.second_factor_exists(Membership.user_id))
    if f.q and f.via_index:
        conds.append(Membership.user_id.in_(select(func.member_search_ids(f"%{f.needle}%"))))
    elif f.q:
        # strpos, not LIKE: the planner guesses a third of the rows match
        # (true on this path: matches are dense), so it walks the sort's index
        # and stops after one page instead of sorting every match.
        conds.append(func.strpos(_haystack(), f.q.lower()) > 0)
    return and_(*conds)


def _haystack():
    # The same expression as the trigram index ix_memberships_search_trgm.
    return Membership.search_name.op("||")(literal_column("' '")).op("||")(Membership.search_email)


_SEARCH_FUNCTION: dict[str, bool] = {}


def search_function_available() -> bool:
    """True when the migration could create ``member_search_ids`` (pg_trgm present); asked once per database."""
    key = str(db.engine.url)
    if key not in _SEARCH_FUNCTION:
        _SEARCH_FUNCTION[key] = bool(
            db.session.execute(text("SELECT to_regprocedure('member_search_ids(text)') IS NOT NULL")).scalar()
        )
    return _SEARCH_FUNCTION[key]


def prepare(f: Filters) -> Filters:
    """Choose the search plan for ``f`` (see the module docstring). Cheap:
    at most one lazy probe of ``COUNT_CAP + 1`` ids from the trigram index."""
    if not f.q or len(f.q) < TRIGRAM_MIN or not search_function_available():
        return replace(f, via_index=False)
    probe = select(func.member_search_ids(f"%{f.needle}%")).limit(COUNT_CAP + 1).subquery()
    n = db.session.execute(select(func.count()).select_from(probe)).scalar_one()
    return replace(f, via_index=n <= COUNT_CAP)


def _invitation_where(f: Filters):
    org_id = current_org_id()
    conds = [
        Invitation.organization_id == org_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        _role_clause(Invitation, f.role),
    ]
    if f.q:
        conds.append(func.lower(Invitation.email).like(f"%{f.needle}%"))
    return and_(*conds)


def _wants_members(f: Filters) -> bool:
    return f.status != "invited"


def _wants_invitations(f: Filters) -> bool:
    return f.invitations and f.status in ("", "invited") and not f.two_factor


def _branches(f: Filters, after: tuple | None, descending: bool, limit: int):
    """The two ordered, limited branches; each selects the same columns."""
    branches = []

    def keyset(key, id_col):
        if after is None:
            return true()
        value, rid = after
        bound = tuple_(_cursor_param(f.sort, value), literal(rid, UUID(as_uuid=True)))
        return tuple_(key, id_col) < bound if descending else tuple_(key, id_col) > bound

    def order(key, id_col):
        return (key.desc(), id_col.desc()) if descending else (key.asc(), id_col.asc())

    if _wants_members(f):
        key = _member_key(f.sort)
        branches.append(
            select(
                literal("member", String).label("kind"),
                Membership.user_id.label("id"),
                key.label("k"),
                cast(key, Text).label("k_text"),
                User.name.label("name"),
                User.email.label("email"),
                Membership.role.label("role"),
                Membership.custom_role_id.label("custom_role_id"),
                cast(Membership.status, String).label("status"),
                Membership.created_at.label("created_at"),
                Membership.last_seen_at.label("last_seen_at"),
                cast(null(), TIMESTAMP(timezone=True)).label("expires_at"),
                cast(null(), String).label("invited_by"),
                cast(Membership.role_source, String).label("role_source"),
            )
            .join(User, User.id == Membership.user_id)
            .where(_member_where(f), keyset(key, Membership.user_id))
            .order_by(*order(key, Membership.user_id))
            .limit(limit)
        )
    if _wants_invitations(f):
        key = _invitation_key(f.sort)
        branches.append(
            select(
                literal("invitation", String).label("kind"),
                Invitation.id.label("id"),
                key.label("k"),
                cast(key, Text).label("k_text"),
                literal("", String).label("name"),
                cast(Invitation.email, String).label("email"),
                Invitation.role.label("role"),
                Invitation.custom_role_id.label("custom_role_id"),
                literal("invited", String).label("status"),
                Invitation.created_at.label("created_at"),
                cast(null(), TIMESTAMP(timezone=True)).label("last_seen_at"),
                Invitation.expires_at.label("expires_at"),
                # Per row of the (already limited) branch: one index look-up each.
                select(User.name).where(User.id == Invitation.invited_by).scalar_subquery().label("invited_by"),
                literal("manual", String).label("role_source"),
            )
            .where(_invitation_where(f), keyset(key, Invitation.id))
            .order_by(*order(key, Invitation.id))
            .limit(limit)
        )
    return branches


def fetch(
    f: Filters, after: tuple | None = None, descending: bool | None = None, limit: int | None = None
) -> list[Row]:
    """Up to ``limit`` rows strictly after ``after`` in the given direction."""
    limit = limit or f.per_page
    if descending is None:
        descending = f.dir == "desc"
    stmt = _kept(("page", _shape(f), after, descending, limit), lambda: _page_statement(f, after, descending, limit))
    if stmt is None:
        return []
    return [
        Row(
            r.kind,
            r.id,
            r.name,
            r.email,
            r.role,
            r.custom_role_id,
            r.status,
            r.created_at,
            r.last_seen_at,
            r.expires_at,
            r.k_text,
            r.invited_by,
            r.role_source,
        )
        for r in db.session.execute(stmt)
    ]


# Statements kept by everything they are built from (the organization, the
# filters, the cursor, the direction, the size): a memo, so a kept statement
# is the one a fresh build would give. Building the list's UNION cost more
# than PostgreSQL's answer (a third of the page); the first page of an
# organization's list, the one opened most, is built once per process.
_KEPT: dict = {}
_KEPT_MAX = 512


def _kept(key, build):
    stmt = _KEPT.get(key, _KEPT)
    if stmt is _KEPT:
        if len(_KEPT) >= _KEPT_MAX:
            _KEPT.clear()
        stmt = _KEPT[key] = build()
    return stmt


def _shape(f: Filters) -> tuple:
    """Every input of ``_member_where``/``_invitation_where``/``_branches``
    besides the cursor: the organization and the filters that reach SQL."""
    return (current_org_id(), f.q, f.role, f.status, f.sort, f.per_page, f.invitations, f.via_index, f.two_factor)


def _page_statement(f: Filters, after: tuple | None, descending: bool, limit: int):
    branches = _branches(f, after, descending, limit)
    if not branches:
        return None
    u = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("rows")
    stmt = (
        select(
            u.c.kind,
            u.c.id,
            u.c.name,
            u.c.email,
            u.c.role,
            u.c.custom_role_id,
            u.c.status,
            u.c.created_at,
            u.c.last_seen_at,
            u.c.expires_at,
            u.c.k_text,
            u.c.invited_by,
            u.c.role_source,
        )
        .order_by(*((u.c.k.desc(), u.c.id.desc()) if descending else (u.c.k.asc(), u.c.id.asc())))
        .limit(limit)
    )
    return stmt


@dataclass
class Page:
    rows: list[Row]
    filters: Filters
    next_cursor: str | None = None
    prev_cursor: str | None = None
    is_first: bool = True
    is_last: bool = True
    total: int | None = None
    total_capped: bool = False

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_prev(self) -> bool:
        return self.prev_cursor is not None


def page(f: Filters, after: str | None = None, before: str | None = None, last: bool = False) -> Page:
    """One page of rows. ``after``: the page following a cursor; ``before``:
    the page preceding it; ``last``: the final page. Reads ``per_page + 1``
    rows to know whether there is more in the direction of travel."""
    asc = f.dir == "asc"
    n = f.per_page
    if before or last:
        cur = decode_cursor(f, before) if before else None
        rows = fetch(f, cur, descending=asc, limit=n + 1)
        more_before = len(rows) > n
        rows = list(reversed(rows[:n]))
        is_first, is_last = not more_before, not before
    else:
        cur = decode_cursor(f, after) if after else None
        rows = fetch(f, cur, descending=not asc, limit=n + 1)
        more_after = len(rows) > n
        rows = rows[:n]
        is_first, is_last = cur is None, not more_after
    p = Page(rows, f, is_first=is_first, is_last=is_last)
    if rows:
        p.next_cursor = None if is_last else encode_cursor(f, rows[-1])
        p.prev_cursor = None if is_first else encode_cursor(f, rows[0])
    elif before and not is_first:
        p.next_cursor = None
    return p


def count_columns(f: Filters, cap: int | None = None) -> tuple:
    """One SQL expression per wanted branch (members, invitations): how many
    rows it matches, each counted up to ``cap + 1`` at most; ``totals()``
    turns their values into ``count()``'s answer. Selected beside other
    counts, a page pays one statement for all of them. Kept like the page's
    statement (``_kept``)."""
    return _kept(("count", _shape(f), cap), lambda: _count_columns(f, cap))


def _count_columns(f: Filters, cap: int | None) -> tuple:
    columns = []
    for branch_where, model, wanted in (
        (_member_where, Membership, _wants_members(f)),
        (_invitation_where, Invitation, _wants_invitations(f)),
    ):
        if not wanted:
            continue
        inner = select(literal(1)).select_from(model).where(branch_where(f))
        if cap is not None:
            inner = inner.limit(cap + 1)
        columns.append(select(func.count()).select_from(inner.subquery()).scalar_subquery())
    return tuple(columns)  # kept and shared: nobody may append to it


def totals(values, cap: int | None = None) -> tuple[int, bool]:
    """``count()``'s answer from the values of ``count_columns(f, cap)``."""
    total = sum(values)
    if cap is not None and total > cap:
        return cap, True
    return total, False


def count(f: Filters, cap: int | None = None) -> tuple[int, bool]:
    """How many rows match, and whether the count stopped at ``cap``."""
    columns = count_columns(f, cap)
    if not columns:
        return 0, False
    return totals(db.session.execute(select(*columns)).one(), cap)


def iterate(f: Filters, batch: int = 1000):
    """Every matching row in order, in keyset batches (exports, "select all matching")."""
    descending = f.dir == "desc"
    after = None
    while True:
        rows = fetch(replace(f, per_page=batch), after, descending=descending, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = (rows[-1].cursor_value, rows[-1].id)

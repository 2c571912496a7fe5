"""Reading the audit log: filters, keyset pages, one event, the log's state,
and streamed exports.

Every query is index-backed for an organization of millions of events
(figures: ``bench/audit_bench.py``):

* every filter index ends with ``id`` - ``(organization_id, id)`` (the
  primary key), ``(organization_id, action, id)``, ``(organization_id,
  actor_id, id)``, ``(organization_id, target_type, target_id, id)`` - so a
  filter, the keyset cursor (``id < before``) and a date range are together
  one index range read newest first, stopping after a page;
* a date range becomes an id range, exactly (``_bounds``): ids and
  ``occurred_at`` both come from the database in the statement that creates
  the event, so they grow together; probes of ``(organization_id,
  occurred_at)`` find the range's ends and the few edge events to exclude;
* "person" (events by or about a member) is the union of three index ranges,
  each stopped after a page;
* free text: each word is a prefix range of ``(organization_id, word)`` in
  ``audit_label_words`` (the words of every actor and target name, kept by
  the sealer); the actors and targets of the rarest word lead, one LATERAL
  probe each, to their newest events, which must match every word. Events
  not sealed yet are read by inserting transaction. A word matching more
  than ``LABEL_CAP`` names is common: the newest events are scanned instead,
  and find their page quickly because matches are dense (see
  ``AuditLabelWord`` for why not a full-text index);
* never OFFSET: "Older" is ``id < last id shown``, "Newer" is ``id > first id
  shown`` read ascending.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    ARRAY,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.orm import defer

from app.audit import catalogue, integrity
from app.audit.models import AuditCheckpoint, AuditEvent, AuditLabelWord, AuditSeal, Xid8
from app.auth.models import User
from app.database import apply_tenant_settings
from app.extensions import db
from app.members.models import Invitation
from app.tenancy.entitlements import limit
from app.tenancy.models import Membership, Organization
from app.util import parse_uuid
from app.web.downloads import csv_chunks

PAGE_SIZE = 50
DATE_SLACK = timedelta(seconds=2)
PERSON_TARGET_TYPES = ("member", "user")
TARGET_TYPES = (
    "organization",
    "member",
    "user",
    "invitation",
    "role",
    "project",
    "session",
    "api_key",
    "webhook",
    "audit_stream",
)
MAX_SEARCH_WORDS = 8

T = AuditEvent.__table__
# What a list of events shows (the viewer's table, the dashboard's recent
# activity): ``page()`` returns rows of these, by these names.
LIST_COLUMNS = (
    T.c.id,
    T.c.occurred_at,
    T.c.actor_id,
    T.c.actor_type,
    T.c.actor_label,
    T.c.action,
    T.c.target_type,
    T.c.target_id,
    T.c.target_label,
)
# Everything an event says (the JSON API's events): LIST_COLUMNS and the
# details, ``metadata`` as ``meta`` like the model's attribute.
DETAIL_COLUMNS = (
    *LIST_COLUMNS,
    T.c.impersonator_id,
    T.c.changes,
    T.c["metadata"].label("meta"),
    T.c.ip,
    T.c.user_agent,
    T.c.request_id,
)


# ----------------------------------------------------------------------------- filters
@dataclass
class Filters:
    """The viewer's filters, parsed from the query string (never trusted)."""

    actor: uuid.UUID | None = None
    person: uuid.UUID | None = None
    person_as: str = "any"  # the person as "any" (actor or target), "actor" or "target"
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    before: int | None = None
    after: int | None = None
    errors: dict = field(default_factory=dict)

    FIELDS = ("actor", "person", "as", "action", "target_type", "target", "from", "to", "q")
    PERSON_AS = ("any", "actor", "target")

    @classmethod
    def from_args(cls, args) -> Filters:
        f = cls()

        def get(name):
            return (args.get(name) or "").strip()

        if get("actor"):
            f.actor = parse_uuid(get("actor"))
            if f.actor is None:
                f.errors["actor"] = "Unknown actor."
        if get("person"):
            f.person = parse_uuid(get("person"))
            if f.person is None:
                f.errors["person"] = "Unknown member."
        if get("as"):
            if get("as") in cls.PERSON_AS:
                f.person_as = get("as")
            else:
                f.errors["person"] = "Choose how the member took part."
        if get("action"):
            f.action = get("action")
            if f.action not in catalogue.ALL:
                f.errors["action"] = "Unknown action."
                f.action = None
        if get("target_type"):
            f.target_type = get("target_type")[:32]
            if not re.fullmatch(r"[a-z_]{2,32}", f.target_type):
                f.errors["target_type"] = "Unknown target type."
                f.target_type = None
        if get("target"):
            f.target_id = get("target")[:128]
        for name, attr in (("from", "date_from"), ("to", "date_to")):
            if get(name):
                try:
                    setattr(f, attr, date.fromisoformat(get(name)))
                except ValueError:
                    f.errors[name] = "Use a date like 2026-01-31."
        if f.date_from and f.date_to and f.date_from > f.date_to:
            f.errors["to"] = "The end date is before the start date."
        f.q = get("q")[:200]
        for name in ("before", "after"):
            v = get(name)
            if v:
                if v.isdigit() and len(v) < 19:
                    setattr(f, name, int(v))
                else:
                    f.errors[name] = "Bad page cursor."
        return f

    def params(self, **overrides) -> dict:
        """The filters as query parameters (no cursor unless given)."""
        p = {
            "actor": str(self.actor) if self.actor else None,
            "person": str(self.person) if self.person else None,
            "as": self.person_as if self.person and self.person_as != "any" else None,
            "action": self.action,
            "target_type": self.target_type,
            "target": self.target_id,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "q": self.q or None,
        }
        p.update(overrides)
        return {k: v for k, v in p.items() if v not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.params())

    def without_cursor(self) -> Filters:
        return replace(self, before=None, after=None)


def search_query(q: str) -> str | None:
    """A safe tsquery: every word of ``q`` as a prefix, all required."""
    words = re.findall(r"[^\W_]+", (q or "").lower())[:MAX_SEARCH_WORDS]
    return " & ".join(f"{w}:*" for w in words) if words else None


# ----------------------------------------------------------------------------- conditions
@dataclass
class Bounds:
    """A date range as an id range (index-friendly) with its edges made exact."""

    lo_id: int | None = None  # exclusive
    hi_id: int | None = None  # exclusive
    exclude: list = field(default_factory=list)  # ids inside the id range but outside the dates
    empty: bool = False

    def conditions(self, t) -> list:
        conds = []
        if self.empty:
            conds.append(t.c.id < 0)
        if self.lo_id is not None:
            conds.append(t.c.id > self.lo_id)
        if self.hi_id is not None:
            conds.append(t.c.id < self.hi_id)
        if self.exclude:
            conds.append(t.c.id.not_in(self.exclude))
        return conds


def _bounds(session, org_id, f: Filters) -> Bounds:
    """Turn the date range into id conditions, exactly.

    ``id`` and ``occurred_at`` come from the database in the statement that
    creates an event (``nextval`` and ``clock_timestamp()``), so they grow
    together up to a tiny reordering between concurrent writers (bounded by
    ``DATE_SLACK``). One probe of ``(organization_id, occurred_at)`` finds the
    last event clearly before the start (everything newer has a larger id);
    the few events within ``2 * DATE_SLACK`` of the start whose id is larger
    but whose time is before it are excluded by id. Same at the end. The main
    query then carries only id conditions, which every filter index serves
    in order (a time condition would tempt the planner into sorting).
    """
    b = Bounds()
    ev, org = T, T.c.organization_id == org_id

    def ids_where(*conds):
        return list(session.execute(select(ev.c.id).where(org, *conds)).scalars())

    if f.date_from:
        start = datetime.combine(f.date_from, time.min, UTC)
        lo = session.execute(
            select(ev.c.id, ev.c.occurred_at)
            .where(org, ev.c.occurred_at < start - DATE_SLACK)
            .order_by(ev.c.occurred_at.desc())
            .limit(1)
        ).first()
        if lo is None:  # nothing clearly before: only events just before the start can intrude
            b.exclude += ids_where(ev.c.occurred_at < start)
        else:
            b.lo_id = lo.id
            # A larger id with an earlier time is within DATE_SLACK of ``lo``.
            b.exclude += ids_where(
                ev.c.occurred_at > lo.occurred_at - DATE_SLACK, ev.c.occurred_at < start, ev.c.id > lo.id
            )
    if f.date_to:
        end = datetime.combine(f.date_to + timedelta(days=1), time.min, UTC)
        hi = session.execute(
            select(ev.c.id, ev.c.occurred_at)
            .where(org, ev.c.occurred_at >= end + DATE_SLACK)
            .order_by(ev.c.occurred_at)
            .limit(1)
        ).first()
        if hi is None:
            b.exclude += ids_where(ev.c.occurred_at >= end)
        else:
            b.hi_id = hi.id
            b.exclude += ids_where(
                ev.c.occurred_at >= end, ev.c.occurred_at < hi.occurred_at + DATE_SLACK, ev.c.id < hi.id
            )
    return b


def _tsquery(q: str):
    tsq = search_query(q)
    return func.to_tsquery(literal_column("'simple'::regconfig"), tsq) if tsq else None


def _filter_conditions(org_id, f: Filters, t=T, text_filter: bool = True) -> list:
    conds = [t.c.organization_id == org_id]
    if f.actor:
        conds.append(t.c.actor_id == f.actor)
    if f.action:
        conds.append(t.c.action == f.action)
    if f.target_type:
        conds.append(t.c.target_type == f.target_type)
    if f.target_id:
        conds.append(t.c.target_id == f.target_id)
    tsq = _tsquery(f.q) if text_filter else None
    if tsq is not None:
        conds.append(t.c.search.op("@@")(tsq))
    return conds


def _person_branches(f: Filters, t=T):
    """The ways a person takes part (actor; target as member or user), each its own index range."""
    if not f.person:
        return [None]
    branches = []
    if f.person_as in ("any", "actor"):
        branches.append(t.c.actor_id == f.person)
    if f.person_as in ("any", "target"):
        branches += [and_(t.c.target_type == tt, t.c.target_id == str(f.person)) for tt in PERSON_TARGET_TYPES]
    return branches


def _person_condition(f: Filters, t=T):
    if not f.person:
        return None
    return or_(*list(_person_branches(f, t)))


# ----------------------------------------------------------------------------- free text
LABEL_CAP = 100  # more matching names than this: the word is common, scan the events instead


@dataclass
class TextRefs:
    actors: list = field(default_factory=list)  # actor ids with a name containing the rarest word
    targets: list = field(default_factory=list)  # (target_type, target_id) likewise
    horizon: str = "0"  # events from transactions at or after this are not sealed (no labels yet)
    common: bool = False


def _next_prefix(word: str) -> str:
    """The smallest string above every string starting with ``word`` (C collation)."""
    return word[:-1] + chr(ord(word[-1]) + 1)


def text_refs(session, org_id, q: str) -> TextRefs | None:
    """The actors and targets with a name containing the rarest word of ``q``
    (``audit_label_words``), or ``None`` when there is no text filter."""
    words = re.findall(r"[^\W_]+", (q or "").lower())[:MAX_SEARCH_WORDS]
    if not words:
        return None
    W = AuditLabelWord.__table__
    best = None
    for w in sorted(set(words), key=len, reverse=True):  # longer words are usually rarer
        w = w[:64]
        # An index-only range read, stopped early: a prefix shared by many
        # names ("a") must not read them all.
        raw = session.execute(
            select(W.c.kind, W.c.ref_type, W.c.ref_id)
            .where(W.c.organization_id == org_id, W.c.word >= w, W.c.word < _next_prefix(w))
            .limit(4 * LABEL_CAP)
        ).all()
        rows = list(dict.fromkeys(raw))
        if len(raw) < 4 * LABEL_CAP and len(rows) <= LABEL_CAP and (best is None or len(rows) < len(best)):
            best = rows
            if len(rows) <= 5:
                break
    refs = TextRefs(common=best is None)
    for kind, ref_type, ref_id in best or ():
        if kind == "actor":
            uid = parse_uuid(ref_id)
            if uid is not None:
                refs.actors.append(uid)
        else:
            refs.targets.append((ref_type, ref_id))
    S = AuditSeal.__table__
    refs.horizon = (
        session.execute(
            select(S.c.horizon.cast(Text)).where(S.c.organization_id == org_id).order_by(S.c.seq.desc()).limit(1)
        ).scalar()
        or "0"
    )
    return refs


def _text_branches(org_id, f: Filters, refs: TextRefs, conds_for, order_desc: bool, n: int) -> list:
    """Index-bound ways to find events matching the text: each matching actor's
    and target's newest events (one LATERAL probe each), plus the events not
    sealed yet (read by inserting transaction)."""
    out = []
    if refs.actors:
        r = func.unnest(cast(refs.actors, ARRAY(PGUUID(as_uuid=True)))).table_valued("aid").render_derived(name="ra")
        e = T.alias("ea")
        inner = (
            select(e.c.id)
            .where(e.c.actor_id == r.c.aid, *conds_for(e))
            .order_by(e.c.id.desc() if order_desc else e.c.id.asc())
            .limit(n)
            .lateral("xa")
        )
        out.append(select(inner.c.id).select_from(r).join(inner, true()))
    if refs.targets:
        types = [t for t, _ in refs.targets]
        ids = [i for _, i in refs.targets]
        r = (
            func.unnest(cast(types, ARRAY(String)), cast(ids, ARRAY(String)))
            .table_valued("tt", "ti")
            .render_derived(name="rt")
        )
        e = T.alias("et")
        inner = (
            select(e.c.id)
            .where(e.c.target_type == r.c.tt, e.c.target_id == r.c.ti, *conds_for(e))
            .order_by(e.c.id.desc() if order_desc else e.c.id.asc())
            .limit(n)
            .lateral("xt")
        )
        out.append(select(inner.c.id).select_from(r).join(inner, true()))
    e = T.alias("eu")
    out.append(
        select(e.c.id)
        .where(e.c.xid >= cast(refs.horizon, Xid8()), *conds_for(e))
        .order_by(e.c.id.desc() if order_desc else e.c.id.asc())
        .limit(n)
    )
    return out


# ----------------------------------------------------------------------------- pages
@dataclass
class Page:
    events: list
    newer: int | None  # cursor for the "Newer" link (after=...)
    older: int | None  # cursor for the "Older" link (before=...)


_KEPT_PAGES: dict = {}


def _page_statement(session, org_id, f: Filters, size: int, columns, ascending: bool, order):
    """The statement of one page (``page``); a date range or words probe the data first (``_bounds``, ``text_refs``)."""
    bounds = _bounds(session, org_id, f)
    refs = text_refs(session, org_id, f.q) if (f.q and not f.person) else None
    use_refs = refs is not None and not refs.common

    def conds_for(t):
        conds = _filter_conditions(org_id, f, t) + bounds.conditions(t)
        if f.before is not None:
            conds.append(t.c.id < f.before)
        elif f.after is not None:
            conds.append(t.c.id > f.after)
        return conds

    if use_refs:
        branches = _text_branches(org_id, f, refs, conds_for, not ascending, size + 1)
    else:
        branches = []
        for extra in _person_branches(f):
            where = conds_for(T) + ([extra] if extra is not None else [])
            branches.append(select(T.c.id).where(*where).order_by(order).limit(size + 1))
    if len(branches) == 1:
        ids_q = branches[0]
    else:
        u = union_all(*[b.subquery().select() for b in branches]).subquery()
        ids_q = select(u.c.id).distinct().order_by(u.c.id.asc() if ascending else u.c.id.desc()).limit(size + 1)
    # One statement: the page's ids (index-bound, limited) as a derived
    # table, joined back to the events for the columns a list shows. Plain
    # rows, not ORM entities: a page of entities cost a third of its time.
    ids = ids_q.subquery("page_ids")
    return (
        select(*columns)
        .select_from(T.join(ids, T.c.id == ids.c.id))
        .where(T.c.organization_id == org_id)
        .order_by(order)
    )


def page(org_id, f: Filters, size: int = PAGE_SIZE, session=None, columns=LIST_COLUMNS) -> Page:
    """One page of events matching ``f``, newest first, by keyset: rows of
    ``columns`` (``LIST_COLUMNS``, or ``DETAIL_COLUMNS``), by their names."""
    session = session or db.session
    ascending = f.after is not None and f.before is None
    order = T.c.id.asc() if ascending else T.c.id.desc()
    # Without a date range or words, the statement depends only on the
    # values below (no probe of the data shapes it): kept, not rebuilt - the
    # log's first page and the dashboard's recent activity are opened most,
    # and building the statement cost more than PostgreSQL's answer.
    key = None
    if not (f.date_from or f.date_to or f.q):
        key = (org_id, size, id(columns), f.actor, f.person, f.person_as, f.action, f.target_type, f.target_id)
        key += (f.before, f.after)
    stmt = _KEPT_PAGES.get(key) if key is not None else None
    if stmt is None:
        stmt = _page_statement(session, org_id, f, size, columns, ascending, order)
        if key is not None:
            if len(_KEPT_PAGES) >= 512:
                _KEPT_PAGES.clear()
            _KEPT_PAGES[key] = stmt
    rows = list(session.execute(stmt))
    more = len(rows) > size
    rows = rows[:size]
    if ascending:
        rows.reverse()
    if not rows:
        return Page([], None, None)
    first, last = rows[0].id, rows[-1].id
    if ascending:
        newer = first if more else None
        older = last
    else:
        newer = first if (f.before is not None) else None
        older = last if more else None
    return Page(rows, newer, older)


def get_event(org_id, event_id: int, session=None):
    """One event of the organization, or ``None``."""
    session = session or db.session
    return session.execute(
        select(AuditEvent)
        .where(AuditEvent.organization_id == org_id, AuditEvent.id == event_id)
        .options(defer(AuditEvent.search))
    ).scalar_one_or_none()


@dataclass
class EventIntegrity:
    seq: int | None
    sealed_at: datetime | None
    mac_ok: bool


def event_integrity(org_id, ev, session=None) -> EventIntegrity:
    """Is this event sealed (its sequence number), and does its MAC verify now?"""
    session = session or db.session
    seal = session.execute(
        select(AuditSeal.seq, AuditSeal.sealed_at).where(
            AuditSeal.organization_id == org_id, AuditSeal.event_id == ev.id
        )
    ).first()
    k = integrity.keyring().get(ev.key_id)
    ok = k is not None and integrity.equal(integrity.row_mac(k, ev), ev.mac)
    return EventIntegrity(seal.seq if seal else None, seal.sealed_at if seal else None, ok)


@dataclass
class LogState:
    retention_days: int | None
    plan_name: str | None
    oldest: datetime | None
    last_purge: object | None
    last_verify: object | None
    verify_signature_ok: bool
    sealed_through: int | None


@functools.cache
def _log_state_statement():
    """One round trip for ``log_state``, built once per process (the
    organization is a parameter): the oldest event and the last seal as
    scalar subqueries, beside the last purge and verify checkpoints (a UNION
    of two one-row selects, outer-joined to one row so that the figures come
    back when there is no checkpoint yet)."""
    org = bindparam("org_id", type_=PGUUID(as_uuid=True))
    cp = AuditCheckpoint.__table__
    last = union_all(
        *[
            select(cp).where(cp.c.organization_id == org, cp.c.kind == kind).order_by(cp.c.id.desc()).limit(1)
            for kind in ("purge", "verify")
        ]
    ).subquery("cp")
    one = select(literal(1).label("one")).subquery("one")
    return select(
        select(T.c.occurred_at)
        .where(T.c.organization_id == org)
        .order_by(T.c.id)
        .limit(1)
        .scalar_subquery()
        .label("oldest"),
        select(AuditSeal.seq)
        .where(AuditSeal.organization_id == org)
        .order_by(AuditSeal.seq.desc())
        .limit(1)
        .scalar_subquery()
        .label("sealed"),
        *last.c,
    ).select_from(one.outerjoin(last, true()))


def log_state(org_id, session=None) -> LogState:
    """How far back the log goes and how its last verification went."""
    session = session or db.session
    org = session.get(Organization, org_id)
    cps = dict.fromkeys(("purge", "verify"))
    oldest = sealed = None
    for row in session.execute(_log_state_statement(), {"org_id": org_id}):
        oldest, sealed = row.oldest, row.sealed
        if row.kind is not None:
            cps[row.kind] = row  # the checkpoint's columns, by name (what checkpoint_mac reads)
    verify_ok = False
    if cps["verify"] is not None:
        k = integrity.keyring().get(cps["verify"].key_id)
        verify_ok = k is not None and integrity.equal(integrity.checkpoint_mac(k, cps["verify"]), cps["verify"].mac)
    return LogState(
        retention_days=limit(org, "audit_retention_days") if org else None,
        plan_name=org.plan.name if org and org.plan else None,
        oldest=oldest,
        last_purge=cps["purge"],
        last_verify=cps["verify"],
        verify_signature_ok=verify_ok,
        sealed_through=sealed,
    )


# ----------------------------------------------------------------------------- choices
def label_for(org_id, user_id, session=None) -> str | None:
    """A readable label for a user id used in a filter, or ``None``.

    Only people this organization already knows are named: a member (their
    current name and e-mail), someone recorded in its log (the label of their
    newest event as actor, else as a member or user target), or an invitee
    (the address the organization invited). Any other id - another
    organization's user, a made-up id - gets ``None``: a filter must not turn
    the viewer into a directory of every account.
    """
    session = session or db.session
    member = session.execute(
        select(User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == org_id, Membership.user_id == user_id)
    ).first()
    if member is not None:
        return f"{member.name} <{member.email}>" if member.name else member.email
    # Recorded actors and targets: each one probe of an index ending with id, newest first.
    recorded = session.execute(
        select(T.c.actor_label)
        .where(T.c.organization_id == org_id, T.c.actor_id == user_id, T.c.actor_label.is_not(None))
        .order_by(T.c.id.desc())
        .limit(1)
    ).scalar()
    if recorded:
        return recorded
    for tt in PERSON_TARGET_TYPES:
        recorded = session.execute(
            select(T.c.target_label)
            .where(
                T.c.organization_id == org_id,
                T.c.target_type == tt,
                T.c.target_id == str(user_id),
                T.c.target_label.is_not(None),
            )
            .order_by(T.c.id.desc())
            .limit(1)
        ).scalar()
        if recorded:
            return recorded
    invited = session.execute(
        select(Invitation.email)
        .join(User, User.id == user_id)
        .where(
            Invitation.organization_id == org_id,
            or_(func.lower(Invitation.email) == func.lower(User.email), Invitation.accepted_by == user_id),
        )
        .order_by(Invitation.created_at.desc())
        .limit(1)
    ).scalar()
    return invited


# ----------------------------------------------------------------------------- export
EXPORT_COLUMNS = (
    "id",
    "occurred_at",
    "action",
    "actor_type",
    "actor_id",
    "actor_label",
    "impersonator_id",
    "target_type",
    "target_id",
    "target_label",
    "changes",
    "metadata",
    "ip",
    "user_agent",
    "request_id",
)
EXPORT_BATCH = 1000


def export_stream(app, org_id, f: Filters, fmt: str):
    """A generator of text chunks: every event matching ``f`` (newest first).

    Constant memory: a server-side cursor fetches ``EXPORT_BATCH`` rows at a
    time on a connection of its own, whose transaction carries the tenant
    setting for RLS itself - the request's scope may be gone by the time the
    response body is iterated - and every statement names the organization.
    """
    conds = _filter_conditions(org_id, f)
    person = _person_condition(f)
    if person is not None:
        conds.append(person)
    cols = [T.c[c] for c in EXPORT_COLUMNS if c not in ("metadata",)] + [T.c["metadata"]]
    stmt = select(*cols).where(*conds).order_by(T.c.id.desc())

    def generate():
        with app.app_context():
            engine = db.engine
            with engine.connect() as conn, conn.begin():
                apply_tenant_settings(conn, org_id)
                bounds = _bounds(conn, org_id, f)
                result = conn.execute(
                    stmt.where(*bounds.conditions(T)),
                    execution_options={"stream_results": True, "yield_per": EXPORT_BATCH},
                )
                if fmt == "csv":
                    yield from csv_chunks(
                        EXPORT_COLUMNS,
                        (
                            [[_export_value(c, r._mapping[c]) for c in EXPORT_COLUMNS] for r in part]
                            for part in result.partitions()
                        ),
                    )
                    return
                for part in result.partitions():
                    yield "".join(
                        json.dumps(
                            {c: _json_value(c, r._mapping[c]) for c in EXPORT_COLUMNS},
                            ensure_ascii=False,
                            separators=(",", ":"),
                        )
                        + "\n"
                        for r in part
                    )

    return generate()


def _export_value(col, value):
    if col in ("changes", "metadata"):
        return json.dumps(value or {}, ensure_ascii=False, sort_keys=True)
    if col == "occurred_at":
        return integrity.iso(value)
    return value


def _json_value(col, value):
    if col == "occurred_at":
        return integrity.iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if col == "ip" and value is not None:
        return str(value)
    return value


def event_json(row) -> dict:
    """One event as the JSON export and audit streams write it: the
    ``EXPORT_COLUMNS`` of ``row`` (a mapping), JSON-ready. Never a secret:
    the audit log holds none (redacted when recorded)."""
    return {c: _json_value(c, row[c]) for c in EXPORT_COLUMNS}


def sealed_events(org_id, after_seq: int, through_seq: int, session=None) -> list[dict]:
    """The organization's sealed events with ``after_seq < seq <= through_seq``,
    in seal order, each as ``event_json`` plus its ``seq``. The seal order
    never changes and never gains an event below a visible seal (see
    ``app.audit.rollups``), so a range read twice reads the same events."""
    s = AuditSeal.__table__
    cols = [T.c[c] for c in EXPORT_COLUMNS if c != "metadata"] + [T.c["metadata"]]
    stmt = (
        select(s.c.seq, *cols)
        .select_from(s.join(T, and_(T.c.organization_id == s.c.organization_id, T.c.id == s.c.event_id)))
        .where(s.c.organization_id == org_id, s.c.seq > after_seq, s.c.seq <= through_seq)
        .order_by(s.c.seq)
    )
    out = []
    for r in (session or db.session).execute(stmt):
        m = r._mapping
        out.append({"seq": m["seq"], **event_json(m)})
    return out

"""A believable audit history for the demo organizations, recorded through
``record()`` like any change (so it is signed), then sealed.

Acme also gets 90 days of back-dated history first (``seed_history``), so
every analytics chart has a shape: sign-ins, project work, members joining
over time, a few failed sign-ins. Those rows are built by the recorder's own
``event_row`` (the same per-row MAC), inserted oldest first with ids from the
events' sequence, so ids still grow with time (the viewer's date filter
relies on it) and the sealer chains them like any other: ``flask audit
verify`` stays green.

Called by the demo loader (``flask --app wsgi demo``); idempotent: an
organization whose log already has events is left alone (back-dating into a
log that has newer events would break the ids-follow-time order).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select, text

from app import audit
from app.audit.models import AuditEvent
from app.auditlog.sealing import seal_all
from app.auth.models import User
from app.extensions import db
from app.scoping import tenant_context
from app.tenancy.models import Membership, Organization

HISTORY_DAYS = 90
PROJECT_NAMES = [
    "Rocket Skates",
    "Giant Magnet",
    "Earthquake Pills",
    "Tornado Seeds",
    "Dehydrated Boulders",
    "Bat-Man Outfit",
    "Jet-Propelled Unicycle",
    "Instant Icicle Maker",
]


def seed_history(org, days: int = HISTORY_DAYS, seed: int = 16) -> int:
    """Insert ``days`` days of back-dated, signed events into ``org``'s log
    (which must be empty; the caller checks), oldest first. Returns the count."""
    rnd = random.Random(seed)
    members = (
        db.session.execute(select(User).join(Membership, Membership.user_id == User.id).order_by(User.email))
        .scalars()
        .all()
    )
    if not members:
        return 0
    core = [m for m in members if m.email.endswith("@acme.test") and "." not in m.email.split("@")[0]] or members
    others = [m for m in members if m not in core]
    # Generated members "joined" over the period (they are members today).
    joiners = others[: min(len(others), 70)]
    rnd.shuffle(joiners)
    join_day = {m.id: rnd.randrange(days) for m in joiners}
    now = datetime.now(UTC)
    start = (now - timedelta(days=days)).date()
    events: list[tuple[datetime, str, object, tuple, dict | None]] = []
    org_target = ("organization", str(org.id), org.name)
    for d in range(days):
        day = start + timedelta(days=d)
        weekend = day.weekday() >= 5
        growth = 0.6 + 0.6 * d / days  # the team gets busier
        active = list(core) + [m for m in joiners if join_day[m.id] <= d]
        n_active = max(1, int(len(active) * (0.08 if weekend else 0.35) * growth))
        today = rnd.sample(active, k=min(n_active, len(active)))

        def at(hour_lo=8, hour_hi=19, day=day):
            t = time(rnd.randrange(hour_lo, hour_hi), rnd.randrange(60), rnd.randrange(60))
            return datetime.combine(day, t, UTC)

        for m in today:
            events.append((at(), "auth.login", m, ("user", str(m.id), audit.user_label(m)), None))
            for _ in range(rnd.choice((0, 1, 1, 2, 3))):
                name = rnd.choice(PROJECT_NAMES)
                events.append(
                    (at(), "project.updated", m, ("project", None, name), {"description": [None, "Updated."]})
                )
        if rnd.random() < (0.15 if weekend else 0.5) * growth:
            m = rnd.choice(core)
            name = f"{rnd.choice(PROJECT_NAMES)} {rnd.randrange(2, 9)}"
            events.append((at(), "project.created", m, ("project", None, name), None))
        if rnd.random() < 0.12:
            events.append(
                (at(), "project.archived", rnd.choice(core), ("project", None, rnd.choice(PROJECT_NAMES)), None)
            )
        if rnd.random() < 0.05:
            events.append(
                (at(), "project.deleted", rnd.choice(core), ("project", None, rnd.choice(PROJECT_NAMES)), None)
            )
        for m in joiners:
            if join_day[m.id] == d:
                events.append((at(), "member.joined", m, ("member", str(m.id), audit.user_label(m)), None))
        if rnd.random() < 0.06:
            events.append((at(), "member.removed", core[0], ("member", None, "former.member@acme.test"), None))
        for _ in range(rnd.choice((0, 0, 0, 1, 1, 2, 4)) if not weekend else rnd.choice((0, 1))):
            events.append((at(0, 24), "auth.login_failed", None, ("user", None, None), {"reason": "bad password"}))
        if rnd.random() < 0.04:
            events.append((at(), "role.updated", core[0], ("role", None, "Auditor"), None))
        if rnd.random() < 0.03:
            events.append((at(), "org.settings_changed", core[0], org_target, None))
    events.sort(key=lambda e: e[0])
    ids = (
        db.session.execute(
            text("SELECT nextval('audit_events_id_seq') FROM generate_series(1, :n)"), {"n": len(events)}
        )
        .scalars()
        .all()
    )
    rows = []
    for eid, (ts, action, actor, target, changes) in zip(sorted(ids), events, strict=True):
        who = audit.Actor.of_user(actor) if actor is not None else audit.Actor("anonymous", None, "anonymous")
        before = {k: v[0] for k, v in (changes or {}).items()} if action != "auth.login_failed" else None
        after = {k: v[1] for k, v in (changes or {}).items()} if action != "auth.login_failed" else None
        meta = {"source": "demo history"}
        if action == "auth.login_failed":
            meta.update(changes or {})
        rows.append(audit.event_row(org.id, eid, ts, action, who, target, before, after, meta))
    for i in range(0, len(rows), 1000):
        db.session.execute(AuditEvent.__table__.insert(), rows[i : i + 1000])
    return len(rows)


def _user(email):
    return db.session.execute(select(User).where(func.lower(User.email) == email)).scalar_one_or_none()


def seed_demo_log() -> int:
    """Record the demo history of acme and globex (if their logs are empty) and seal it. Returns events added."""
    added = 0
    orgs = {
        o.slug: o
        for o in db.session.execute(
            select(Organization).where(Organization.slug.in_(["acme", "globex"]), Organization.deleted_at.is_(None))
        ).scalars()
    }
    script = {
        "acme": [
            (
                "owner@acme.test",
                "org.settings_changed",
                ("organization", None, "Acme Corporation"),
                {"name": "ACME Corp"},
                {"name": "Acme Corporation"},
                None,
            ),
            ("owner@acme.test", "member.role_changed", "admin@acme.test", {"role": "Member"}, {"role": "Admin"}, None),
            (
                "admin@acme.test",
                "role.created",
                ("role", None, "Auditor"),
                None,
                {"name": "Auditor", "permissions": ["audit:view", "members:view", "roles:view"]},
                None,
            ),
            (
                "admin@acme.test",
                "member.invited",
                ("invitation", None, "new.hire1@acme.test"),
                None,
                {"email": "new.hire1@acme.test", "role": "Member"},
                None,
            ),
            (
                "admin@acme.test",
                "member.role_changed",
                "manager@acme.test",
                {"role": "Member"},
                {"role": "Manager"},
                None,
            ),
            (
                "manager@acme.test",
                "project.created",
                ("project", None, "Rocket Skates"),
                None,
                {"name": "Rocket Skates", "status": "active"},
                None,
            ),
            (
                "member@acme.test",
                "project.updated",
                ("project", None, "Rocket Skates"),
                {"description": "Fast."},
                {"description": "Rocket Skates: a demo project of Acme Corporation."},
                None,
            ),
            (
                "manager@acme.test",
                "project.archived",
                ("project", None, "Bat-Man Outfit"),
                {"status": "active"},
                {"status": "archived"},
                None,
            ),
            (
                "admin@acme.test",
                "audit.exported",
                ("organization", None, "Acme Corporation"),
                None,
                None,
                {"format": "csv", "filters": {"action": "member.role_changed"}},
            ),
        ],
        "globex": [
            (
                "owner@globex.test",
                "org.settings_changed",
                ("organization", None, "Globex"),
                {"name": "Globex Corporation"},
                {"name": "Globex"},
                None,
            ),
            (
                "owner@globex.test",
                "member.role_changed",
                "consultant@example.test",
                {"role": "Member"},
                {"role": "Admin"},
                None,
            ),
            (
                "consultant@example.test",
                "project.created",
                ("project", None, "Monorail"),
                None,
                {"name": "Monorail", "status": "active"},
                None,
            ),
        ],
    }
    for slug, steps in script.items():
        org = orgs.get(slug)
        if org is None:
            continue
        with tenant_context(org.id):
            if db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one():
                continue
            if slug == "acme":
                added += seed_history(org)
            for actor_email, action, target, before, after, metadata in steps:
                actor = _user(actor_email)
                if actor is None:
                    continue
                if isinstance(target, str):  # a member, by e-mail
                    u = _user(target)
                    target = ("member", str(u.id) if u else None, audit.user_label(u) if u else target)
                elif target[0] == "organization":
                    target = ("organization", str(org.id), org.name)
                audit.record(
                    action,
                    target=target,
                    before=before,
                    after=after,
                    metadata={**(metadata or {}), "source": "demo"},
                    actor=actor,
                )
                added += 1
        db.session.commit()

    seal_all(db.engine)
    return added

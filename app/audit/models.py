"""Audit tables: events, seals (the per-organization hash chain) and checkpoints.

All three are tenant tables under row-level security and append-only for the
runtime role (INSERT and SELECT only, see ``rls.APPEND_ONLY_TABLES``). Only the
owner connection deletes, and only in the retention purge, which leaves a
signed checkpoint behind. The design is explained in ``app.audit.integrity``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from app import rls
from app.extensions import db
from app.scoping import TenantScoped

# The runtime role may only INSERT and SELECT these (grants re-applied after
# every migration; ``flask check`` reports it).
rls.APPEND_ONLY_TABLES.update({"audit_events", "audit_seals", "audit_checkpoints", "audit_label_words"})


class Xid8(UserDefinedType):
    """PostgreSQL ``xid8``: the 64-bit id of the transaction that inserted a row."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "xid8"


# The words of the actor's and target's names and types: the free-text filter,
# applied to rows an index found (never through an index: see AuditLabelWord).
# Everything but letters and digits becomes a space first, so "acme" finds
# "Ada <ada@acme.test>" (the parser would read e-mails and <...> as one token).
SEARCH_EXPRESSION = (
    "to_tsvector('simple'::regconfig, regexp_replace(lower("
    "coalesce(actor_label, '') || ' ' || actor_type || ' ' || coalesce(target_label, '') || ' ' || "
    "coalesce(target_type, '')"
    "), '[^[:alnum:]]+', ' ', 'g'))"
)


class AuditEvent(TenantScoped, db.Model):
    """One recorded change. Never updated; deleted only by the retention purge."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_label: Mapped[str | None] = mapped_column(String(400))
    impersonator_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    target_label: Mapped[str | None] = mapped_column(String(300))
    changes: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    meta: Mapped[dict] = mapped_column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Integrity: the inserting transaction (the sealer takes only finished
    # ones), the HMAC key's fingerprint and the row's HMAC-SHA256.
    xid = mapped_column(Xid8, nullable=False, server_default=text("pg_current_xact_id()"))
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    search = mapped_column(TSVECTOR, Computed(SEARCH_EXPRESSION, persisted=True))

    __table_args__ = (
        CheckConstraint(
            "actor_type IN ('user', 'api_key', 'system', 'support', 'anonymous', 'scim')", name="actor_type"
        ),
        # Every filter's index ends with id, so a filter, a date range
        # (translated to an id range) and the keyset cursor are one index range.
        Index("ix_audit_events_org_action", "organization_id", "action", "id"),
        Index("ix_audit_events_org_actor", "organization_id", "actor_id", "id"),
        Index("ix_audit_events_org_actor_action", "organization_id", "actor_id", "action", "id"),
        Index("ix_audit_events_org_target_type", "organization_id", "target_type", "id"),
        Index("ix_audit_events_org_target", "organization_id", "target_type", "target_id", "id"),
        Index("ix_audit_events_org_target_action", "organization_id", "target_type", "target_id", "action", "id"),
        # Only for the two probes that turn a date range into an id range.
        Index("ix_audit_events_org_occurred", "organization_id", "occurred_at"),
        # The sealer's range read: events of the organization by inserting transaction.
        Index("ix_audit_events_org_xid", "organization_id", "xid"),
        # No index on ``search``: under RLS a GIN index would never be used
        # (see AuditLabelWord). The column filters rows an index found.
    )


class AuditLabelWord(TenantScoped, db.Model):
    """One word of a name an actor or target appeared under in the log (filled
    by the sealer): what free-text search looks up first.

    Why a table of words rather than a full-text index: under row-level
    security PostgreSQL only uses an index for leakproof operators, and the
    text-search match ``@@`` is not leakproof, so a GIN index on the events
    is never used for the runtime role (the search would read the whole
    organization). Text comparison is leakproof: a prefix is a range of
    ``(organization_id, word)`` in a B-tree (``COLLATE "C"``: byte order),
    read index-only. The matching actors and targets then lead to their
    newest events through the actor and target indexes. Not evidence:
    ``verify`` never reads it.
    """

    __tablename__ = "audit_label_words"

    word: Mapped[str] = mapped_column(String(64, collation="C"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # actor | target
    ref_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class AuditSeal(TenantScoped, db.Model):
    """A link of an organization's chain: ``seq`` → event, the event's MAC and
    the chained MAC over everything before it."""

    __tablename__ = "audit_seals"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    row_mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    chain_mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    horizon = mapped_column(Xid8, nullable=False)
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("uq_audit_seals_org_event", "organization_id", "event_id", unique=True),)


class AuditCheckpoint(TenantScoped, db.Model):
    """A signed statement about an organization's log.

    ``kind = 'purge'``: the retention purge removed seq ``first_seq`` ..
    ``through_seq`` (``removed_count`` events); ``chain_mac`` is the chain at
    ``through_seq``, so verification resumes from there legitimately.
    ``kind = 'verify'``: a verification run's result (``ok``, ``detail``)
    up to ``through_seq``; the viewer shows the latest.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    first_seq: Mapped[int | None] = mapped_column(BigInteger)
    through_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    chain_mac: Mapped[bytes | None] = mapped_column(LargeBinary)
    removed_count: Mapped[int | None] = mapped_column(BigInteger)
    cutoff: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool | None] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (
        CheckConstraint("kind IN ('purge', 'verify')", name="kind"),
        Index("ix_audit_checkpoints_org_kind", "organization_id", "kind", "id"),
    )


# Only the owner connection writes redactions (an account's erasure,
# app.auditlog.erasure); the runtime and cross-organization roles read them.
rls.APPEND_ONLY_TABLES.add("audit_redactions")


class AuditRedaction(TenantScoped, db.Model):
    """A signed statement that an event's personal fields were replaced when
    the person they name deleted their account (design: ``app.auditlog.erasure``).

    ``previous_mac`` is the event's MAC before (the one its seal holds, or
    the previous redaction's ``redacted_mac``), ``redacted_mac`` its MAC
    after; ``fields`` names what was replaced; ``mac`` signs the statement
    with the audit key, so nobody with database access alone can write one.
    """

    __tablename__ = "audit_redactions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    previous_mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    redacted_mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    fields: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    mac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (Index("ix_audit_redactions_org_event", "organization_id", "event_id", "id"),)

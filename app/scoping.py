"""The ORM and PostgreSQL layers of tenant isolation (a foundation primitive:
every area, the audit recorder included, runs inside a scope).

The current organization lives in a context variable set once per request
(by the host resolver), per job, or by ``tenant_context`` in code and tests.
From it:

* every ORM SELECT/UPDATE/DELETE touching a ``TenantScoped`` model gets
  ``organization_id = <current>`` added (``with_loader_criteria``), and with
  no current organization it matches nothing;
* new ``TenantScoped`` rows get the current organization, and a row aimed at
  another organization is refused before it reaches the database;
* each transaction starts with ``set_config('app.org_id', …, true)`` so the
  PostgreSQL row-level security policies see the same organization (a
  request's transaction gets it from its first statement instead, see
  ``record_applied_settings``). The setting is transaction-local: a pooled
  connection cannot carry it into the next request.

The one escape is ``all_organizations(reason=...)``: grep for it to find every
place that reads across organizations. It does not flip a setting (no setting
the runtime role can make widens what it sees): it moves the session's
statements onto another connection, as the cross-organization database role
that the policies name (``TenantSession.get_bind``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import uuid
from dataclasses import dataclass

from flask_sqlalchemy.session import Session as _FlaskSession
from sqlalchemy import Connection, ForeignKey, event, false
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

from app.database import CROSS_ORG_BIND, apply_tenant_settings, tenant_settings

log = logging.getLogger("tenantry.tenancy")


@dataclass(frozen=True)
class _Scope:
    org_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    # Why the ORM's organization filter is lifted (all_organizations()).
    all_orgs_reason: str | None = None
    # Why statements run as the cross-organization role: set by
    # all_organizations() and kept by a tenant_context() nested in it, so a
    # unit of cross-organization work stays on one connection (one
    # transaction; a second connection would wait on the first's locks).
    cross_org_reason: str | None = None


_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("tenantry_scope", default=_Scope())  # noqa: B039 (frozen)


class TenantScoped:
    """Mixin for every table that belongs to an organization.

    ``organization_id`` is the leading column of the primary key (declare it
    first in the model and list it first in composite keys and indexes).
    """

    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id"), primary_key=True, sort_order=-100
    )


class TenantSession(_FlaskSession):
    """``db.session``: statements run as the runtime role, except inside
    ``all_organizations()``, where they run as the cross-organization role.

    The switch is by connection, not by setting: the runtime role's
    connections never see another organization's rows, whatever they run.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and _scope.get().cross_org_reason is not None:
            try:
                return self._db.engines[CROSS_ORG_BIND]
            except KeyError:
                # Fail closed: the runtime connection would silently see
                # one organization (or none) and the caller would act on it.
                raise RuntimeError(
                    f"all_organizations() needs the cross-organization bind {CROSS_ORG_BIND!r} (SQLALCHEMY_BINDS)"
                ) from None
        return super().get_bind(mapper, clause, bind, **kwargs)


class CrossTenantWrite(RuntimeError):
    """A row was about to be written into an organization other than the current one."""


def current_org_id() -> uuid.UUID | None:
    """The organization the current code runs for, or ``None``."""
    return _scope.get().org_id


def set_scope(org_id=None, user_id=None, all_orgs_reason=None, cross_org_reason=None) -> contextvars.Token:
    """Set the scope for the rest of this context; returns a token for ``reset_scope``."""
    token = _scope.set(_Scope(org_id, user_id, all_orgs_reason, cross_org_reason))
    _reapply_to_open_transaction()
    return token


def reset_scope(token: contextvars.Token, push: bool = True) -> None:
    """Restore the previous scope.

    ``push=False`` (the end of a request) defers telling PostgreSQL: an open
    transaction is marked stale and receives the settings before its next
    statement, if it ever runs one. A request's session is closed right
    after its teardown, so in production this saves a round trip per request
    and the stale mark dies with the transaction.
    """
    _scope.reset(token)
    if push:
        _reapply_to_open_transaction()
    else:
        _mark_open_transaction_stale()


@contextlib.contextmanager
def tenant_context(org_id, user_id=None):
    """Run the block as organization ``org_id``: the ORM filter and the RLS
    settings follow. Nested in ``all_organizations()``, the block stays on
    the cross-organization connection (the ORM filter still applies)."""
    prev = _scope.get()
    token = set_scope(org_id, user_id if user_id is not None else prev.user_id, None, prev.cross_org_reason)
    try:
        yield
    finally:
        reset_scope(token)


@contextlib.contextmanager
def all_organizations(reason: str):
    """Read and write across every organization: the single, greppable escape.

    Inside the block ``db.session`` runs its statements on a connection of
    the cross-organization database role (the ORM filter is lifted too);
    the block yields that role's engine for code that needs a bare
    connection. Changes made inside the block are flushed before it ends,
    so they are written by that role; pending changes from before it are
    flushed first, by the runtime role. Both connections commit with the
    session. The two connections are two database transactions: inside
    the block, do not touch rows the session wrote before it without a
    commit in between (the second would wait on the first's locks).

    Only platform code (the super-admin console, jobs, CLI commands, the
    demo loader) may use it; ``reason`` is logged so every use is explained.
    """
    if not reason or not reason.strip():
        raise ValueError("all_organizations() needs a reason")
    prev = _scope.get()
    log.info("cross-organization access: %s", reason)
    session = _current_session()
    if session is not None and (session.new or session.dirty or session.deleted):
        session.flush()
    token = set_scope(prev.org_id, prev.user_id, reason, prev.cross_org_reason or reason)
    try:
        yield _db().engines[CROSS_ORG_BIND]
        session = _current_session()
        if session is not None and (session.new or session.dirty or session.deleted):
            session.flush()
    finally:
        reset_scope(token)


def _db():
    # ``app.extensions`` builds ``db`` on TenantSession, defined above: a
    # module-level import of it here would be circular.
    from app.extensions import db

    return db


def _current_session() -> Session | None:
    try:
        return _db().session()
    except RuntimeError:  # no application context
        return None


def _settings_sql_params() -> dict:
    s = _scope.get()
    return tenant_settings(s.org_id, s.user_id)


def apply_rls_settings(connection, session: Session | None = None) -> None:
    """Make the current scope visible to PostgreSQL for this transaction."""
    s = _scope.get()
    params = apply_tenant_settings(connection, s.org_id, s.user_id)
    if session is not None:
        session.info[_APPLIED] = params


def record_applied_settings(session: Session, org_id, user_id) -> None:
    """Note that a statement just made ``org_id`` / ``user_id`` the open
    transaction's RLS settings.

    The request resolver sets them inside its lookup statement (the
    ``enter_organization`` function) to save a round trip; the next
    ``set_scope`` then sends ``set_config`` only if the scope differs, so the
    Python scope stays the authority.
    """
    if session.in_transaction():
        session.info.pop(_STALE, None)
        session.info[_APPLIED] = tenant_settings(org_id, user_id)


def _reapply_to_open_transaction() -> None:
    # If a transaction is already open (the scope changed mid-request or in a
    # test), push the new settings into it; otherwise after_begin will. A
    # transaction known to hold exactly these settings is left alone.
    session = _current_session()
    if session is None:
        return
    if session.in_transaction():
        session.info.pop(_STALE, None)
        if session.info.get(_APPLIED) == _settings_sql_params():
            return
        for conn in _open_connections(session):
            apply_rls_settings(conn, session)


_STALE = "tenantry_rls_stale"
# The settings the open transaction is known to hold (dropped when it ends).
_APPLIED = "tenantry_rls_applied"


def _mark_open_transaction_stale() -> None:
    session = _current_session()
    if session is not None and session.in_transaction():
        session.info[_STALE] = True


def _sync_if_stale(session: Session) -> None:
    """Send the current scope to a transaction whose settings fell behind."""
    if session.info.pop(_STALE, False) and session.in_transaction():
        if session.info.get(_APPLIED) == _settings_sql_params():
            return
        for conn in _open_connections(session):
            apply_rls_settings(conn, session)


# The connections the open transaction began on (one per bind in use: the
# runtime role's, and the cross-organization role's inside
# all_organizations()), noted by after_begin and dropped when it ends.
# SQLAlchemy has no public way to list them.
_CONNECTIONS = "tenantry_connections"


def _open_connections(session: Session) -> list:
    return list(session.info.get(_CONNECTIONS, {}).values())


@functools.lru_cache(maxsize=4096)
def _org_criteria(org_id: uuid.UUID | None):
    """The loader option that limits a statement to ``org_id`` (nothing when ``None``).

    Cached per organization: building it (the lambda is analysed for its
    bound value) cost about a fifth of a small query.
    """
    if org_id is None:
        return with_loader_criteria(TenantScoped, lambda cls: false(), include_aliases=True)
    return with_loader_criteria(TenantScoped, lambda cls: cls.organization_id == org_id, include_aliases=True)


def install(session_class=Session) -> None:
    """Register the ORM hooks on ``session_class`` (idempotent)."""
    if getattr(session_class, "_tenantry_hooks", False):
        return
    session_class._tenantry_hooks = True

    @event.listens_for(session_class, "after_begin")
    def _after_begin(session, transaction, connection):
        # Once per connection: a savepoint begins on its transaction's connection again.
        session.info.setdefault(_CONNECTIONS, {}).setdefault(id(connection), connection)
        # An empty scope needs no statement: the settings are transaction-local
        # (set_config(..., true)), so a new transaction starts with none, and
        # the policies then match nothing. Setting the scope later in the
        # transaction pushes it (set_scope -> _reapply_to_open_transaction).
        params = _settings_sql_params()
        if transaction.nested:
            if session.info.get(_APPLIED) == params:
                return  # a savepoint sees its transaction's settings
        elif _scope.get() == _Scope():
            # Known to be unset (which the policies read as '') only when this
            # session began the database transaction itself.
            if not isinstance(session.bind, Connection):
                session.info[_APPLIED] = params
            return
        apply_rls_settings(connection, session)

    @event.listens_for(session_class, "after_transaction_end")
    def _forget_stale(session, transaction):
        if transaction.parent is None:
            # The settings ended with the transaction, and so did its connections.
            session.info.pop(_STALE, None)
            session.info.pop(_APPLIED, None)
            session.info.pop(_CONNECTIONS, None)

    @event.listens_for(session_class, "after_soft_rollback")
    def _resync_after_savepoint_rollback(session, previous_transaction):
        # ROLLBACK TO SAVEPOINT also undoes a set_config made inside the
        # savepoint: what the transaction holds is unknown again, so the
        # next statement re-sends the current scope.
        if previous_transaction.nested and session.in_transaction():
            session.info.pop(_APPLIED, None)
            session.info[_STALE] = True

    @event.listens_for(session_class, "do_orm_execute")
    def _scope_query(state: ORMExecuteState):
        _sync_if_stale(state.session)  # every Session.execute, ORM or text()
        if not (state.is_select or state.is_update or state.is_delete):
            return
        if state.is_column_load or state.is_relationship_load:
            return  # criteria already attached to the parent query propagate
        reason = state.execution_options.get("all_organizations")
        if reason:
            # Statement-level escape: the ORM filter is lifted for this one
            # statement; RLS still applies (e.g. the member-self policy).
            log.debug("statement across organizations: %s", reason)
            return
        s = _scope.get()
        if s.all_orgs_reason:
            return
        state.statement = state.statement.options(_org_criteria(s.org_id))

    @event.listens_for(session_class, "before_flush")
    def _stamp_new_rows(session, flush_context, instances):
        _sync_if_stale(session)
        s = _scope.get()
        for obj in list(session.new) + list(session.dirty):
            if not isinstance(obj, TenantScoped):
                continue
            if obj.organization_id is None:
                if s.org_id is None:
                    raise CrossTenantWrite(f"{type(obj).__name__} has no organization and none is current")
                obj.organization_id = s.org_id
            elif s.org_id is not None and obj.organization_id != s.org_id and not s.all_orgs_reason:
                raise CrossTenantWrite(f"{type(obj).__name__} belongs to another organization than the current one")

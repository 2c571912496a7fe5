"""``all_roles()`` reads the roles once per request, and is never stale:
a role created, renamed or deleted in the same request shows at once, a
rolled-back one disappears, and another organization's scope reads its own."""

from __future__ import annotations

from flask import g
from sqlalchemy import event

from app.extensions import db
from app.rbac import services
from app.rbac.models import Role
from app.scoping import tenant_context


def _count_role_reads(app):
    reads = []

    def listener(conn, cursor, statement, *a):
        if "FROM roles" in statement:
            reads.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    return reads, lambda: event.remove(engine, "before_cursor_execute", listener)


def _names(roles):
    return [r.name for r in roles if r.key.startswith("custom:")]


def test_roles_are_read_once_per_request_and_organization(app, world):
    with app.test_request_context(), tenant_context(world.acme.id):
        reads, stop = _count_role_reads(app)
        try:
            first = services.all_roles()
            assert services.all_roles() == first
            assert len(reads) == 1
        finally:
            stop()


def test_a_role_written_in_the_request_shows_at_once_and_a_rollback_forgets_it(app, world):
    with app.test_request_context(), tenant_context(world.acme.id):
        assert _names(services.all_roles()) == []
        role = Role(organization_id=world.acme.id, name="Auditor", permissions=["audit:view"])
        db.session.add(role)
        assert _names(services.all_roles()) == ["Auditor"]  # pending in the session
        db.session.flush()
        role.name = "Reviewer"
        assert _names(services.all_roles()) == ["Reviewer"]
        db.session.rollback()
        assert _names(services.all_roles()) == []
        assert "_all_roles" not in g or _names(g._all_roles[1]) == []


def test_another_organization_reads_its_own_roles(app, world):
    with app.test_request_context():
        with tenant_context(world.acme.id):
            db.session.add(Role(organization_id=world.acme.id, name="Acme Only", permissions=["audit:view"]))
            db.session.commit()
            assert _names(services.all_roles()) == ["Acme Only"]
        with tenant_context(world.globex.id):
            assert _names(services.all_roles()) == []

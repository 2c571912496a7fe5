"""Organization settings: every change the settings pages make.

Like every service, each function checks its input itself, records one audit
event per change and never commits: the view commits, so the change and its
event land together or not at all.
"""

from __future__ import annotations

from app import audit
from app.concurrency import lock_for_edit
from app.errors import UserError
from app.extensions import db
from app.tenancy.models import Organization

NAME_MAX = 120


def rename(org: Organization, name: str, version=None) -> bool:
    """Give the organization a new display name; ``False`` when it is unchanged.

    Raises ``UserError`` (field ``name``) for an empty or too long name, and
    ``StaleEdit`` (409) when ``version`` (the one the form was drawn from) is
    no longer the organization's: the row is locked and re-read first, so the
    audit "before" is the name it held when this change replaced it.
    Records ``org.settings_changed`` with the names before and after.
    """
    new = (name or "").strip()
    if not new:
        raise UserError("Give the organization a name.", "name")
    if len(new) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    lock_for_edit(org, version)
    before = org.name
    if new == before:
        return False
    org.name = new
    db.session.flush()
    audit.record("org.settings_changed", target=org, before={"name": before}, after={"name": new})
    return True

"""Organization settings: every change the settings pages make.

Like every service, each function checks its input itself, records one audit
event per change and never commits: the view commits, so the change and its
event land together or not at all.
"""

from __future__ import annotations

from app import audit
from app.errors import UserError
from app.extensions import db
from app.tenancy.models import Organization

NAME_MAX = 120


def rename(org: Organization, name: str) -> bool:
    """Give the organization a new display name; ``False`` when it is unchanged.

    Raises ``UserError`` (field ``name``) for an empty or too long name.
    Records ``org.settings_changed`` with the names before and after.
    """
    new = (name or "").strip()
    if not new:
        raise UserError("Give the organization a name.", "name")
    if len(new) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    before = org.name
    if new == before:
        return False
    org.name = new
    db.session.flush()
    audit.record("org.settings_changed", target=org, before={"name": before}, after={"name": new})
    return True

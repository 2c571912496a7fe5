"""The dashboard's own state: whether its getting-started checklist is hidden.

Like every service, it records one audit event per change and never commits.
"""

from __future__ import annotations

from app import audit
from app.concurrency import lock_for_edit
from app.tenancy.models import Organization

# The key in ``organizations.settings``.
GETTING_STARTED_HIDDEN = "getting_started_hidden"


def getting_started_hidden(org: Organization) -> bool:
    """True once someone hid the organization's getting-started checklist."""
    return bool((org.settings or {}).get(GETTING_STARTED_HIDDEN))


def hide_getting_started(org: Organization) -> bool:
    """Hide the checklist for the whole organization; ``False`` when it already was.

    The row is locked and re-read first (two admins hiding it at once record
    one event). Records ``org.settings_changed``.
    """
    lock_for_edit(org)
    if getting_started_hidden(org):
        return False
    org.settings = {**(org.settings or {}), GETTING_STARTED_HIDDEN: True}
    audit.record(
        "org.settings_changed",
        target=org,
        before={"getting_started": "shown"},
        after={"getting_started": "hidden"},
    )
    return True

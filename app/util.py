"""Small helpers shared by every area."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (never naive)."""
    return datetime.now(UTC)


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern: ``%``, ``_`` and the escape
    character ``\\`` escaped (PostgreSQL's default ESCAPE is that backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_uuid(value) -> uuid.UUID | None:
    """A UUID from user input, or ``None`` when it is not one (never raises)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None

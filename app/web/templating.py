"""Template helpers shared by every page."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import g, has_app_context
from markupsafe import Markup

# The one way a page shows an instant: "29 Nov 2026, 14:10 UTC". No-break
# spaces inside the date and inside the time: a narrow column wraps only
# after the comma.
DATE_FORMAT = "%d\u00a0%b\u00a0%Y, %H:%M"


@lru_cache(maxsize=64)
def _zone(name: str | None):
    """The named IANA zone; UTC for none or a name this machine does not know."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def page_zone():
    """The current organization's time zone (its ``timezone`` setting), else UTC."""
    org = g.get("org") if has_app_context() else None
    settings = getattr(org, "settings", None) or {}
    return _zone(settings.get("timezone") if isinstance(settings, dict) else None)


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def time_tag(value: datetime | None) -> Markup:
    """``<time datetime="ISO">29 Nov 2026, 14:10 UTC</time>``, or ``""`` for ``None``.

    Every date a page shows goes through here: one format, in the
    organization's time zone (UTC on the apex, or while the organization has
    no ``timezone`` setting). The ``datetime`` attribute keeps the exact
    instant. A naive value is taken as UTC. The text is ``DATE_FORMAT``
    spelled out (English month names, as strftime's C locale gives them):
    a members or audit page shows a hundred dates, and strftime cost a
    tenth of its render time.
    """
    if value is None:
        return Markup("")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(page_zone())
    zone = local.tzname() or "UTC"
    return Markup(
        f'<time datetime="{value.isoformat()}">{local.day:02d}\u00a0{_MONTHS[local.month]}\u00a0{local.year},'
        f" {local.hour:02d}:{local.minute:02d}\u00a0{zone}</time>"
    )


def init_app(app) -> None:
    from app.web.jinja_buffer import BufferedCodeGenerator

    # Before any template is compiled: see app/web/jinja_buffer.py.
    app.jinja_env.code_generator_class = BufferedCodeGenerator
    app.add_template_filter(time_tag, "time_tag")

"""Organization settings: every change the settings pages make.

Like every service, each function checks its input itself, records one audit
event per change (with before and after) and never commits: the view
commits, so the change and its event land together or not at all. Edits of
the organization carry the version the form was drawn from
(``lock_for_edit``: a stale save is 409, nothing changed).

What a page needs on every request (time zone, colour, logo digest,
security policy) lives in ``organizations.settings`` (JSONB): the request's
entry statement reads that row anyway. Every write replaces the dict, so
SQLAlchemy sees the change and bumps the version.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import re
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app
from sqlalchemy import select

from app import audit
from app.auth.models import User
from app.auth.services import normalise_email
from app.concurrency import lock_for_edit, parse_version
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.settings.models import LOGO_MAX_BYTES, OrganizationLogo
from app.tenancy import notify
from app.tenancy import policy as security_policy
from app.tenancy import services as tenancy_services
from app.tenancy.models import Membership, Organization
from app.util import utcnow

NAME_MAX = 120


def _settings(org: Organization) -> dict:
    return dict(org.settings or {}) if isinstance(org.settings, dict) else {}


def _save_settings(org: Organization, settings: dict) -> None:
    org.settings = settings  # a new dict: the JSONB column is seen as changed


# --------------------------------------------------------------------------- general
def rename(org: Organization, name: str, version=None) -> bool:
    """Give the organization a new display name; ``False`` when it is unchanged.

    Raises ``UserError`` (field ``name``) for an empty or too long name, and
    ``StaleEdit`` (409) when ``version`` (the one the form was drawn from) is
    no longer the organization's: the row is locked and re-read first, so the
    audit "before" is the name it held when this change replaced it.
    Records ``org.settings_changed`` with the names before and after.
    """
    return update_general(org, name=name, version=version) != {}


def _check_name(name: str) -> str:
    new = (name or "").strip()
    if not new:
        raise UserError("Give the organization a name.", "name")
    if len(new) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", "name")
    return new


def _check_email(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return normalise_email(value)
    except ValueError:
        raise UserError("Enter an e-mail address such as it@example.com.", "contact_email") from None


def _check_timezone(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if value not in timezones():
        raise UserError("Choose a time zone from the list (an IANA name such as Europe/Paris).", "timezone")
    ZoneInfo(value)
    return value


_TIMEZONES: list[str] = []


def timezones() -> list[str]:
    """Every IANA time zone name this machine knows, sorted (computed once)."""
    if not _TIMEZONES:
        _TIMEZONES.extend(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))
    return _TIMEZONES


def update_general(
    org: Organization,
    *,
    name: str,
    slug: str | None = None,
    contact_email: str | None = None,
    timezone: str | None = None,
    version=None,
) -> dict:
    """Change the name, address (slug), contact e-mail and time zone; returns
    ``{field: (before, after)}`` for what changed (empty: nothing).

    ``None`` for ``slug``, ``contact_email`` or ``timezone`` leaves it as it
    is (the rename-only callers); an empty string clears the contact address
    and the time zone (UTC). Raises ``UserError`` beside the field for a bad
    value and ``StaleEdit`` (409) for a stale ``version``; nothing changes
    then. A new slug keeps the old address redirecting for 30 days (and
    nobody else can take it meanwhile). One ``org.settings_changed`` event
    carries every change.
    """
    new_name = _check_name(name)
    new_email = _check_email(contact_email) if contact_email is not None else None
    new_zone = _check_timezone(timezone) if timezone is not None else None
    lock_for_edit(org, version)
    settings = _settings(org)
    before, after = {}, {}
    if new_name != org.name:
        before["name"], after["name"] = org.name, new_name
        org.name = new_name
    if slug is not None and (slug or "").strip().lower() != org.slug:
        old = tenancy_services.change_slug(org, slug)
        before["slug"], after["slug"] = old, org.slug
    if contact_email is not None and new_email != settings.get("contact_email"):
        before["contact_email"], after["contact_email"] = settings.get("contact_email"), new_email
        settings["contact_email"] = new_email
    if timezone is not None and new_zone != settings.get("timezone"):
        before["timezone"], after["timezone"] = settings.get("timezone"), new_zone
        settings["timezone"] = new_zone
    if not after:
        return {}
    _save_settings(org, settings)
    db.session.flush()
    audit.record("org.settings_changed", target=org, before=before, after=after)
    return {k: (before[k], after[k]) for k in after}


# --------------------------------------------------------------------------- branding
_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
AA_RATIO = 4.5
LOGO_MIN_SIDE = 16
LOGO_MAX_SIDE = 2048


def _channel(c: int) -> float:
    s = c / 255
    return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4


def contrast_with_white(colour: str) -> float:
    """The WCAG 2 contrast ratio of white text on ``colour`` (``#rrggbb``)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    lum = 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)
    return 1.05 / (lum + 0.05)


def darker(colour: str, factor: float = 0.85) -> str:
    """``colour`` (``#rrggbb``) darkened: the hover shade of the brand colour."""
    r, g, b = (int(int(colour[i : i + 2], 16) * factor) for i in (1, 3, 5))
    return f"#{r:02x}{g:02x}{b:02x}"


def normalise_colour(value: str) -> str:
    """``value`` as ``#rrggbb`` (lower case); ``UserError`` (field ``colour``) if it is not a hex colour."""
    m = _HEX.match((value or "").strip())
    if not m:
        raise UserError("Enter a colour as #rrggbb, for example #1d4ed8.", "colour")
    digits = m.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def set_colour(org: Organization, colour: str, version=None) -> bool:
    """Set (or, with an empty value, clear) the brand colour; ``False`` when unchanged.

    Refused (``UserError`` beside ``colour``, the ratio in the message) when
    white text on it falls short of WCAG AA (4.5:1): buttons and the
    navigation put white text on it. Records ``org.branding_changed``.
    """
    new = None
    if (colour or "").strip():
        new = normalise_colour(colour)
        ratio = contrast_with_white(new)
        if ratio < AA_RATIO:
            raise UserError(
                f"White text on {new} has a contrast ratio of {ratio:.2f}:1; WCAG AA needs at least 4.5:1. "
                "Choose a darker colour.",
                "colour",
            )
    lock_for_edit(org, version)
    settings = _settings(org)
    old = settings.get("brand_color")
    if old == new:
        return False
    settings["brand_color"] = new
    _save_settings(org, settings)
    db.session.flush()
    audit.record("org.branding_changed", target=org, before={"brand_color": old}, after={"brand_color": new})
    return True


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def check_logo(data: bytes) -> tuple[str, int, int]:
    """``(content type, width, height)`` of a logo upload, or ``UserError`` (field ``logo``).

    The type is decided by the file's first bytes, never by its name or the
    type the browser sent, then confirmed by decoding it (Pillow): a file
    that claims to be a PNG but is HTML or SVG, or a truncated image, is
    refused. SVG is refused outright (it can carry script). At most 512 KB
    and 16 to 2048 pixels a side.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UserError("Choose an image file.", "logo")
    if len(data) > LOGO_MAX_BYTES:
        raise UserError(f"The logo is {len(data) // 1024} KB; the most is 512 KB.", "logo")
    if data.startswith(_PNG):
        content_type, pil_format = "image/png", "PNG"
    elif data.startswith(_JPEG):
        content_type, pil_format = "image/jpeg", "JPEG"
    else:
        head = data[:512].lstrip().lower()
        if b"<svg" in head or head.startswith(b"<?xml"):
            raise UserError("SVG logos are not accepted (they can carry scripts). Upload a PNG or JPEG.", "logo")
        raise UserError("Upload a PNG or JPEG image.", "logo")
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as img:
            width, height = img.size
            if not (LOGO_MIN_SIDE <= width <= LOGO_MAX_SIDE and LOGO_MIN_SIDE <= height <= LOGO_MAX_SIDE):
                raise UserError(
                    f"The logo is {width}×{height} pixels; use {LOGO_MIN_SIDE} to {LOGO_MAX_SIDE} pixels a side.",
                    "logo",
                )
            img.verify()
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UserError("This file is not a readable PNG or JPEG image.", "logo") from None
    return content_type, width, height


def set_logo(org: Organization, data: bytes, version=None) -> dict:
    """Store ``data`` as the organization's logo (replacing any); returns its description.

    Checked by ``check_logo`` first (``UserError`` beside ``logo``, nothing
    stored). The bytes go into ``organization_logos``; the organization's
    settings keep its digest, type and size, so pages link it (and bust
    caches) without reading the bytes. Records ``org.branding_changed``.
    """
    content_type, width, height = check_logo(data)
    lock_for_edit(org, version)
    digest = hashlib.sha256(data).hexdigest()
    row = db.session.get(OrganizationLogo, (org.id,))
    if row is None:
        row = OrganizationLogo(organization_id=org.id, content_type=content_type, data=data, sha256=digest)
        db.session.add(row)
    row.content_type, row.data, row.sha256, row.width, row.height = content_type, data, digest, width, height
    settings = _settings(org)
    old = settings.get("logo")
    new = {"sha256": digest, "type": content_type, "width": width, "height": height, "bytes": len(data)}
    settings["logo"] = new
    _save_settings(org, settings)
    db.session.flush()
    audit.record("org.branding_changed", target=org, before={"logo": old}, after={"logo": new})
    return new


def remove_logo(org: Organization, version=None) -> bool:
    """Remove the logo; ``False`` when there was none. Records ``org.branding_changed``."""
    lock_for_edit(org, version)
    settings = _settings(org)
    old = settings.pop("logo", None)
    row = db.session.get(OrganizationLogo, (org.id,))
    if old is None and row is None:
        return False
    if row is not None:
        db.session.delete(row)
    _save_settings(org, settings)
    db.session.flush()
    audit.record("org.branding_changed", target=org, before={"logo": old}, after={"logo": None})
    return True


def logo_of(org: Organization) -> OrganizationLogo | None:
    """The current organization's logo row (its bytes), or ``None``."""
    return db.session.execute(select(OrganizationLogo)).scalar_one_or_none()


# --------------------------------------------------------------------------- security
class LockoutRisk(UserError):
    """The allowlist would not include the admin's own address: saved only once confirmed."""


def _minutes(value, field: str, maximum: int, unit: str) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"Enter a whole number of {unit}, at least 1, or leave it empty.", field)
    n = int(text)
    if n > maximum:
        raise UserError(f"The platform allows at most {maximum} {unit}.", field)
    return n


def parse_allowlist(text: str) -> list[str]:
    """The allowlist typed one range per line (or separated by commas), each
    checked as an IPv4 or IPv6 CIDR range, normalised (``10.0.0.7/8`` →
    ``10.0.0.0/8``) and deduplicated. ``UserError`` beside ``ip_allowlist``
    names the first entry that is not a range."""
    out: list[str] = []
    for raw in re.split(r"[\s,]+", text or ""):
        if not raw:
            continue
        if len(raw) > 64:
            raise UserError(f"{raw[:64]}… is not an IP address or CIDR range.", "ip_allowlist")
        try:
            net = security_policy.parse_network(raw)
        except ValueError:
            raise UserError(
                f"{raw} is not an IP address or CIDR range (such as 203.0.113.0/24 or 2001:db8::/32).",
                "ip_allowlist",
            ) from None
        if str(net) not in out:
            out.append(str(net))
    if len(out) > security_policy.MAX_ALLOWLIST_ENTRIES:
        raise UserError(f"List at most {security_policy.MAX_ALLOWLIST_ENTRIES} ranges.", "ip_allowlist")
    return out


def owner_choices() -> list[tuple[str, str]]:
    """``(user id, label)`` of the organization's active Owners (break-glass candidates)."""
    rows = db.session.execute(
        select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.role == "owner", Membership.status == "active")
        .order_by(User.name)
    ).all()
    return [(str(r.id), f"{r.name} ({r.email})") for r in rows]


def _grace_days(value) -> int | None:
    """The grace period typed (whole days, 0 to 90; empty or 0: none)."""
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > security_policy.MAX_GRACE_DAYS:
        raise UserError(
            f"Enter a whole number of days from 0 to {security_policy.MAX_GRACE_DAYS}, or leave it empty.",
            "require_2fa_grace_days",
        )
    return int(text) or None


def update_security(
    org: Organization,
    *,
    idle_minutes,
    absolute_hours,
    ip_allowlist: str,
    sign_in_methods: list[str],
    require_2fa: bool,
    members_may_create_api_keys: bool,
    admin_address: str | None,
    api_keys_may_never_expire: bool = False,
    require_2fa_grace_days="",
    confirm_lockout: bool = False,
    version=None,
    break_glass_user_ids: list[str] | None = None,
) -> dict:
    """Save the security policy; returns ``{field: (before, after)}`` for what changed.

    Lifetimes are within the platform's (``SESSION_IDLE_TIMEOUT``,
    ``SESSION_ABSOLUTE_TIMEOUT``); the allowlist is CIDR ranges; at least one
    sign-in method; break-glass users are active Owners (``None``: keep the
    stored list); a grace period for ``require_2fa`` of 0 to 90 days,
    counted from when ``require_2fa`` was turned on (kept while it stays
    on). An allowlist that leaves out ``admin_address`` (the
    address this request came from) raises ``LockoutRisk`` unless
    ``confirm_lockout``. ``UserError`` beside the field otherwise; nothing
    changes on any refusal. Records ``org.security_changed`` and mails the
    members who receive ``security_changed``.
    """
    cfg = current_app.config
    idle = _minutes(idle_minutes, "idle_minutes", int(cfg["SESSION_IDLE_TIMEOUT"].total_seconds() // 60), "minutes")
    absolute = _minutes(
        absolute_hours, "absolute_hours", int(cfg["SESSION_ABSOLUTE_TIMEOUT"].total_seconds() // 3600), "hours"
    )
    allowlist = parse_allowlist(ip_allowlist)
    methods = [m for m in security_policy.SIGN_IN_METHODS if m in (sign_in_methods or [])]
    if not methods:
        raise UserError("Allow at least one way to sign in.", "sign_in_methods")
    if break_glass_user_ids is None:
        glass = security_policy.for_org(org).break_glass_user_ids
    else:
        owners = {uid for uid, _ in owner_choices()}
        if set(break_glass_user_ids) - owners:
            raise UserError("Only active Owners can be break-glass.", "break_glass")
        glass = tuple(sorted(set(break_glass_user_ids)))
    grace = _grace_days(require_2fa_grace_days)
    current = security_policy.for_org(org)
    since = None
    if require_2fa:
        since = current.require_2fa_since if current.require_2fa else None
        since = since or utcnow().isoformat()
    new = security_policy.SecurityPolicy(
        break_glass_user_ids=glass,
        idle_minutes=idle,
        absolute_hours=absolute,
        ip_allowlist=tuple(allowlist),
        sign_in_methods=tuple(methods),
        require_2fa=bool(require_2fa),
        require_2fa_grace_days=grace if require_2fa else None,
        require_2fa_since=since,
        members_may_create_api_keys=bool(members_may_create_api_keys),
        api_keys_may_never_expire=bool(api_keys_may_never_expire),
    ).as_dict()
    if allowlist and not confirm_lockout:
        probe = security_policy.from_settings({"security": new})
        if not probe.allows_ip(admin_address):
            raise LockoutRisk(
                f"Your address ({admin_address}) is not in this list: saving it would lock you out. "
                "Add your address, or tick the confirmation to save anyway.",
                "ip_allowlist",
            )
    lock_for_edit(org, version)
    settings = _settings(org)
    old = security_policy.from_settings(settings).as_dict()
    # When 2FA became required is bookkeeping, not a choice: not a change to report.
    changed = {k: (old[k], new[k]) for k in new if old[k] != new[k] and k != "require_2fa_since"}
    if not changed:
        return {}
    settings["security"] = new
    _save_settings(org, settings)
    db.session.flush()
    audit.record(
        "org.security_changed",
        target=org,
        before={k: v[0] for k, v in changed.items()},
        after={k: v[1] for k, v in changed.items()},
    )
    from app.settings import notifications  # the area's mail helper (it imports nothing of this module)

    notifications.send(
        org,
        "security_changed",
        f"The security policy of {org.name} changed",
        f"The security policy of {org.name} changed.",
        [f"{k.replace('_', ' ')}: {_show(v[0])} → {_show(v[1])}" for k, v in changed.items()],
        "settings.security",
    )
    return changed


def _show(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def is_address(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- notifications
def set_notifications(membership: Membership, enabled: list[str], version=None) -> bool:
    """Save which notification e-mails ``membership`` receives (kinds not in
    ``enabled`` are turned off); ``False`` when unchanged. Kinds its role may
    not receive keep their stored choice. ``StaleEdit`` (409) when ``version``
    is not the stored preference's (``0``: none stored yet).
    Records ``org.notifications_changed``."""
    offered = [k for k in notify.KINDS if notify.KINDS[k].permission in membership.permissions]
    row = notify.preference_of(membership.user_id)
    if row is None:
        wanted = parse_version(version)
        if wanted not in (None, 0):
            raise StaleEdit()
        row = notify.NotificationPreference(organization_id=membership.organization_id, user_id=membership.user_id)
        old_muted: list[str] = []
        new_row = True
    else:
        lock_for_edit(row, version)
        old_muted = list(row.muted or [])
        new_row = False
    muted = sorted({k for k in old_muted if k not in offered} | {k for k in offered if k not in (enabled or [])})
    if muted == sorted(old_muted) and not new_row:
        return False
    if muted == [] and new_row:
        return False
    row.muted = muted
    if new_row:
        db.session.add(row)
    db.session.flush()
    audit.record(
        "org.notifications_changed",
        target=("member", str(membership.user_id), membership.user.name if membership.user else None),
        before={"muted": sorted(old_muted)},
        after={"muted": muted},
    )
    return True

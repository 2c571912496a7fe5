"""An organization's security policy: read by every layer above, kept on the
organization row.

The policy lives in ``organizations.settings["security"]`` (JSONB), so the
request's entry statement, which already reads that row, brings it along:
enforcing it on every request (``app.tenancy.request``) costs no statement.
Other areas read it through ``for_org(org)`` and nothing else; the settings
pages write it through ``app.settings.services``.

* ``idle_minutes`` / ``absolute_hours``: this organization's session
  lifetimes, never longer than the platform's (``SESSION_IDLE_TIMEOUT``,
  ``SESSION_ABSOLUTE_TIMEOUT``); ``None``: the platform's.
* ``ip_allowlist``: CIDR ranges (IPv4 and IPv6); empty: every address.
  Enforced only while the plan includes ``ip_allowlist``.
* ``sign_in_methods``: stored here; the SSO area enforces it.
* ``require_2fa``, with ``require_2fa_grace_days`` counted from
  ``require_2fa_since`` (when it was turned on): a member without a second
  factor sees a banner with the deadline until it passes, then is refused
  every page but the one sending them to enrol (``app.tenancy.request``).
* ``break_glass_user_ids``: Owners who keep password sign-in (with their
  second factor) while ``sign_in_methods`` allows SSO only; each such
  sign-in is audited and mailed to the other Owners (``app.sso``).
* ``members_may_create_api_keys``, ``api_keys_may_never_expire``: the API
  area enforces them (a key without an expiry is offered only while the
  latter is on; turning it off later leaves existing keys as they are).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from flask import current_app

SIGN_IN_METHODS = {"password": "E-mail and password", "sso": "Single sign-on (SAML or OIDC)"}
MAX_ALLOWLIST_ENTRIES = 100
MAX_GRACE_DAYS = 90


@dataclass(frozen=True)
class SecurityPolicy:
    """One organization's policy, as stored (defaults: no restriction)."""

    idle_minutes: int | None = None
    absolute_hours: int | None = None
    ip_allowlist: tuple[str, ...] = ()
    sign_in_methods: tuple[str, ...] = tuple(SIGN_IN_METHODS)
    require_2fa: bool = False
    require_2fa_grace_days: int | None = None
    require_2fa_since: str | None = None  # ISO 8601, UTC: when require_2fa was turned on
    members_may_create_api_keys: bool = True
    break_glass_user_ids: tuple[str, ...] = ()
    api_keys_may_never_expire: bool = False
    _networks: tuple = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("_networks")
        d["ip_allowlist"] = list(self.ip_allowlist)
        d["sign_in_methods"] = list(self.sign_in_methods)
        d["break_glass_user_ids"] = list(self.break_glass_user_ids)
        return d

    def idle_timeout(self) -> timedelta:
        """The idle lifetime that applies here: the shorter of this policy's and the platform's."""
        platform = current_app.config["SESSION_IDLE_TIMEOUT"]
        return min(platform, timedelta(minutes=self.idle_minutes)) if self.idle_minutes else platform

    def absolute_timeout(self) -> timedelta:
        """The absolute lifetime that applies here: the shorter of this policy's and the platform's."""
        platform = current_app.config["SESSION_ABSOLUTE_TIMEOUT"]
        return min(platform, timedelta(hours=self.absolute_hours)) if self.absolute_hours else platform

    def two_factor_deadline(self) -> datetime | None:
        """When members without a second factor stop being let in: the end of
        the grace period, or ``None`` when there is none (refused at once).
        A malformed stored date counts as no grace period: fail closed."""
        if not self.require_2fa or not self.require_2fa_grace_days or not self.require_2fa_since:
            return None
        try:
            since = datetime.fromisoformat(self.require_2fa_since)
        except ValueError:
            return None
        if since.tzinfo is None:
            return None
        return since + timedelta(days=self.require_2fa_grace_days)

    def allows_ip(self, address: str | None) -> bool:
        """True when ``address`` is inside the allowlist (or there is none).

        An address that cannot be parsed is outside every range: fail closed.
        """
        if not self.ip_allowlist:
            return True
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._networks if net.version == ip.version)


def parse_network(text: str):
    """``text`` as an IPv4 or IPv6 network (a bare address is a /32 or /128); ``ValueError`` if it is not one."""
    return ipaddress.ip_network(text.strip(), strict=False)


def from_settings(settings: dict | None) -> SecurityPolicy:
    """The policy stored in an organization's ``settings`` (defaults for anything missing or malformed)."""
    raw = (settings or {}).get("security") if isinstance(settings, dict) else None
    if not isinstance(raw, dict):
        return SecurityPolicy()
    networks, cidrs = [], []
    for entry in raw.get("ip_allowlist") or ():
        try:
            networks.append(parse_network(str(entry)))
            cidrs.append(str(entry))
        except ValueError:
            continue  # stored by code that validated it; a bad row never widens access
    methods = tuple(m for m in raw.get("sign_in_methods") or () if m in SIGN_IN_METHODS) or tuple(SIGN_IN_METHODS)

    def _pos_int(v):
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

    return SecurityPolicy(
        idle_minutes=_pos_int(raw.get("idle_minutes")),
        absolute_hours=_pos_int(raw.get("absolute_hours")),
        ip_allowlist=tuple(cidrs),
        sign_in_methods=methods,
        require_2fa=bool(raw.get("require_2fa", False)),
        require_2fa_grace_days=_pos_int(raw.get("require_2fa_grace_days")),
        require_2fa_since=raw.get("require_2fa_since") if isinstance(raw.get("require_2fa_since"), str) else None,
        members_may_create_api_keys=bool(raw.get("members_may_create_api_keys", True)),
        break_glass_user_ids=tuple(str(u) for u in raw.get("break_glass_user_ids") or () if isinstance(u, str)),
        api_keys_may_never_expire=bool(raw.get("api_keys_may_never_expire", False)),
        _networks=tuple(networks),
    )


def for_org(org) -> SecurityPolicy:
    """The security policy of ``org`` (parsed once per loaded row and kept on it)."""
    cached = org.__dict__.get("_security_policy")
    settings = org.settings
    if cached is not None and cached[0] is settings:
        return cached[1]
    policy = from_settings(settings)
    org.__dict__["_security_policy"] = (settings, policy)
    return policy

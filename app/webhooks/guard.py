"""The SSRF guard: a webhook goes only to a public address, the one that was checked.

An endpoint's URL is typed by a customer, and the worker that delivers sits
inside our network: without a guard, ``http://169.254.169.254/`` (cloud
metadata), ``http://10.0.0.5:5432/`` or a name that resolves to either would
turn webhooks into a way to read or poke our own services.

* ``check_url(url, ...)`` (save time, and again before each delivery):
  the scheme (https; http only in development), the host resolved once, and
  **every** address it resolves to refused when it is private, loopback,
  link-local, multicast, reserved, unspecified, shared (CG-NAT), a
  translation prefix or a cloud metadata address. IPv4-mapped IPv6
  addresses (``::ffff:10.0.0.1``) are judged as the IPv4 address they carry.
* ``session(...)`` is the HTTP client deliveries use: ``requests-hardened``,
  whose transport resolves the host, refuses the same ranges, and connects
  to **the address it checked** (the URL's host is kept for the ``Host``
  header, TLS SNI and certificate checks), so a DNS answer that changes
  between the check and the connection (rebinding) cannot reach a private
  address. Redirects are never followed (a public URL could otherwise
  redirect to a private one).

The address classification uses the standard library's ``ipaddress``
properties plus the library's own list of extra blocked ranges, so no range
table is hand-maintained here. Loopback is allowed only when the app runs
in development with ``WEBHOOKS_ALLOW_LOOPBACK=1`` (``allow_loopback`` below);
production refuses to start with that setting.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

from app.errors import UserError

# Cloud metadata services: AWS/GCP/Azure/OpenStack (169.254.169.254, link-local
# anyway), AWS over IPv6 (fd00:ec2::254, unique-local anyway), Alibaba
# (100.100.100.200, shared address space anyway), Oracle (192.0.0.192).
# Listed on their own so that a change in how Python classifies a range can
# never let one through.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
ALLOWED_PORTS = None  # any port: receivers run on 8443, 3000...
USER_AGENT = "Tenantry-Webhooks/1"


class BlockedAddress(UserError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def loopback_allowed() -> bool:
    """``WEBHOOKS_ALLOW_LOOPBACK`` honoured only in development and test, never in production."""
    cfg = current_app.config
    return bool(cfg.get("WEBHOOKS_ALLOW_LOOPBACK")) and bool(cfg.get("DEVELOPMENT"))


def http_allowed() -> bool:
    """Plain ``http://`` receivers only in development and test (a local receiver)."""
    return bool(current_app.config.get("DEVELOPMENT"))


def blocked_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool = False) -> str | None:
    """Why webhooks may not go to ``ip`` (a few words), or ``None`` when it is a public address."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if any(ip in net for net in EXTRA_BLOCKED_NET_RANGES) or not ip.is_global:
        return "a special-purpose address"
    return None


def check_url(url: str, *, field: str = "url") -> tuple[str, list[str]]:
    """Refuse ``url`` unless it is http(s) with a host that resolves only to
    allowed addresses; returns ``(host, addresses)``.

    Raises ``UserError`` (422, on ``field``) for a malformed URL or a host
    that does not resolve, ``BlockedAddress`` for a refused address.
    """
    allow_loopback = loopback_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UserError("Enter a valid URL, like https://example.com/webhooks.", field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise UserError("Enter a valid URL, like https://example.com/webhooks.", field)
    if scheme == "http" and not http_allowed():
        raise UserError("Use an https:// URL: webhooks are only sent over TLS.", field)
    if parts.username or parts.password:
        raise UserError("Leave credentials out of the URL; verify the signature instead.", field)
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port or (443 if scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UserError(f"The host {host} cannot be found: check the address.", field) from None
    addresses = sorted({info[4][0].split("%", 1)[0] for info in infos})
    for addr in addresses:
        reason = blocked_reason(ipaddress.ip_address(addr), allow_loopback=allow_loopback)
        if reason is not None:
            shown = host if host == addr else f"{host} ({addr})"
            raise BlockedAddress(f"Webhooks cannot be sent to {shown}: it is {reason}.", field)
    return host, addresses


def session(timeout: float, *, allow_loopback: bool | None = None) -> HTTPSession:
    """An HTTP client that connects only to the checked, allowed address and
    never follows a redirect; ``timeout`` bounds connecting and reading each.
    ``allow_loopback``: ``loopback_allowed()`` unless given (a sender thread
    has no application context to ask)."""
    s = HTTPSession(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=loopback_allowed() if allow_loopback is None else allow_loopback,
            never_redirect=True,
            default_timeout=(timeout, timeout),
            user_agent_override=USER_AGENT,
        )
    )
    # No proxy, .netrc or CA bundle from the environment: a proxy would make
    # the connection to an address this guard never checked (and looking the
    # variables up on every request cost a quarter of a delivery's time).
    s.trust_env = False
    return s

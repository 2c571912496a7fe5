"""Domain and host names as a person types them, checked and made canonical.

Foundation-free rules (no database): what a claimable domain looks like,
the shipped list of free-mail providers nobody may claim, and whether a host
lies under a domain. Every refusal is a ``UserError`` naming its field.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import Path

from app.errors import UserError
from app.web import hosts

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
NAME_MAX = 253
# Names that never reach the public DNS: claiming them proves nothing.
RESERVED_SUFFIXES = ("localhost", "local", "internal", "invalid", "example", "arpa", "onion")


@functools.cache
def freemail_domains() -> frozenset[str]:
    """The shipped list of free-mail providers (``freemail.txt``), lower case."""
    text = (Path(__file__).with_name("freemail.txt")).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def is_freemail(domain: str) -> bool:
    """True for a free-mail provider's domain or any name under one (``mail.gmail.com``)."""
    labels = domain.split(".")
    return any(".".join(labels[i:]) in freemail_domains() for i in range(len(labels) - 1))


def canonical(raw: str | None, field: str = "name") -> str:
    """``raw`` as a domain name DNS can be asked about: lower case, ASCII
    (IDNA: ``bücher.de`` is ``xn--bcher-kva.de``), no trailing dot, at least
    two labels, each a valid DNS label, a real top-level domain. A URL or
    an e-mail address pasted whole is refused with a hint rather than
    guessed at. Raises ``UserError`` on ``field``."""
    name = (raw or "").strip().lower().rstrip(".")
    if not name:
        raise UserError("Enter a domain, such as acme.com.", field)
    if "://" in name or "/" in name or "@" in name or ":" in name:
        raise UserError("Enter the domain alone, such as acme.com (no https://, path, port or e-mail address).", field)
    if any(ord(ch) < 33 for ch in name):
        raise UserError("A domain has no spaces or control characters.", field)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise UserError("Enter a domain name, not an IP address.", field)
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise UserError("This is not a valid domain name.", field) from None
    labels = name.split(".")
    if len(name) > NAME_MAX or not all(_LABEL.match(label) for label in labels):
        raise UserError("This is not a valid domain name: letters, digits and hyphens, separated by dots.", field)
    if len(labels) < 2 or not _TLD.match(labels[-1]):
        raise UserError("Enter a full domain name with its extension, such as acme.com.", field)
    if labels[-1] in RESERVED_SUFFIXES:
        raise UserError(f"“.{labels[-1]}” names never reach the public DNS: enter a domain you own.", field)
    apex = hosts.apex().split(":")[0]
    if name == apex or name.endswith("." + apex) or apex.endswith("." + name):
        raise UserError("This domain is Tenantry's own: enter a domain your organization owns.", field)
    return name


def claimable(raw: str | None, field: str = "name") -> str:
    """``canonical(raw)``, refused when it is a free-mail provider's."""
    name = canonical(raw, field)
    if is_freemail(name):
        raise UserError(
            f"{name} is a free e-mail provider: anyone can get an address there, so no organization can claim it.",
            field,
        )
    return name


def host_under(raw: str | None, domain: str, field: str = "host") -> str:
    """``raw`` as a host name at ``domain`` (the domain itself or a name under
    it, such as ``portal.acme.com``). Raises ``UserError`` on ``field``."""
    host = canonical(raw, field)
    if host != domain and not host.endswith("." + domain):
        raise UserError(f"The host must be {domain} or a name under it, such as portal.{domain}.", field)
    return host


def email_domain(email: str) -> str | None:
    """The lower-case domain of an e-mail address, or ``None``."""
    _, at, domain = (email or "").rpartition("@")
    return domain.strip().lower().rstrip(".") or None if at else None

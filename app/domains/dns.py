"""Looking up a domain's verification record with dnspython.

``DNS_RESOLVER=host:port`` (app/config.py) sends every question to that
resolver (tests run a real DNS server on loopback); unset, the system's
resolvers are asked. Each check asks two names, in order: the record the
page asks for, ``_tenantry.<domain>``, and the domain itself (accepted too,
for DNS hosts that cannot create underscore names).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
from flask import current_app

from app.domains.models import RECORD_LABEL, RECORD_PREFIX

FOUND = "found"
WRONG = "wrong"  # a tenantry-verification record, with another token
MISSING = "missing"
UNREACHABLE = "unreachable"  # no answer from DNS: the check says nothing about the record


@dataclass(frozen=True)
class Check:
    outcome: str
    message: str | None = None
    where: str | None = None  # the name the record was found on

    @property
    def found(self) -> bool:
        return self.outcome == FOUND


def resolver() -> dns.resolver.Resolver:
    """A resolver as configured: ``DNS_RESOLVER`` (``host:port``, ``[v6]:port``
    or a bare host on port 53), or the system's."""
    configured = current_app.config.get("DNS_RESOLVER")
    timeout = float(current_app.config.get("DNS_TIMEOUT_SECONDS") or 5)
    if configured:
        r = dns.resolver.Resolver(configure=False)
        host, port = _split(configured)
        r.nameservers = [host]
        r.port = port
    else:
        r = dns.resolver.Resolver()
    r.timeout = r.lifetime = timeout
    return r


def _split(value: str) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, 53


def _texts(r: dns.resolver.Resolver, qname: str) -> list[str]:
    """The TXT strings at ``qname`` (each record's character-strings joined,
    as long records are split); empty when the name or the type is absent."""
    try:
        answer = r.resolve(qname, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace").strip() for rdata in answer]


def check(name: str, token: str) -> Check:
    """Whether ``tenantry-verification=<token>`` is published at
    ``_tenantry.<name>`` or ``<name>``. Never raises: a DNS failure is the
    outcome ``unreachable``, with what went wrong."""
    expected = f"{RECORD_PREFIX}{token}"
    r = resolver()
    seen_other = False
    for qname in (f"{RECORD_LABEL}.{name}", name):
        try:
            texts = _texts(r, qname)
        except dns.exception.Timeout:
            return Check(UNREACHABLE, "DNS did not answer in time. Try again in a minute.")
        except (dns.resolver.NoNameservers, dns.exception.DNSException) as e:
            return Check(UNREACHABLE, f"DNS could not be asked about {qname} ({type(e).__name__}). Try again later.")
        if expected in texts:
            return Check(FOUND, where=qname)
        seen_other = seen_other or any(t.startswith(RECORD_PREFIX) for t in texts)
    if seen_other:
        return Check(
            WRONG,
            f"A TXT record starting with {RECORD_PREFIX} exists, but its value is not this domain's: "
            f"set it to {expected}",
        )
    return Check(
        MISSING,
        f"No TXT record {expected} was found at {RECORD_LABEL}.{name}. DNS changes can take a while to appear: "
        "check the record and try again.",
    )

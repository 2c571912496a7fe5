"""Host names as this product compares them (foundation: no database, no
organizations; ``app.tenancy.hosts`` decides what a host means)."""

from __future__ import annotations

import re

# An organization's slug: one DNS label of 3 to 63 characters, so that
# ``<slug>.<SERVER_NAME>`` is a valid host name. The database checks the same
# pattern (constraint ck_organizations_slug_dns, migration 0001).
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")


def normalise(host: str | None) -> str:
    """``host`` as this product names it: no surrounding whitespace, lower
    case, no trailing dot on the name (``Acme.Example.:443`` and
    ``acme.example:443.`` are ``acme.example:443``), port kept.

    Code that checks a host and then uses it normalises once and uses the
    result for both, so what was checked is what is stored, compared and
    redirected to.
    """
    host = (host or "").strip().lower().rstrip(".")
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = f"{name.rstrip('.')}:{port}"
    return host

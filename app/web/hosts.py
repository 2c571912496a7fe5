"""Host names as this product compares them (foundation: no database, no
organizations; ``app.tenancy.hosts`` decides what a host means)."""

from __future__ import annotations


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

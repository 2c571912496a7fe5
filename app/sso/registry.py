"""The protocol seam: what SSO needs from a protocol (OIDC, SAML), and nothing more.

A protocol module registers one ``Protocol`` object under its key
(``register(OidcProtocol())``, at import). The rest of the area (the
portal, the sign-in flow, home-realm discovery, JIT provisioning) only
calls these methods, so adding a protocol touches no shared code:

* ``start_login(conn, pending) -> str``: the URL to send the browser to at
  the identity provider. ``pending`` is a dict the flow keeps for the
  callback (server side of the browser: the apex's signed cookie); the
  protocol stores what it must check later in it (state, nonce, PKCE
  verifier, request id), and the flow adds the mode (sign-in or test) and
  where to go after.
* ``finish_login(conn, pending, request) -> Identity``: check the
  provider's answer against ``pending`` and return the person it names,
  normalised. Anything wrong raises ``SsoRefused`` with a short reason
  (recorded in the audit log and shown to the person; never a 500).
* ``our_values(conn) -> list[(label, value)]``: the values the customer's IT
  copies into their provider (redirect URI; ACS URL and entity id).
* ``config_fields``: the form fields the portal asks for (``Field`` list);
  ``clean_config(conn, data) -> (config, secret | None)`` validates what was
  typed (``UserError`` on a field; ``secret`` ``None`` keeps the stored one).
* ``ready(conn) -> str | None``: why the connection cannot be tested yet
  (a missing value), or ``None``.

The sign-in itself is shared: the flow hands the ``Identity`` to
``app.sso.services.complete_sso_sign_in``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol as _Protocol


@dataclass(frozen=True)
class Identity:
    """A person as an identity provider asserted them, normalised across protocols.

    ``subject`` is the provider's stable id (OIDC ``sub``, SAML NameID);
    ``email`` lower-cased; ``groups`` the group names it sent (claim or
    attribute); ``attributes`` every claim/attribute received, for the
    connection test's display (JSON-serialisable).
    """

    subject: str
    email: str
    name: str = ""
    groups: tuple[str, ...] = ()
    attributes: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
            "groups": list(self.groups),
            "attributes": self.attributes,
        }


class SsoRefused(Exception):
    """The provider's answer was refused (``reason``: a short sentence, safe to show)."""

    def __init__(self, reason: str, code: str = "refused"):
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Field:
    """One configuration field of a protocol in the portal form."""

    name: str
    label: str
    help: str = ""
    secret: bool = False  # never shown back; empty on save keeps the stored value
    required: bool = True
    multiline: bool = False
    # A file input: the view hands ``clean_config`` its bytes (at most
    # ``upload_max`` + 1 of them, so "too large" can be told), or ``None``.
    upload: bool = False
    upload_max: int = 0


class Protocol(_Protocol):
    key: str
    label: str
    config_fields: tuple[Field, ...]

    def start_login(self, conn, pending: dict) -> str: ...

    def finish_login(self, conn, pending: dict, request) -> Identity: ...

    def our_values(self, conn) -> list[tuple[str, str]]: ...

    def clean_config(self, conn, data: dict) -> tuple[dict, str | None]: ...

    def ready(self, conn) -> str | None: ...


PROTOCOLS: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Make ``protocol`` available under ``protocol.key`` (idempotent)."""
    PROTOCOLS[protocol.key] = protocol
    return protocol


def get(key: str) -> Protocol | None:
    return PROTOCOLS.get(key)

"""A software WebAuthn authenticator for the tests: a real P-256 key pair
per passkey, real CBOR attestation objects ("none" attestation) and real
ECDSA signatures over authenticator data and the client data hash, exactly
the bytes a browser hands the server. Nothing of the server is replaced:
the tests talk to the app's endpoints, which check these with the
``webauthn`` library as they check a browser's. (The browser tests use
Chromium's own virtual authenticator.)

Knobs let a test make the answers a hostile or broken client would: another
challenge, another origin, a counter that goes backwards, another user's
handle.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40


@dataclass
class Passkey:
    """One credential held by the authenticator."""

    rp_id: str
    user_handle: bytes
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    @property
    def id(self) -> str:
        return bytes_to_base64url(self.credential_id)


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()


def _auth_data(rp_id: str, flags: int, count: int, attested: bytes = b"") -> bytes:
    return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count) + attested


def create(options: dict, origin: str, *, challenge: str | None = None) -> tuple[Passkey, dict]:
    """Answer ``navigator.credentials.create(options)`` (options as the
    server's JSON). Returns the new passkey and the credential JSON."""
    pk = Passkey(rp_id=options["rp"]["id"], user_handle=base64url_to_bytes(options["user"]["id"]))
    attested = bytes(16) + struct.pack(">H", len(pk.credential_id)) + pk.credential_id + pk.cose_public_key()
    auth_data = _auth_data(pk.rp_id, UP | UV | AT, pk.sign_count, attested)
    attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
    client_data = _client_data("webauthn.create", challenge or options["challenge"], origin)
    return pk, {
        "id": pk.id,
        "rawId": pk.id,
        "type": "public-key",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": bytes_to_base64url(client_data),
            "attestationObject": bytes_to_base64url(attestation),
            "transports": ["internal"],
        },
    }


def get(
    pk: Passkey,
    options: dict,
    origin: str,
    *,
    challenge: str | None = None,
    count: int | None = None,
    user_handle: bytes | None = None,
    verified: bool = True,
) -> dict:
    """Answer ``navigator.credentials.get(options)`` with ``pk``: the counter
    moves forward by one unless ``count`` says otherwise."""
    pk.sign_count = pk.sign_count + 1 if count is None else count
    auth_data = _auth_data(pk.rp_id, UP | (UV if verified else 0), pk.sign_count)
    client_data = _client_data("webauthn.get", challenge or options["challenge"], origin)
    signature = pk.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
    return {
        "id": pk.id,
        "rawId": pk.id,
        "type": "public-key",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": bytes_to_base64url(client_data),
            "authenticatorData": bytes_to_base64url(auth_data),
            "signature": bytes_to_base64url(signature),
            "userHandle": bytes_to_base64url(user_handle if user_handle is not None else pk.user_handle),
        },
    }


def other_challenge() -> str:
    """A well-formed challenge the server never drew."""
    return bytes_to_base64url(os.urandom(64))

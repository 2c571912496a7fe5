"""Encryption at rest: secrets the app must read back (webhook signing
secrets; later TOTP seeds and SSO client secrets), never stored in clear.

Authenticated encryption with the ``cryptography`` library's Fernet
(AES-128-CBC + HMAC-SHA256, a timestamp and a version byte; any change to a
token is detected and refused), through ``MultiFernet`` for key rotation:

* ``ENCRYPTION_KEYS`` (the environment, read in ``app/config.py``) is a
  comma-separated list of Fernet keys. The **first encrypts**; **every one
  decrypts**. To rotate: put a new key first, keep the old ones after it,
  re-encrypt at leisure (``reencrypt``), then drop the old key.
* Development and test derive one stable key from ``SECRET_KEY`` when the
  variable is unset; production refuses to start without it
  (``config.check``), as it does without ``SECRET_KEY``.

Guarantees: ``decrypt(encrypt(x)) == x``; a token altered in any byte, or
made under a key no longer listed, raises ``DecryptionError`` (never returns
wrong plaintext); a token never contains the plaintext. Generate a key with
``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

__all__ = ["Box", "DecryptionError", "decrypt", "encrypt", "generate_key", "reencrypt"]


class DecryptionError(ValueError):
    """The token was altered, truncated, or made under a key that is not configured."""


def generate_key() -> str:
    """A fresh key for ``ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode()


class Box:
    """Encrypts with the first of ``keys`` and decrypts with any of them."""

    def __init__(self, keys: Sequence[str | bytes]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as e:
            raise ValueError("an encryption key is not a Fernet key (32 url-safe base64-encoded bytes)") from e

    def encrypt(self, plaintext: str | bytes) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str | bytes) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii") if isinstance(token, str) else token)
        except (InvalidToken, UnicodeEncodeError) as e:
            raise DecryptionError("cannot decrypt: the value was altered or its key is not configured") from e

    def reencrypt(self, token: str | bytes) -> str:
        """``token`` under the first key (for rotation); raises ``DecryptionError`` like ``decrypt``."""
        try:
            return self._fernet.rotate(token.encode("ascii") if isinstance(token, str) else token).decode("ascii")
        except (InvalidToken, UnicodeEncodeError) as e:
            raise DecryptionError("cannot re-encrypt: the value was altered or its key is not configured") from e


_CACHE_KEY = "tenantry.crypto"


def _box() -> Box:
    """The application's box, built once per app from ``ENCRYPTION_KEYS``."""
    ext = current_app.extensions
    box = ext.get(_CACHE_KEY)
    if box is None:
        box = ext[_CACHE_KEY] = Box(current_app.config["ENCRYPTION_KEYS"])
    return box


def encrypt(plaintext: str | bytes) -> str:
    """``plaintext`` encrypted under the app's current key, as ASCII text for a column."""
    return _box().encrypt(plaintext)


def decrypt(token: str | bytes) -> bytes:
    """The plaintext of ``token``; ``DecryptionError`` when it was tampered with or its key is gone."""
    return _box().decrypt(token)


def reencrypt(token: str | bytes) -> str:
    """``token`` re-encrypted under the current (first) key."""
    return _box().reencrypt(token)

"""Encryption at rest (app/crypto.py): round trip, tampering refused, key rotation."""

from __future__ import annotations

import pytest

from app import crypto
from app.crypto import Box, DecryptionError


def test_a_value_round_trips_and_is_never_stored_in_clear():
    box = Box([crypto.generate_key()])
    token = box.encrypt("whsec_very-secret")
    assert "very-secret" not in token
    assert box.decrypt(token) == b"whsec_very-secret"
    # Two encryptions of one value differ (a fresh IV each time).
    assert box.encrypt("whsec_very-secret") != token


@pytest.mark.parametrize("position", [0, 10, 40, -5, -1])
def test_a_token_altered_in_any_byte_is_refused(position):
    box = Box([crypto.generate_key()])
    token = box.encrypt("secret")
    chars = list(token)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(DecryptionError):
        box.decrypt("".join(chars))


def test_a_truncated_or_foreign_token_is_refused():
    box = Box([crypto.generate_key()])
    token = box.encrypt("secret")
    with pytest.raises(DecryptionError):
        box.decrypt(token[:-8])
    with pytest.raises(DecryptionError):
        Box([crypto.generate_key()]).decrypt(token)  # another key entirely
    with pytest.raises(DecryptionError):
        box.decrypt("not a token ✗")


def test_rotation_new_key_first_decrypts_old_tokens_and_reencrypts_them():
    old, new = crypto.generate_key(), crypto.generate_key()
    token_old = Box([old]).encrypt("secret")
    rotated = Box([new, old])
    assert rotated.decrypt(token_old) == b"secret"  # the old key still decrypts
    token_new = rotated.encrypt("secret")
    assert Box([new]).decrypt(token_new) == b"secret"  # the first key encrypts
    with pytest.raises(DecryptionError):
        Box([old]).decrypt(token_new)
    re = rotated.reencrypt(token_old)
    assert Box([new]).decrypt(re) == b"secret"  # once re-encrypted, the old key can go


def test_a_key_that_is_not_a_fernet_key_is_refused():
    with pytest.raises(ValueError):
        Box(["short"])
    with pytest.raises(ValueError):
        Box([])


def test_the_app_helpers_use_the_configured_keys(app):
    token = crypto.encrypt("whsec_x")
    assert crypto.decrypt(token) == b"whsec_x"
    assert Box(app.config["ENCRYPTION_KEYS"]).decrypt(token) == b"whsec_x"

"""Password rules and hashing cost."""

from __future__ import annotations

from argon2 import PasswordHasher

from app.auth import passwords


def test_common_password_list_is_shipped_without_its_header():
    common = passwords.common_passwords()
    assert len(common) > 19000
    assert {"password", "123456", "qwertyuiop", "iloveyou"} <= common
    assert not any(p.startswith("# ") for p in common)
    first = passwords.__file__.replace("passwords.py", "common_passwords.txt")
    with open(first, encoding="utf-8") as fh:
        header = fh.readline()
    assert header.startswith("# ") and "BSD" in header and "Django" in header


def test_password_rules():
    assert "at least 8" in passwords.password_problem("short")
    assert "too common" in passwords.password_problem("Password1")
    assert "e-mail" in passwords.password_problem("ann@example.test", email="ann@example.test")
    assert passwords.password_problem("x" * 257)
    assert passwords.password_problem("plum-orbit-cactus-42", email="ann@example.test", name="Ann") is None


def test_production_cost_is_owasp_argon2id(app, monkeypatch):
    monkeypatch.setitem(app.config, "ARGON2_TIME_COST", 2)
    monkeypatch.setitem(app.config, "ARGON2_MEMORY_KIB", 19 * 1024)
    h = passwords.hash_password("plum-orbit-cactus-42")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password(h, "plum-orbit-cactus-42")
    assert not passwords.verify_password(h, "plum-orbit-cactus-43")


def test_verify_with_no_hash_is_false_without_error(app):
    assert passwords.verify_password(None, "anything") is False
    assert passwords.verify_password("not-a-hash", "anything") is False
    assert passwords.needs_rehash(PasswordHasher(time_cost=1, memory_cost=256).hash("x"))

"""Password hashing (Argon2id at OWASP's recommended cost) and password rules."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

MIN_LENGTH = 8
MAX_LENGTH = 256  # Argon2 has no limit, but an unbounded input is a DoS vector


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    # OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)


def hasher() -> PasswordHasher:
    cfg = current_app.config
    return _hasher(cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_KIB"])


def hash_password(password: str) -> str:
    return hasher().hash(password)


_DUMMY: dict[str, str] = {}


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``. With no stored hash it still
    spends the same time, so timing does not reveal whether an account exists."""
    h = hasher()
    if not stored:
        key = f"{h.time_cost}:{h.memory_cost}"
        if key not in _DUMMY:
            _DUMMY[key] = h.hash("not-a-real-password")
        stored = _DUMMY[key]
        try:
            h.verify(stored, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return h.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The refused passwords (lower-cased). Lines starting with ``# `` are comments
    (the file's origin); Django's list itself holds a few entries that begin
    with ``#`` and no space (``#1stunna``), which stay in."""
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(
        line.strip().lower()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("# ") and line.strip() != "#"
    )


def password_problem(password: str, email: str | None = None, name: str | None = None) -> str | None:
    """Why ``password`` is refused, or ``None`` when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if lowered in common_passwords():
        return "This password is too common. Choose something less guessable."
    if email and lowered == email.lower():
        return "Do not use your e-mail address as your password."
    if email and lowered == email.split("@")[0].lower() and len(lowered) < 12:
        return "Do not use your e-mail name as your password."
    return None

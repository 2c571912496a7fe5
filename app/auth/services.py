"""Accounts: creating users and super-admins."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from app.auth.models import User
from app.auth.passwords import hash_password, password_problem
from app.extensions import db
from app.util import utcnow


def normalise_email(email: str) -> str:
    """A syntactically valid, normalised address (lower-cased); raises ``ValueError``."""
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as e:
        raise ValueError(str(e)) from None


def find_user(email: str) -> User | None:
    return db.session.execute(select(User).where(func.lower(User.email) == (email or "").strip().lower())).scalar_one_or_none()


def create_user(email: str, name: str, password: str | None, verified: bool = False) -> User:
    """A new user (the caller commits). Raises ``ValueError`` on a bad e-mail or password."""
    email = normalise_email(email)
    if password is not None:
        problem = password_problem(password, email, name)
        if problem:
            raise ValueError(problem)
    user = User(
        email=email, name=name.strip(),
        password_hash=hash_password(password) if password else None,
        email_verified_at=utcnow() if verified else None,
        password_changed_at=utcnow() if password else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def create_superadmin(email: str, name: str, password: str) -> tuple[User, bool]:
    """Create a verified super-admin, or promote an existing user. Returns ``(user, created)``."""
    user = find_user(email)
    if user is not None:
        user.is_superadmin = True
        return user, False
    user = create_user(email, name, password, verified=True)
    user.is_superadmin = True
    return user, True

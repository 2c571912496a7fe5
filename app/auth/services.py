"""Accounts: sign-up, e-mail verification, log-in, passwords, e-mail changes, sessions.

Every function here guarantees its rule on its own (views only parse forms and
render), records an audit event for every change, and never commits: the view
commits, and mail queued with ``queue_mail`` leaves only once it has.

Errors the user can act on are raised as :class:`app.errors.UserError` (with
the form field they belong beside), :class:`Throttled` (429, with the wait) or
:class:`LinkInvalid` (410, with a title for its page). No message ever says whether an e-mail address has an account, except
sign-up, which cannot help it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import cast, func, select, update
from sqlalchemy.dialects.postgresql import INET

from app import audit, hooks
from app.auth import factors, notifications, passkeys, sessions, stepup, throttle
from app.auth.models import PasswordReset, User, UserSession
from app.auth.passwords import hash_password, needs_rehash, password_problem, verify_password
from app.errors import UserError
from app.extensions import db
from app.mail import queue_mail
from app.scoping import all_organizations
from app.util import parse_uuid, utcnow
from app.web.hosts import apex_url

VERIFY_SALT = "tenantry.verify-email"
EMAIL_CHANGE_SALT = "tenantry.email-change"
BAD_CREDENTIALS = "That e-mail and password do not match an account."
BAD_EMAIL = "Enter a valid e-mail address, like name@example.com."


class Throttled(UserError):
    """Too many attempts; ``retry_after`` seconds until the next one is allowed."""

    status = 429

    def __init__(self, retry_after: int, what: str = "attempts"):
        super().__init__(throttle.wait_message(retry_after, what))
        self.retry_after = retry_after


class LinkInvalid(UserError):
    """An e-mailed link that is unknown, tampered with, expired or already used (410)."""

    status = 410

    def __init__(self, message: str | None = None, title: str | None = None):
        super().__init__(
            message or "It has expired or was already used. Links like this work once and only for a short time."
        )
        self.title = title or "This link is no longer valid"


# --------------------------------------------------------------------------- users
def normalise_email(email: str) -> str:
    """A syntactically valid, normalised address (lower-cased); raises ``ValueError``."""
    # ``.test`` addresses (the demo accounts, the test suite) are reserved
    # names that email-validator refuses unless told this is not production.
    test_env = bool(current_app.config.get("DEVELOPMENT") or current_app.config.get("TESTING"))
    try:
        return validate_email(
            (email or "").strip(), check_deliverability=False, test_environment=test_env
        ).normalized.lower()
    except EmailNotValidError as e:
        raise ValueError(str(e)) from None


def find_user(email: str) -> User | None:
    return db.session.execute(
        select(User).where(func.lower(User.email) == (email or "").strip().lower())
    ).scalar_one_or_none()


def create_user(email: str, name: str, password: str | None, verified: bool = False) -> User:
    """A new user (the caller commits). Raises ``ValueError`` on a bad e-mail or password."""
    email = normalise_email(email)
    if password is not None:
        problem = password_problem(password, email, name)
        if problem:
            raise ValueError(problem)
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password) if password else None,
        email_verified_at=utcnow() if verified else None,
        password_changed_at=utcnow() if password else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def create_superadmin(email: str, name: str, password: str) -> tuple[User, bool]:
    """Create a verified super-admin, or promote an existing user. Returns ``(user, created)``.

    Runs as the cross-organization role: the runtime role cannot write
    ``users.is_superadmin`` (column privileges, checked by ``flask check``).
    """
    with all_organizations(reason="create or promote a platform super-admin"):
        user = find_user(email)
        created = user is None
        if created:
            user = create_user(email, name, password, verified=True)
        user.is_superadmin = True
    return user, created


def _clean_email(email: str, field: str) -> str:
    try:
        return normalise_email(email)
    except ValueError:
        raise UserError(BAD_EMAIL, field) from None


def _clean_name(name: str, field: str = "name") -> str:
    name = re.sub(r"\s+", " ", (name or "").strip())
    if not name:
        raise UserError("Enter your name.", field)
    if len(name) > 120:
        raise UserError("Use at most 120 characters.", field)
    return name


# --------------------------------------------------------------------------- sign-up
def sign_up(name: str, email: str, password: str, ip: str | None) -> User:
    """Create an unverified user and queue the verification mail.

    Guarantees: a valid, unused address; a password that passes the rules;
    at most ``SIGNUPS_PER_IP`` sign-ups per address (which also bounds how
    fast sign-up can be used to probe for accounts).
    """
    name = _clean_name(name)
    email = _clean_email(email, "email")
    problem = password_problem(password or "", email, name)
    if problem:
        raise UserError(problem, "password")
    if not throttle.hit("SIGNUPS_PER_IP", ip or "-"):
        raise Throttled(throttle.retry_after("SIGNUPS_PER_IP", ip or "-"), "sign-ups from your network")
    if find_user(email) is not None:
        raise UserError("An account with this e-mail address already exists. Log in, or reset your password.", "email")
    user = create_user(email, name, password)
    audit.record("auth.signup", target=user, actor=user)
    send_verification(user)
    return user


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _link_hours() -> int:
    return int(current_app.config["EMAIL_LINK_MAX_AGE"].total_seconds() // 3600)


def verification_token(user: User) -> str:
    """A signed token naming the user *and* the address: it dies when the address changes."""
    return _serializer(VERIFY_SALT).dumps({"u": str(user.id), "e": user.email.lower()})


def send_verification(user: User) -> None:
    """Queue the verification mail (sent when the transaction commits)."""
    link = apex_url(url_for("auth.verify", token=verification_token(user)))
    queue_mail(user.email, "Verify your e-mail address", "verify", user=user, link=link, hours=_link_hours())


def resend_verification(user: User) -> bool:
    """Queue another verification mail, at most ``VERIFICATION_MAILS_PER_ACCOUNT``.

    Returns False when the address is already verified (nothing to send).
    """
    if user.is_verified:
        return False
    key = str(user.id)
    if not throttle.hit("VERIFICATION_MAILS_PER_ACCOUNT", key):
        raise Throttled(throttle.retry_after("VERIFICATION_MAILS_PER_ACCOUNT", key), "verification e-mails")
    send_verification(user)
    audit.record("auth.verification_resent", target=user)
    return True


def _load_signed(salt: str, token: str) -> dict:
    max_age = int(current_app.config["EMAIL_LINK_MAX_AGE"].total_seconds())
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except (BadSignature, TypeError, ValueError):
        raise LinkInvalid() from None
    if not isinstance(data, dict):
        raise LinkInvalid()
    return data


def verification_target(token: str) -> User:
    """The user a valid verification link would verify; changes nothing.

    Refused (:class:`LinkInvalid`, shown as 410) when the link is tampered
    with, older than ``EMAIL_LINK_MAX_AGE``, names an address the user no
    longer has, or was already used.
    """
    data = _load_signed(VERIFY_SALT, token)
    uid = parse_uuid(data.get("u"))
    user = db.session.get(User, uid) if uid else None
    if user is None or user.email.lower() != data.get("e"):
        raise LinkInvalid()
    if user.is_verified:
        raise LinkInvalid("This link was already used: your e-mail address is verified.", title="Already verified")
    return user


def verify_email(token: str) -> User:
    """Mark the address in a valid verification link as verified (see ``verification_target``)."""
    user = verification_target(token)
    user.email_verified_at = utcnow()
    audit.record("auth.email_verified", target=user, actor=user)
    hooks.user_email_verified.send(user)
    return user


# --------------------------------------------------------------------------- log-in
def count_login_attempt(ip: str | None) -> None:
    """Count one log-in attempt from ``ip``; :class:`Throttled` past ``LOGIN_ATTEMPTS_PER_IP``."""
    key = ip or "-"
    if not throttle.hit("LOGIN_ATTEMPTS_PER_IP", key):
        raise Throttled(throttle.retry_after("LOGIN_ATTEMPTS_PER_IP", key))


KNOWN_ADDRESS_WINDOW = timedelta(days=90)


def _signed_in_from_here_before(user: User) -> bool:
    """True when ``user`` started a session of their own (not a support
    session) from this request's address in the last 90 days. One statement,
    sent only when the account's tiered throttle would make them wait."""
    ip = sessions.client_ip()
    if ip is None:
        return False
    return (
        db.session.execute(
            select(UserSession.id)
            .where(
                UserSession.user_id == user.id,
                UserSession.impersonator_id.is_(None),
                UserSession.ip == cast(ip, INET),
                UserSession.created_at >= utcnow() - KNOWN_ADDRESS_WINDOW,
            )
            .limit(1)
        ).first()
        is not None
    )


def _failure_keys(email_key: str) -> tuple[str, str]:
    """``(account and address, account)``: the keys failed sign-ins count under."""
    return f"{email_key}|{sessions.client_ip() or '-'}", email_key


def check_failure_throttles(user: User | None, email_key: str) -> None:
    """Raise :class:`Throttled` when a password or code for ``email_key``
    may not be tried now, before it is checked (so a throttled guess
    learns nothing, not even from a right one).

    * ``LOGIN_FAILURES_PER_ACCOUNT_AND_IP``: the lockout, per account *and*
      client address. A stranger's failures lock out the stranger's address
      only: the owner, elsewhere, signs in.
    * ``LOGIN_FAILURES_PER_ACCOUNT``: tiers far above it, per account,
      whatever the address, with a wait that grows with the failures (a
      guessing run spread over many addresses is slowed, then stopped).
      The owner, on an address they signed in from before, does not wait
      for it: that is where a stranger cannot follow.
    Unknown addresses count exactly like known ones.
    """
    pair, account = _failure_keys(email_key)
    if not throttle.allowed("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", pair):
        raise Throttled(throttle.retry_after("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", pair))
    wait = throttle.tiered_wait("LOGIN_FAILURES_PER_ACCOUNT", account)
    if wait and not (user is not None and _signed_in_from_here_before(user)):
        raise Throttled(wait)


def count_failure(email_key: str) -> dict | None:
    """Count one failed password or code for ``email_key`` from this address.

    Returns what this failure locked, if it started a lockout (``None``
    otherwise), as audit metadata: ``lockout`` (``account_and_address``: the
    per-address lockout; ``account``: a tier of the account-wide limit),
    the ``limit`` that filled and ``retry_after_seconds``. Only the failure
    that fills a limit returns it: later tries are refused before they are
    counted (``check_failure_throttles``), so one lockout is one event."""
    pair, account = _failure_keys(email_key)
    counted = throttle.hit("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", pair)
    tiers = throttle.hit_tiers("LOGIN_FAILURES_PER_ACCOUNT", account)
    if counted and not throttle.allowed("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", pair):
        return {
            "lockout": "account_and_address",
            "limit": current_app.config["LOGIN_FAILURES_PER_ACCOUNT_AND_IP"],
            "retry_after_seconds": throttle.retry_after("LOGIN_FAILURES_PER_ACCOUNT_AND_IP", pair),
        }
    if tiers:
        return {
            "lockout": "account",
            "limit": "; ".join(str(t) for t in tiers),
            "retry_after_seconds": throttle.tiered_wait("LOGIN_FAILURES_PER_ACCOUNT", account),
        }
    return None


def record_lockout(locked: dict | None, user: User | None, metadata: dict) -> None:
    """Audit ``auth.locked_out`` when a failure started a lockout
    (``count_failure``), beside its ``auth.login_failed`` or
    ``auth.second_factor_failed``: the same target and destinations (the
    platform log, and the organization whose host it happened on)."""
    if locked:
        audit.record("auth.locked_out", target=user, metadata={**metadata, **locked})


def _check_password(
    user: User | None, password: str, email_key: str, field: str, message: str, during: str = "login"
) -> None:
    """Verify ``password`` under the failure throttles (``check_failure_throttles``).

    The throttles are keyed by the lower-cased e-mail address whether or not
    an account has it, and are checked before the password is.
    """
    check_failure_throttles(user, email_key)
    # Argon2 runs for an unknown address too (against a dummy hash): a
    # known account's failure and an unknown one's take the same time.
    matches = verify_password(user.password_hash if user is not None else None, password or "")
    if user is None or not matches:
        locked = count_failure(email_key)
        # Never the text typed: for an unknown address only a keyed fingerprint
        # (people type passwords into the e-mail field).
        metadata = {"during": during, "reason": "password" if user else "unknown_email"}
        if user is None:
            metadata.update(audit.email_fingerprint(email_key))
        audit.record("auth.login_failed", target=user, metadata=metadata)
        record_lockout(locked, user, metadata)
        raise UserError(message, field)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)


def authenticate(email: str, password: str) -> User:
    """The user whose e-mail and password these are.

    Raises :class:`UserError` with one message for an unknown address and a
    wrong password alike, and :class:`Throttled` when the failure throttles
    say wait (``check_failure_throttles``). Rehashes a
    password stored at an older cost.
    """
    key = (email or "").strip().lower()
    user = find_user(key)
    _check_password(user, password, key, "password", BAD_CREDENTIALS)
    if user.disabled_at is not None:
        # Said only to whoever knows the password: the account's owner.
        raise UserError("This account has been disabled. Contact support.", "email")
    return user


def log_in(user: User, factor: str | None = None) -> UserSession:
    """Start a new server-side session (new id: no fixation) and audit it,
    naming the second factor used, if any."""
    new_device = _is_new_device(user)
    rec = sessions.start(user)
    stepup.mark_authenticated(rec)
    metadata = {"session_id": str(rec.id)}
    if factor:
        metadata["second_factor"] = factor
    if new_device:
        metadata["new_device"] = True
    audit.record("auth.login", target=user, actor=user, metadata=metadata)
    if new_device:
        notifications.notify_security_event(user, "new_device", device=describe_user_agent(rec.user_agent), ip=rec.ip)
    hooks.user_signed_in.send(user)
    return rec


def _is_new_device(user: User) -> bool:
    """True when ``user`` signed in before, but never from this request's
    pair of user agent and address (revoked and expired sessions count: the
    rows stay). A first sign-in ever is not "new": there is nothing to
    compare it with, and sign-up would mail its own user. One statement."""
    ua = (request.user_agent.string or "")[:400]
    seen_before, seen_here = db.session.execute(
        select(
            func.count(UserSession.id) > 0,
            func.coalesce(
                func.bool_or(
                    UserSession.user_agent.is_not_distinct_from(ua)
                    & UserSession.ip.is_not_distinct_from(cast(sessions.client_ip(), INET))
                ),
                False,
            ),
        ).where(UserSession.user_id == user.id, UserSession.impersonator_id.is_(None))
    ).one()
    return bool(seen_before) and not seen_here


def password_rule(user: User) -> hooks.PasswordRule | None:
    """What organizations' policies say of ``user`` signing in with a password
    (``hooks.password_sign_in``): ``None`` (nothing), a break-glass rule
    (allowed with a second factor), or a refusal, raised here as
    ``UserError`` 403 beside the e-mail (after ``auth.login_failed`` with
    reason ``sso_required`` is recorded). A break-glass Owner without a
    second factor is refused too: the rule is password *plus* second factor."""
    rules = [r for r in hooks.password_sign_in.send(user) if r is not None]
    refusal = next((r for r in rules if r.refusal), None)
    glass = next((r for r in rules if r.break_glass), None)
    if refusal is None and glass is not None and not factors.has_second_factor(user):
        refusal = hooks.PasswordRule(
            refusal="Break-glass sign-in needs a second factor, and this account has none. Sign in with SSO.",
            sso_url=glass.sso_url,
        )
    if refusal is not None:
        audit.record("auth.login_failed", target=user, metadata={"during": "login", "reason": "sso_required"})
        raise UserError(refusal.refusal, "email", status=403)
    return glass


def needs_second_factor(user: User) -> bool:
    """True when a sign-in of ``user`` needs a second step after the password."""
    return factors.has_second_factor(user)


def check_second_factor(user: User, code: str) -> str:
    """The sign-in's second step: ``code`` (TOTP or recovery code) for ``user``.

    Failures count on the same throttles as wrong passwords
    (``check_failure_throttles``), checked first, so six digits cannot be
    guessed. A failure is audited (``auth.second_factor_failed``) and
    raises :class:`UserError` beside ``code``; returns the factor used.
    """
    key = user.email.lower()
    check_failure_throttles(user, key)
    try:
        return factors.verify_second_factor(user, code, "code")
    except UserError as e:
        locked = count_failure(key)
        metadata = {"during": "login", "reason": e.message}
        audit.record("auth.second_factor_failed", target=user, metadata=metadata)
        record_lockout(locked, user, {"during": "login", "reason": "second_factor"})
        raise


def sign_in_with_passkey(credential, ip: str | None) -> User:
    """The passkey sign-in (no e-mail, no password): the user the passkey
    names, once its response to this browser's sign-in challenge checks out
    and the authenticator verified the person. Counted on the per-address
    log-in throttle; a refusal is audited (``auth.passkey_failed``) and
    raises ``UserError``. The caller starts the session (``log_in``)."""
    count_login_attempt(ip)
    try:
        row = passkeys.authenticate(passkeys.SIGN_IN, credential)
    except UserError as e:
        audit.record("auth.passkey_failed", metadata={"during": "sign_in", "reason": e.message})
        raise
    user = passkeys.user_of(row)
    if user is None:
        audit.record("auth.passkey_failed", metadata={"during": "sign_in", "reason": "account disabled"})
        raise UserError("This account has been disabled. Contact support.", "passkey", status=403)
    return user


def check_passkey_second_factor(user: User, credential) -> None:
    """The sign-in's second step with a passkey of ``user`` (after their
    password). Throttled and audited like a wrong code."""
    key = user.email.lower()
    check_failure_throttles(user, key)
    try:
        passkeys.authenticate(passkeys.SECOND_FACTOR, credential, user)
    except UserError as e:
        locked = count_failure(key)
        audit.record(
            "auth.second_factor_failed",
            target=user,
            metadata={"during": "login", "factor": "passkey", "reason": e.message},
        )
        record_lockout(locked, user, {"during": "login", "reason": "second_factor"})
        raise


# --------------------------------------------------------------------------- step-up
def step_up_with_password(user: User, rec: UserSession, password: str, code: str | None) -> str:
    """Step up with the password and, for an account that has one, an
    authenticator-app or recovery code (a passkey-only account steps up with
    its passkey). Returns the method; failures are audited and throttled
    like a log-in, and raise ``UserError`` beside their field."""
    stepup_refuse_support(rec)
    try:
        _check_password(
            user, password, user.email.lower(), "password", "That is not your current password.", during="step_up"
        )
        method = "password"
        if factors.has_second_factor(user):
            if factors.active_totp(user) is None:
                raise UserError("Confirm with your passkey: it is your second factor.", "code")
            if not (code or "").strip():
                raise UserError("Enter the code from your authenticator app, or a recovery code.", "code")
            method = "password+" + factors.verify_second_factor(user, code, "code")
    except UserError as e:
        if not isinstance(e, Throttled):
            audit.record("auth.step_up_failed", target=user, metadata={"reason": e.message})
        raise
    stepup.mark_authenticated(rec)
    audit.record("auth.step_up", target=user, metadata={"method": method, "session_id": str(rec.id)})
    return method


def step_up_with_passkey(user: User, rec: UserSession, credential) -> None:
    """Step up with one of the user's passkeys (the authenticator must verify
    the person), to this session's step-up challenge; audited either way."""
    stepup_refuse_support(rec)
    try:
        row = passkeys.authenticate(passkeys.STEP_UP, credential, user, rec.id)
    except UserError as e:
        audit.record("auth.step_up_failed", target=user, metadata={"reason": e.message, "method": "passkey"})
        raise
    stepup.mark_authenticated(rec)
    audit.record(
        "auth.step_up", target=user, metadata={"method": "passkey", "passkey": row.name, "session_id": str(rec.id)}
    )


def stepup_refuse_support(rec: UserSession | None) -> None:
    """A support session never steps up (it is not the person): ``UserError`` 403."""
    if rec is None or rec.impersonator_id is not None:
        raise UserError(stepup.SUPPORT_REFUSAL, status=403)


def log_out(user: User | None) -> None:
    """End the current sign-in on every host it reached."""
    rec = sessions.current()
    if user is not None and rec is not None:
        audit.record("auth.logout", target=user, actor=user, metadata={"session_id": str(rec.id)})
    sessions.end_current()


# --------------------------------------------------------------------------- password reset
def _token_hash(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def request_password_reset(email: str, ip: str | None) -> None:
    """Enqueue the password-reset job for this address, whether or not an
    account has it: the request does the same work either way (one job),
    and the job decides (``app/auth/tasks.py``). The caller shows the same
    answer either way. Per network, ``PASSWORD_RESET_REQUESTS_PER_IP``
    requests (:class:`Throttled`).
    """
    from app import jobs
    from app.auth.tasks import password_reset_requested

    email = _clean_email(email, "email")
    if not throttle.hit("PASSWORD_RESET_REQUESTS_PER_IP", ip or "-"):
        raise Throttled(throttle.retry_after("PASSWORD_RESET_REQUESTS_PER_IP", ip or "-"), "requests")
    jobs.enqueue(password_reset_requested, origin=True, email=email)


def send_password_reset(email: str) -> bool:
    """Mail a reset link when an account has this address; otherwise do nothing.

    Runs in the password-reset job. Only the SHA-256 of the token is stored.
    Per account, at most ``PASSWORD_RESET_MAILS_PER_ACCOUNT`` mails (silently:
    an error would reveal the account). Returns whether a link was queued.
    """
    user = find_user(email)
    if user is None or not throttle.hit("PASSWORD_RESET_MAILS_PER_ACCOUNT", email):
        return False
    token = secrets.token_urlsafe(32)
    max_age = current_app.config["PASSWORD_RESET_MAX_AGE"]
    db.session.add(PasswordReset(token_hash=_token_hash(token), user_id=user.id, expires_at=utcnow() + max_age))
    link = apex_url(url_for("auth.reset", token=token))
    audit.record("auth.password_reset_requested", target=user)
    queue_mail(
        user.email, "Reset your password", "reset", user=user, link=link, minutes=int(max_age.total_seconds() // 60)
    )
    return True


def reset_target(token: str) -> User:
    """The user a reset link is for; :class:`LinkInvalid` when unknown, used or expired."""
    row = db.session.get(PasswordReset, _token_hash(token))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise LinkInvalid()
    return db.session.get(User, row.user_id)


def reset_password(token: str, new_password: str, keep_session: UserSession | None = None) -> User:
    """Set a new password through a reset link.

    Guarantees: the link works once (an atomic UPDATE … WHERE used_at IS NULL
    wins against a concurrent use) and for ``PASSWORD_RESET_MAX_AGE``; the
    password passes the rules; every other session of the user is revoked and
    every other outstanding reset link dies. Proves the mailbox, so the
    address counts as verified.
    """
    user = reset_target(token)
    problem = password_problem(new_password or "", user.email, user.name)
    if problem:
        raise UserError(problem, "password")
    now = utcnow()
    used = db.session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.token_hash == _token_hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
        .values(used_at=now)
        .returning(PasswordReset.user_id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if used is None:
        raise LinkInvalid()
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    _set_password(user, new_password)
    if user.email_verified_at is None:
        user.email_verified_at = now
    keep = keep_session.id if keep_session is not None and keep_session.user_id == user.id else None
    revoked = _revoke_sessions(user, keep)
    audit.record("auth.password_reset", target=user, actor=user, metadata={"sessions_revoked": revoked})
    notifications.notify_security_event(user, "password_changed", how="through a password-reset link")
    return user


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


# --------------------------------------------------------------------------- account
def change_name(user: User, name: str) -> None:
    """Rename the user (1–120 characters, spaces collapsed)."""
    name = _clean_name(name)
    if name == user.name:
        return
    before = user.name
    user.name = name
    audit.record("auth.profile_updated", target=user, before={"name": before}, after={"name": name})


SUPPORT_REFUSAL = "A support session cannot change this person's password or e-mail address."


def refuse_in_support_session() -> None:
    """Raise ``UserError`` (403) when the request runs in a support session
    (a super-admin acting as the user): the person's credentials are theirs."""
    rec = sessions.current()
    if rec is not None and rec.impersonator_id is not None:
        raise UserError(SUPPORT_REFUSAL, status=403)


def change_password(user: User, current_password: str, new_password: str, keep_session: UserSession | None) -> int:
    """Change the password; the current one is required (throttled like log-in).

    Every other session of the user is revoked; returns how many. Refused
    in a support session.
    """
    refuse_in_support_session()
    _check_password(
        user,
        current_password,
        user.email.lower(),
        "current_password",
        "That is not your current password.",
        during="password_change",
    )
    problem = password_problem(new_password or "", user.email, user.name)
    if problem:
        raise UserError(problem, "new_password")
    if verify_password(user.password_hash, new_password):
        raise UserError("Choose a password different from your current one.", "new_password")
    _set_password(user, new_password)
    revoked = _revoke_sessions(user, keep_session.id if keep_session else None)
    audit.record("auth.password_changed", target=user, metadata={"sessions_revoked": revoked})
    notifications.notify_security_event(user, "password_changed", how="on your account page")
    return revoked


def verify_current_password(user: User, password: str, field: str) -> None:
    """Check the user's current password before a sensitive change (throttled
    like log-in, failures audited); ``UserError`` beside ``field``."""
    _check_password(
        user, password, user.email.lower(), field, "That is not your current password.", during="two_factor_change"
    )


def _email_taken(email: str, by_other_than: User) -> bool:
    other = find_user(email)
    return other is not None and other.id != by_other_than.id


def request_email_change(user: User, current_password: str, new_email: str) -> str:
    """Send a confirmation link to the new address; nothing changes until it is clicked.

    The current password is required (throttled like log-in). Returns the
    normalised new address. Refused in a support session.
    """
    refuse_in_support_session()
    new = _clean_email(new_email, "new_email")
    _check_password(
        user,
        current_password,
        user.email.lower(),
        "email_password",
        "That is not your current password.",
        during="email_change",
    )
    if new == user.email.lower():
        raise UserError("That is already your e-mail address.", "new_email")
    if _email_taken(new, user):
        raise UserError("That e-mail address belongs to another account.", "new_email")
    token = _serializer(EMAIL_CHANGE_SALT).dumps({"u": str(user.id), "old": user.email.lower(), "new": new})
    link = apex_url(url_for("auth.confirm_email", token=token))
    queue_mail(
        new, "Confirm your new e-mail address", "email_change", user=user, link=link, new_email=new, hours=_link_hours()
    )
    audit.record("auth.email_change_requested", target=user, metadata={"new_email": new})
    return new


def email_change_target(token: str) -> tuple[User, str]:
    """``(user, new address)`` of a valid confirmation link; changes nothing.

    The link names the old address too, so it works once and dies if the
    address changed since.
    """
    data = _load_signed(EMAIL_CHANGE_SALT, token)
    uid = parse_uuid(data.get("u"))
    user = db.session.get(User, uid) if uid else None
    new = data.get("new")
    if user is None or not new or user.email.lower() != data.get("old"):
        raise LinkInvalid()
    if _email_taken(new, user):
        raise LinkInvalid(
            "That address now belongs to another account, so it cannot be yours as well.",
            title="Address already in use",
        )
    return user, new


def confirm_email_change(token: str) -> User:
    """Apply the change a confirmation link carries: the new address, verified;
    the old address gets a notice (see ``email_change_target``)."""
    user, new = email_change_target(token)
    old = user.email
    user.email = new
    user.email_verified_at = utcnow()
    db.session.flush()
    audit.record("auth.email_changed", target=user, actor=user, before={"email": old}, after={"email": new})
    queue_mail(old, "Your e-mail address was changed", "email_changed_notice", user=user, old_email=old, new_email=new)
    hooks.user_email_verified.send(user)
    return user


# --------------------------------------------------------------------------- sessions
def active_sessions(user: User) -> list[UserSession]:
    """The user's live sessions (``sessions.live``), most recently used first:
    what their account page and an administrator's member page both list."""
    return list(
        db.session.execute(
            select(UserSession)
            .where(UserSession.user_id == user.id, *sessions.live())
            .order_by(UserSession.last_seen_at.desc(), UserSession.created_at.desc())
        ).scalars()
    )


def revoke_session(user: User, session_id) -> UserSession | None:
    """Revoke one of ``user``'s sessions on every host it reached, whoever asks
    (the user on their account page, an administrator through
    ``app.members.sessions.revoke_session``, which checks who may).

    ``None`` when the id is not one of theirs: another user's session is
    indistinguishable from a missing one. Records ``auth.session_revoked``
    about the user, naming the session; an already revoked one records nothing.
    """
    sid = parse_uuid(session_id)
    if sid is None:
        return None
    rec = db.session.execute(
        select(UserSession).where(UserSession.id == sid, UserSession.user_id == user.id)
    ).scalar_one_or_none()
    if rec is None:
        return None
    if rec.revoked_at is None:
        sessions.revoke(rec)
        db.session.flush()
        owner = rec.user  # the User itself: ``user`` may be the current_user proxy
        audit.record(
            "auth.session_revoked",
            target=owner,
            metadata={
                "user_id": str(owner.id),
                "email": owner.email,
                "session_id": str(rec.id),
                "session_started": rec.created_at.isoformat(),
            },
        )
    return rec


def revoke_other_sessions(user: User, keep_session: UserSession | None) -> int:
    """Revoke every session of the user but ``keep_session``; returns how many."""
    revoked = _revoke_sessions(user, keep_session.id if keep_session else None)
    if revoked:
        audit.record("auth.sessions_revoked", target=user, metadata={"count": revoked})
    return revoked


def _revoke_sessions(user: User, keep_id: uuid.UUID | None) -> int:
    stmt = update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    if keep_id is not None:
        stmt = stmt.where(UserSession.id != keep_id)
    result = db.session.execute(stmt.values(revoked_at=utcnow()), execution_options={"synchronize_session": False})
    return result.rowcount or 0


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_user_agent(ua: str | None) -> str:
    """ "Firefox on Linux" from a User-Agent string; good enough to recognise a device."""
    ua = ua or ""
    browser = next((name for marker, name in _BROWSERS if marker in ua), None)
    system = next((name for marker, name in _SYSTEMS if marker in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    return (ua[:40] + "…") if len(ua) > 40 else (ua or "Unknown device")

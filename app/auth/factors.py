"""Second factors: TOTP authenticators and one-time recovery codes.

Guarantees:

* A TOTP secret is stored only encrypted (``app.crypto``); it is shown to
  its owner while enrolment is pending, and never after it is confirmed.
* A TOTP code is accepted for the current 30-second step or the one either
  side (clock drift), and only for a step later than the last accepted one:
  an atomic ``UPDATE … WHERE last_used_step < step`` decides, so the same
  code cannot be used twice, not even by two requests at once.
* Recovery codes (10) are random, stored as SHA-256 only, shown once; each
  works once (atomic ``UPDATE … WHERE used_at IS NULL``); regenerating
  revokes every earlier code. Using one e-mails the user.
* Every enrolment, removal, regeneration and recovery-code use is audited.

A refusal is a ``UserError`` raised before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import time

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import func, select, update

from app import audit, crypto
from app.auth import notifications, passkeys, sessions
from app.auth.models import RecoveryCode, TotpFactor, User, WebAuthnCredential
from app.errors import UserError
from app.extensions import db
from app.util import utcnow

ISSUER = "Tenantry"
STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper

BAD_CODE = "That code is not right. Enter the 6-digit code your authenticator app shows now."
REUSED_CODE = "That code was already used. Wait for the next code in your authenticator app."
BAD_FACTOR = "That is neither a current code from your authenticator app nor an unused recovery code."
USED_RECOVERY = "That recovery code was already used. Each recovery code works once."


def _real(user):
    """The ``User`` itself when given Flask-Login's ``current_user`` proxy
    (the audit recorder names its target from the object)."""
    get = getattr(user, "_get_current_object", None)
    return get() if get is not None else user


def _normalise(code: str | None) -> str:
    """What was typed, without spaces and dashes, lower-case (codes are read off screens and paper)."""
    return re.sub(r"[\s-]+", "", code or "").lower()[:64]


# --------------------------------------------------------------------------- reading
def current_totp(user: User) -> TotpFactor | None:
    """The user's TOTP row that is not removed (pending or confirmed), if any."""
    return db.session.execute(
        select(TotpFactor).where(TotpFactor.user_id == user.id, TotpFactor.removed_at.is_(None))
    ).scalar_one_or_none()


def active_totp(user: User) -> TotpFactor | None:
    """The user's confirmed TOTP factor, if any."""
    row = current_totp(user)
    return row if row is not None and row.confirmed_at is not None else None


def has_second_factor(user: User) -> bool:
    """True when the user has a confirmed second factor: an authenticator
    app or a passkey (one statement)."""
    return second_factor_count(user) > 0


def second_factor_count(user: User) -> int:
    """How many second factors the user has: the confirmed authenticator app
    (0 or 1) plus their passkeys (one statement)."""
    totp = (
        select(func.count())
        .select_from(TotpFactor)
        .where(TotpFactor.user_id == user.id, TotpFactor.removed_at.is_(None), TotpFactor.confirmed_at.is_not(None))
        .scalar_subquery()
    )
    keys = (
        select(func.count())
        .select_from(WebAuthnCredential)
        .where(WebAuthnCredential.user_id == user.id, WebAuthnCredential.removed_at.is_(None))
        .scalar_subquery()
    )
    return int(db.session.execute(select(totp + keys)).scalar_one())


def second_factor_exists(user_id_column):
    """SQL: true when the user in ``user_id_column`` has a confirmed second
    factor; ``has_second_factor`` for many users in one statement (the
    members page's "without 2FA" filter). Every kind of factor belongs here."""
    return (
        select(TotpFactor.id)
        .where(
            TotpFactor.user_id == user_id_column,
            TotpFactor.confirmed_at.is_not(None),
            TotpFactor.removed_at.is_(None),
        )
        .exists()
    )


def recovery_codes_left(user: User) -> int:
    """How many of the user's recovery codes are unused and not revoked."""
    return len(
        db.session.execute(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None), RecoveryCode.revoked_at.is_(None)
            )
        ).all()
    )


def secret_of(row: TotpFactor) -> str:
    """The base32 secret of a TOTP row (decrypted)."""
    return crypto.decrypt(row.secret_encrypted).decode()


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(data: str) -> str:
    """``data`` as an inline SVG QR code, drawn on the server (no script, no
    image URL: the page's CSP stays as strict as it is)."""
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf)
    svg = buf.getvalue().decode()
    # The XML declaration is not valid inside an HTML document.
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)


# --------------------------------------------------------------------------- TOTP
def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (current, or one either side) whose code is ``code``, else ``None``."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    step = int((time.time() if now is None else now) // STEP_SECONDS)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _use_totp(row: TotpFactor, code: str, field: str) -> None:
    """Accept ``code`` for ``row`` once (records its step) or raise ``UserError``."""
    step = _matching_step(secret_of(row), _normalise(code))
    if step is None:
        raise UserError(BAD_CODE, field)
    won = db.session.execute(
        update(TotpFactor)
        .where(
            TotpFactor.id == row.id,
            (TotpFactor.last_used_step.is_(None)) | (TotpFactor.last_used_step < step),
        )
        .values(last_used_step=step)
        .returning(TotpFactor.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if won is None:
        raise UserError(REUSED_CODE, field)
    row.last_used_step = step


def start_totp(user: User, secret: str | None = None) -> TotpFactor:
    """Begin enrolment: a new pending secret (an earlier pending one is
    dropped). Refused when a confirmed factor exists (turn it off first)."""
    row = current_totp(user)
    if row is not None and row.confirmed_at is not None:
        raise UserError("Two-factor authentication is already on.", status=409)
    if row is not None:
        row.removed_at = utcnow()
        db.session.flush()
    new = TotpFactor(user_id=user.id, secret_encrypted=crypto.encrypt(secret or pyotp.random_base32(32)))
    db.session.add(new)
    db.session.flush()
    return new


def confirm_totp(user: User, code: str) -> list[str]:
    """Finish enrolment with a code from the app: the factor is on, the code
    is spent, and 10 new recovery codes are returned (shown once)."""
    user = _real(user)
    row = current_totp(user)
    if row is None or row.confirmed_at is not None:
        raise UserError("Start again: there is no authenticator waiting to be confirmed.", "code", status=409)
    _use_totp(row, code, "code")
    row.confirmed_at = utcnow()
    codes = _new_recovery_codes(user)
    audit.record("auth.two_factor_enabled", target=user, metadata={"factor": "totp"})
    notifications.notify_security_event(
        user, "second_factor", change="An authenticator app was turned on, with ten new recovery codes."
    )
    return codes


# --------------------------------------------------------------------------- recovery codes
def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None), RecoveryCode.revoked_at.is_(None))
        .values(revoked_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash(raw)))
    db.session.flush()
    return codes


def current_recovery_codes(user: User, codes: list[str]) -> list[str] | None:
    """``codes`` normalised (``xxxxx-xxxxx``) when every one is an unused,
    unrevoked recovery code of ``user`` (at most ``RECOVERY_CODE_COUNT``),
    else ``None``. The download of the codes just shown echoes only these:
    never a stranger's text, never a spent or replaced code."""
    norm = [_normalise(c) for c in codes if c and c.strip()]
    if not norm or len(norm) > RECOVERY_CODE_COUNT or not all(re.fullmatch(r"[a-z0-9]{10}", c) for c in norm):
        return None
    found = set(
        db.session.execute(
            select(RecoveryCode.code_hash).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash.in_([_hash(c) for c in norm]),
                RecoveryCode.used_at.is_(None),
                RecoveryCode.revoked_at.is_(None),
            )
        ).scalars()
    )
    if any(_hash(c) not in found for c in norm):
        return None
    return [f"{c[:5]}-{c[5:]}" for c in norm]


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new recovery codes; every earlier one stops working."""
    user = _real(user)
    if not has_second_factor(user):
        raise UserError("Turn on two-factor authentication first.", status=409)
    codes = _new_recovery_codes(user)
    audit.record("auth.recovery_codes_regenerated", target=user)
    notifications.notify_security_event(
        user, "second_factor", change="Ten new recovery codes were made; the earlier ones no longer work."
    )
    return codes


def _use_recovery_code(user: User, code: str, field: str) -> bool:
    """Spend a recovery code (audited, the user e-mailed); ``False`` when it is
    not one of theirs; ``UserError`` when it was already used."""
    norm = _normalise(code)
    if not re.fullmatch(r"[a-z0-9]{10}", norm):
        return False
    now = utcnow()
    used = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash(norm),
            RecoveryCode.used_at.is_(None),
            RecoveryCode.revoked_at.is_(None),
        )
        .values(used_at=now)
        .returning(RecoveryCode.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if used is None:
        spent = db.session.execute(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == _hash(norm),
                RecoveryCode.used_at.is_not(None),
                RecoveryCode.revoked_at.is_(None),
            )
        ).first()
        if spent is not None:
            raise UserError(USED_RECOVERY, field)
        return False
    left = recovery_codes_left(user)
    audit.record("auth.recovery_code_used", target=user, actor=user, metadata={"codes_left": left})
    notifications.notify_security_event(user, "recovery_code_used", left=left, at=now)
    return True


def verify_second_factor(user: User, code: str, field: str = "code") -> str:
    """Check a second factor typed by ``user``: a TOTP code or a recovery code.

    Returns which was used (``"totp"`` or ``"recovery_code"``); raises
    ``UserError`` beside ``field`` for a wrong, reused or used code."""
    user = _real(user)
    norm = _normalise(code)
    row = active_totp(user)
    if row is None:
        if passkeys.passkeys_of(user):
            raise UserError("This account has no authenticator app: confirm with your passkey instead.", field)
        raise UserError("This account has no second factor.", field, status=409)
    if re.fullmatch(r"\d{6}", norm):
        _use_totp(row, norm, field)
        return "totp"
    if _use_recovery_code(user, norm, field):
        return "recovery_code"
    raise UserError(BAD_FACTOR, field)


def disable_totp(user: User, factor_code: str) -> None:
    """Turn two-factor authentication off (the caller has checked the password):
    needs a current factor; every recovery code is revoked too."""
    user = _real(user)
    row = active_totp(user)
    if row is None:
        raise UserError("Two-factor authentication is not on.", status=409)
    verify_second_factor(user, factor_code, "factor_code")
    now = utcnow()
    row.removed_at = now
    db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None), RecoveryCode.revoked_at.is_(None))
        .values(revoked_at=now),
        execution_options={"synchronize_session": False},
    )
    audit.record("auth.two_factor_disabled", target=user, metadata={"factor": "totp"})
    notifications.notify_security_event(
        user, "second_factor", change="The authenticator app was turned off; your recovery codes no longer work."
    )


LAST_FACTOR_PASSKEY = (
    "This is your last second factor: confirm with this passkey (the button asks your browser) before it is removed."
)


def remove_passkey(user: User, passkey, confirmation=None) -> None:
    """Remove one of the user's passkeys (the caller has checked the password).

    When it is the user's last second factor, a current factor is required
    too: ``confirmation``, a passkey response to this browser's confirmation
    challenge (``passkeys.CONFIRM``), made by one of the user's passkeys in
    this session. Otherwise refused beside ``passkey_response``.
    """
    user = _real(user)
    if second_factor_count(user) <= 1:
        if not confirmation:
            raise UserError(LAST_FACTOR_PASSKEY, "passkey_response")
        try:
            passkeys.authenticate(passkeys.CONFIRM, confirmation, user, _session_id())
        except UserError as e:
            audit.record("auth.passkey_failed", target=user, metadata={"during": "remove", "reason": e.message})
            raise UserError(e.message, "passkey_response", status=e.status) from None
    passkeys.remove(user, passkey)


def _session_id():
    rec = sessions.current()
    return rec.id if rec is not None else None


def enrol_fixed_secret(user: User, secret: str) -> bool:
    """Give ``user`` a confirmed TOTP factor with ``secret`` unless they have
    one (demo data and tests); returns whether one was added."""
    if active_totp(user) is not None:
        return False
    row = start_totp(user, secret)
    row.confirmed_at = utcnow()
    db.session.flush()
    return True

"""Passkeys (WebAuthn, with Duo's ``webauthn`` library): registering,
naming and removing them, and checking a passkey's signature, as a second
factor after the password, as the whole sign-in (discoverable credentials:
no e-mail typed), or to confirm a sensitive action (step-up).

**Relying Party ID.** The apex host name without its port
(``TENANTRY_SERVER_NAME``: ``example.com``, or ``localhost`` in
development). Every organization lives at ``<slug>.<apex>``, a subdomain of
it, so a passkey registered on the apex is offered by the browser on every
organization's host too, and a response is accepted from the apex or any
organization subdomain, checked against the origin of the request that
carries it. On a **verified custom domain** (``portal.acme.com``) the
browser refuses this RP ID (the host is not under it), so passkeys are not
offered there (``available_here()`` is false): a sign-in happens on the
apex anyway, and a step-up on a custom domain asks for the password and an
authenticator-app or recovery code, or sends the person to the
organization's subdomain, where their passkey works.

Guarantees:

* A challenge is single use, expires after ``CHALLENGE_SECONDS`` and is
  bound to its purpose, to the user it was drawn for and to the session it
  was drawn in (``_claim``: one ``UPDATE … WHERE used_at IS NULL``); the
  browser's host-only cookie names it. A response for another challenge,
  another origin, another user's passkey, an unknown or removed passkey, a
  signature counter that did not move forward, or malformed JSON is refused
  with a ``UserError`` that says which, and nothing is changed but the
  challenge being spent (and the failure's audit event).
* A passkey's counter only moves forward: one ``UPDATE … WHERE sign_count
  < new`` decides, so even two requests carrying the same response at once
  cannot both pass.
* Every registration, rename, removal and passkey sign-in is audited;
  additions and removals are mailed to the person (``app.auth.notifications``,
  the "second factor changes" kind they may turn off).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

from flask import g, request, session
from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json, parse_client_data_json
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app import audit
from app.auth import notifications
from app.auth.models import User, WebAuthnChallenge, WebAuthnCredential
from app.errors import UserError
from app.extensions import db
from app.util import parse_uuid, utcnow
from app.web import hosts

RP_NAME = "Tenantry"
CHALLENGE_SECONDS = 300
NAME_MAX = 60
COOKIE_KEY = "webauthn"  # purpose -> id of the challenge row this browser holds

# What a challenge is drawn for; a response is only accepted for the same purpose.
REGISTER = "register"
SIGN_IN = "sign_in"  # discoverable: the passkey alone signs in
SECOND_FACTOR = "second_factor"  # after the password
STEP_UP = "step_up"  # confirm a sensitive action
CONFIRM = "confirm"  # prove a current factor before removing the last one
PURPOSES = (REGISTER, SIGN_IN, SECOND_FACTOR, STEP_UP, CONFIRM)

MALFORMED = "That passkey response could not be read. Try again, or use another way to sign in."
NO_CHALLENGE = "This passkey request has expired or was already used. Start again."
OTHER_CHALLENGE = "That passkey response answers another request, not this one. Start again."
OTHER_ORIGIN = "That passkey response was made for another website. It was refused."
UNKNOWN = "That passkey is not registered with Tenantry (it may have been removed). Use another way to sign in."
OTHER_USER = "That passkey belongs to another account. Use one of your own passkeys."
COUNTER = (
    "That passkey's signature counter did not move forward: the response is a replay, or the passkey was copied. "
    "It was refused."
)
NOT_VERIFIED = "Your passkey's response could not be verified. Try again."
NEEDS_UV = "Your authenticator did not verify you (PIN, fingerprint or face). Try again and confirm it is you."
DUPLICATE = "This passkey is already registered."


# --------------------------------------------------------------------------- where
def rp_id() -> str:
    """The Relying Party ID: the apex host without its port (see the module docstring)."""
    return hosts.apex().split(":", 1)[0].lower()


def available_here() -> bool:
    """True on the apex and organization subdomains (hosts under the RP ID); false on custom domains."""
    match = hosts.classify(request.host)
    return match.kind == "apex" or (match.kind == "org" and bool(match.slug))


def origin() -> str:
    """The origin a response must have been made for: this request's own."""
    return f"{hosts.scheme()}://{hosts.normalise(request.host)}"


def _user_handle(user: User) -> bytes:
    # The user's random UUID: an opaque handle, no e-mail address or name.
    return user.id.bytes


# --------------------------------------------------------------------------- reading
def passkeys_of(user: User) -> list[WebAuthnCredential]:
    """The user's passkeys that are not removed, oldest first."""
    return list(
        db.session.execute(
            select(WebAuthnCredential)
            .where(WebAuthnCredential.user_id == user.id, WebAuthnCredential.removed_at.is_(None))
            .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)
        ).scalars()
    )


def find(user: User, passkey_id) -> WebAuthnCredential | None:
    """One of ``user``'s passkeys (not removed) by its row id; ``None`` for anything else."""
    pid = parse_uuid(passkey_id)
    if pid is None:
        return None
    return db.session.execute(
        select(WebAuthnCredential).where(
            WebAuthnCredential.id == pid,
            WebAuthnCredential.user_id == user.id,
            WebAuthnCredential.removed_at.is_(None),
        )
    ).scalar_one_or_none()


# --------------------------------------------------------------------------- challenges
def _draw(purpose: str, user: User | None, session_id: uuid.UUID | None, challenge: bytes) -> None:
    row = WebAuthnChallenge(
        purpose=purpose,
        challenge=challenge,
        user_id=user.id if user is not None else None,
        session_id=session_id,
        expires_at=utcnow() + timedelta(seconds=CHALLENGE_SECONDS),
    )
    db.session.add(row)
    db.session.flush()
    held = dict(session.get(COOKIE_KEY) or {})
    held[purpose] = str(row.id)
    session[COOKIE_KEY] = held


def _claim(purpose: str, user: User | None, session_id: uuid.UUID | None) -> bytes:
    """Spend this browser's challenge for ``purpose`` (drawn for this user in
    this session) and return it; ``UserError`` when there is none to spend."""
    held = dict(session.get(COOKIE_KEY) or {})
    cid = parse_uuid(held.pop(purpose, None))
    session[COOKIE_KEY] = held
    if cid is None:
        raise UserError(NO_CHALLENGE, "passkey", status=422)
    conditions = [
        WebAuthnChallenge.id == cid,
        WebAuthnChallenge.purpose == purpose,
        WebAuthnChallenge.used_at.is_(None),
        WebAuthnChallenge.expires_at > utcnow(),
        WebAuthnChallenge.user_id.is_(None) if user is None else WebAuthnChallenge.user_id == user.id,
        WebAuthnChallenge.session_id.is_(None) if session_id is None else WebAuthnChallenge.session_id == session_id,
    ]
    challenge = db.session.execute(
        update(WebAuthnChallenge).where(*conditions).values(used_at=utcnow()).returning(WebAuthnChallenge.challenge),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if challenge is None:
        raise UserError(NO_CHALLENGE, "passkey", status=422)
    return challenge


_TRANSPORTS = {t.value: t for t in AuthenticatorTransport}


def _descriptors(creds) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=c.credential_id, transports=[_TRANSPORTS[t] for t in c.transports if t in _TRANSPORTS] or None
        )
        for c in creds
    ]


# --------------------------------------------------------------------------- registration
def registration_options(user: User, session_id: uuid.UUID) -> dict:
    """Options for ``navigator.credentials.create()``: a discoverable
    credential (so it can sign in alone) for this user, none of their
    existing passkeys again; the challenge is bound to user and session."""
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_id=_user_handle(user),
        user_name=user.email,
        user_display_name=user.name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(passkeys_of(user)),
    )
    _draw(REGISTER, user, session_id, options.challenge)
    return json.loads(options_to_json(options))


def clean_name(name: str | None, field: str = "name") -> str:
    """A passkey's name: spaces collapsed, 1 to ``NAME_MAX`` characters, no
    control characters (a NUL would not even reach the database)."""
    if not isinstance(name, str):  # JSON may carry anything
        name = ""
    name = re.sub(r"\s+", " ", name.strip())
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError("Use letters, digits and punctuation only.", field)
    if not name:
        raise UserError("Give the passkey a name (which device or password manager holds it).", field)
    if len(name) > NAME_MAX:
        raise UserError(f"Use at most {NAME_MAX} characters.", field)
    return name


def _client_data(credential: dict) -> dict | None:
    try:
        return parse_client_data_json(
            _b64(credential["response"]["clientDataJSON"])  # checked by hand first: clear messages
        ).__dict__
    except Exception:  # noqa: BLE001 - anything unreadable is "malformed", said by the caller
        return None


def _b64(value) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    if not isinstance(value, str):
        raise ValueError("not a string")
    return base64url_to_bytes(value)


def _as_dict(credential) -> dict:
    """The browser's credential as a dict, or ``UserError`` (malformed)."""
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except ValueError:
            raise UserError(MALFORMED, "passkey") from None
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise UserError(MALFORMED, "passkey")
    return credential


def _check_client_data(credential: dict, expected_challenge: bytes) -> None:
    """Say plainly when the response answers another challenge or was made
    for another origin (the library would too, in developer's words)."""
    data = _client_data(credential)
    if data is None:
        raise UserError(MALFORMED, "passkey")
    if data.get("challenge") != expected_challenge:
        raise UserError(OTHER_CHALLENGE, "passkey")
    if data.get("origin") != origin():
        raise UserError(OTHER_ORIGIN, "passkey")


def register(user: User, session_id: uuid.UUID, credential, name: str | None) -> WebAuthnCredential:
    """Verify a ``navigator.credentials.create()`` response against this
    browser's registration challenge and store the passkey (audited)."""
    name = clean_name(name)
    credential = _as_dict(credential)
    expected = _claim(REGISTER, user, session_id)
    _check_client_data(credential, expected)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=expected, expected_rp_id=rp_id(), expected_origin=origin()
        )
    except (InvalidRegistrationResponse, WebAuthnException, ValueError, TypeError, KeyError) as e:
        raise UserError(NOT_VERIFIED, "passkey") from e
    if db.session.execute(
        select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == verified.credential_id)
    ).first():
        raise UserError(DUPLICATE, "passkey", status=409)
    transports = credential["response"].get("transports") or []
    row = WebAuthnCredential(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str) and t in _TRANSPORTS][:8],
        name=name,
        aaguid=verified.aaguid,
        backed_up=bool(verified.credential_backed_up),
    )
    db.session.add(row)
    db.session.flush()
    audit.record("auth.passkey_added", target=user, metadata={"passkey": row.name, "passkey_id": str(row.id)})
    notifications.notify_security_event(user, "second_factor", change=f"A passkey, “{row.name}”, was added.")
    return row


def rename(user: User, passkey: WebAuthnCredential, name: str | None) -> bool:
    """Rename one of the user's passkeys (audited); ``False`` when the name is unchanged."""
    name = clean_name(name)
    if name == passkey.name:
        return False
    before = passkey.name
    passkey.name = name
    audit.record(
        "auth.passkey_renamed",
        target=user,
        before={"name": before},
        after={"name": name},
        metadata={"passkey_id": str(passkey.id)},
    )
    return True


def remove(user: User, passkey: WebAuthnCredential) -> None:
    """Remove one of the user's passkeys (audited, announced): it never signs in again.
    The caller has checked what removing it requires (``app.auth.factors``)."""
    passkey.removed_at = utcnow()
    db.session.flush()
    audit.record("auth.passkey_removed", target=user, metadata={"passkey": passkey.name, "passkey_id": str(passkey.id)})
    notifications.notify_security_event(user, "second_factor", change=f"The passkey “{passkey.name}” was removed.")


# --------------------------------------------------------------------------- authentication
def authentication_options(purpose: str, user: User | None = None, session_id: uuid.UUID | None = None) -> dict:
    """Options for ``navigator.credentials.get()``. With a ``user``, only
    their passkeys are allowed (second factor, step-up, confirmation);
    without, any discoverable passkey (the sign-in). The challenge is bound
    to the purpose, the user and the session."""
    assert purpose in PURPOSES and purpose != REGISTER
    options = generate_authentication_options(
        rp_id=rp_id(),
        allow_credentials=_descriptors(passkeys_of(user)) if user is not None else [],
        user_verification=UserVerificationRequirement.REQUIRED
        if purpose in (SIGN_IN, STEP_UP)
        else UserVerificationRequirement.PREFERRED,
    )
    _draw(purpose, user, session_id, options.challenge)
    return json.loads(options_to_json(options))


def authenticate(
    purpose: str, credential, user: User | None = None, session_id: uuid.UUID | None = None
) -> WebAuthnCredential:
    """Check a ``navigator.credentials.get()`` response for ``purpose``.

    With ``user``, the passkey must be theirs; without (the sign-in), it
    names its own user, whose handle it must carry. When the passkey alone
    proves who the person is (sign-in, step-up), the authenticator must have
    verified them (PIN, biometrics). On success the counter and "last used"
    are saved and the passkey returned; ``UserError`` otherwise (see the
    module docstring for what each refusal says).
    """
    credential = _as_dict(credential)
    try:
        parsed = parse_authentication_credential_json(credential)
    except Exception:  # noqa: BLE001 - the library raises several kinds for unreadable input
        raise UserError(MALFORMED, "passkey") from None
    expected = _claim(purpose, user, session_id)
    _check_client_data(credential, expected)
    row = db.session.execute(
        select(WebAuthnCredential).where(
            WebAuthnCredential.credential_id == parsed.raw_id, WebAuthnCredential.removed_at.is_(None)
        )
    ).scalar_one_or_none()
    if row is None:
        raise UserError(UNKNOWN, "passkey")
    if user is not None and row.user_id != user.id:
        raise UserError(OTHER_USER, "passkey")
    handle = parsed.response.user_handle
    if handle is not None and handle != uuid.UUID(str(row.user_id)).bytes:
        raise UserError(OTHER_USER, "passkey")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=purpose in (SIGN_IN, STEP_UP),
        )
    except InvalidAuthenticationResponse as e:
        text = str(e)
        if "sign count" in text:
            raise UserError(COUNTER, "passkey") from e
        if "User verification" in text:
            raise UserError(NEEDS_UV, "passkey") from e
        raise UserError(NOT_VERIFIED, "passkey") from e
    except (WebAuthnException, ValueError, TypeError, KeyError) as e:
        raise UserError(NOT_VERIFIED, "passkey") from e
    new = verified.new_sign_count
    # Counter moves forward, atomically (0 and 0: an authenticator that keeps no counter).
    moved = db.session.execute(
        update(WebAuthnCredential)
        .where(
            WebAuthnCredential.id == row.id,
            (WebAuthnCredential.sign_count < new) | ((WebAuthnCredential.sign_count == 0) & (new == 0)),
        )
        .values(sign_count=new, last_used_at=utcnow())
        .returning(WebAuthnCredential.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if moved is None:
        raise UserError(COUNTER, "passkey")
    db.session.refresh(row)
    return row


def user_of(passkey: WebAuthnCredential) -> User | None:
    """The (enabled) user a passkey signs in."""
    user = db.session.get(User, passkey.user_id)
    return user if user is not None and user.disabled_at is None else None


def credential_id_text(passkey: WebAuthnCredential) -> str:
    """The credential id as the browser writes it (base64url), for pages and tests."""
    return bytes_to_base64url(passkey.credential_id)


def _current_session_id() -> uuid.UUID | None:
    rec = g.get("user_session")
    return rec.id if rec is not None else None

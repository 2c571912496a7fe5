"""Security e-mails to a person about their own account.

Every area that changes something about how a person signs in tells them
through ``notify_security_event(user, kind, **ctx)``: a sign-in from a new
device, a second factor added or removed (an authenticator app, a passkey,
new recovery codes), a password change, a recovery code's use. The mail
leaves as a job in the current transaction (``app.mail.queue_mail``), so a
change that rolls back mails nothing and a committed one always mails.

The user may turn each kind off on their account page
(``users.security_mail_muted``), except the ones marked ``always``: a
recovery code's use always reaches them, since it is how a stolen phone
and password would show.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import has_request_context, url_for

from app import audit
from app.mail import queue_mail
from app.util import utcnow
from app.web.hosts import apex_url


@dataclass(frozen=True)
class SecurityKind:
    key: str
    label: str  # on the account page's switches
    description: str
    subject: str
    always: bool = False  # cannot be turned off


KINDS: dict[str, SecurityKind] = {
    k.key: k
    for k in (
        SecurityKind(
            "new_device",
            "Sign-in from a new device",
            "A sign-in from a browser and address we have not seen for your account.",
            "New sign-in to your Tenantry account",
        ),
        SecurityKind(
            "second_factor",
            "Second factor changes",
            "An authenticator app or passkey added or removed, new recovery codes made.",
            "Your two-factor authentication changed",
        ),
        SecurityKind(
            "password_changed",
            "Password changes",
            "Your password was changed or reset.",
            "Your Tenantry password was changed",
        ),
        SecurityKind(
            "recovery_code_used",
            "A recovery code was used",
            "One of your recovery codes signed you in.",
            "A recovery code was used",
            always=True,
        ),
    )
}

# What a mutable kind says on the account page and in the mail's footer.
MUTABLE = tuple(k for k in KINDS.values() if not k.always)


def _real(user):
    get = getattr(user, "_get_current_object", None)
    return get() if get is not None else user


def receives(user, kind: str) -> bool:
    """True when ``user`` gets ``kind`` mails (``always`` kinds: always)."""
    k = KINDS[kind]
    return k.always or kind not in (user.security_mail_muted or ())


def notify_security_event(user, kind: str, **ctx) -> bool:
    """Queue the ``kind`` security e-mail to ``user`` (in the current
    transaction) unless they turned that kind off; returns whether one was queued.

    ``ctx`` reaches the mail template (``templates/mail/security_<kind>``):
    ``new_device``: ``device``, ``ip``; ``second_factor``: ``change`` (a
    sentence: "An authenticator app was turned on."); ``password_changed``:
    ``how`` ("on your account page", "through a reset link");
    ``recovery_code_used``: ``left``. ``at`` defaults to now. An unknown
    kind raises ``KeyError`` (a programming error, never user input).
    """
    k = KINDS[kind]
    user = _real(user)
    if not receives(user, kind):
        return False
    ctx.setdefault("at", utcnow())
    if has_request_context():
        ctx.setdefault("settings_link", apex_url(url_for("account.security") + "#security-mail"))
    queue_mail(user.email, k.subject, f"security_{kind}", user=user, kind=k, **ctx)
    return True


def set_muted(user, muted: set[str]) -> bool:
    """Turn off exactly the kinds in ``muted`` for ``user`` (``always`` kinds
    and unknown names are ignored: they cannot be turned off). Audited when
    it changes (``auth.security_mail_updated``); returns whether it did."""
    user = _real(user)
    new = sorted(k for k in muted if k in KINDS and not KINDS[k].always)
    before = sorted(user.security_mail_muted or ())
    if new == before:
        return False
    user.security_mail_muted = new
    audit.record("auth.security_mail_updated", target=user, before={"muted": before}, after={"muted": new})
    return True

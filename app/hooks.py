"""Hooks: how one area hears about another's changes without importing it.

An area that owns a change sends a hook; the areas whose data refers to it
connect a receiver where they live. The sender never names its receivers, so
members does not import projects to release a removed member's projects, and
rbac does not import members to learn whether an invitation still offers a
role. API keys, SSO group mappings and SCIM deprovisioning will connect to the
same hooks.

The hooks are blinker signals (the library Flask's own signals use, already
installed with Flask) behind a small typed face: ``Hook[Payload, Answer]``
says what a receiver is given and what it returns, ``send`` hands back the
answers alone, and receivers are held strongly (blinker holds weak references
by default, which would silently drop a receiver defined in a closure).

Every hook is sent inside the sender's transaction, before its change is
flushed, so a receiver's own changes land (or roll back) with it; a receiver
that raises ``app.errors.UserError`` refuses the change. Receivers run in no
particular order and must not depend on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from blinker import Namespace

if TYPE_CHECKING:  # models are imported for the annotations only: this module sits below every area
    from app.auth.models import User
    from app.rbac.models import Role
    from app.tenancy.models import Membership, Organization

P = TypeVar("P")
A = TypeVar("A")

_signals = Namespace()


class Hook(Generic[P, A]):
    """One hook: receivers take a ``P`` and answer an ``A``."""

    def __init__(self, name: str, doc: str):
        self.name = name
        self.__doc__ = doc
        self._signal = _signals.signal(name, doc=doc)

    def connect(self, receiver: Callable[[P], A]) -> Callable[[P], A]:
        """Connect ``receiver`` (usable as a decorator); it is called with the payload only."""
        # blinker calls ``receiver(sender)``: the payload is the sender, and no keywords are sent.
        self._signal.connect(receiver, weak=False)
        return receiver

    def disconnect(self, receiver: Callable[[P], A]) -> None:
        self._signal.disconnect(receiver)

    def send(self, payload: P) -> list[A]:
        """Call every receiver with ``payload``; their answers, in no particular order."""
        return [answer for _receiver, answer in self._signal.send(payload)]

    @contextmanager
    def connected(self, receiver: Callable[[P], A]) -> Iterator[None]:
        """``receiver`` connected for the duration of a ``with`` block (tests)."""
        self.connect(receiver)
        try:
            yield
        finally:
            self.disconnect(receiver)

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"


member_removed: Hook[Membership, dict | None] = Hook(
    "member-removed",
    """A membership is about to be deleted (the member leaves the organization;
    their account stays). Sent before the row goes: a receiver releases what
    refers to it (a project's owner, an API key's creator...) and may return a
    dict of facts (``{"projects_unowned": 3}``) that go into the
    ``member.removed`` audit event.""",
)

role_in_use: Hook[Role, str | None] = Hook(
    "role-in-use",
    """May this custom role be deleted? A receiver returns why not (a sentence
    for the person deleting it, naming what still uses the role: "offered in
    pending invitations to ...") or ``None``.""",
)

event_recorded: Hook[dict, None] = Hook(
    "event-recorded",
    """An audit event was just inserted, in the caller's open transaction and
    in the scope of the organization whose log holds it (never the platform
    log). The payload is the event's row: ``organization_id``, ``id``,
    ``occurred_at``, ``action``, the actor, target and ``changes`` /
    ``metadata`` already redacted. A receiver may add rows and enqueue jobs
    (webhook deliveries): they commit or roll back with the event. It must
    be cheap: every change in the product sends it.""",
)

role_deleted: Hook[Role, None] = Hook(
    "role-deleted",
    """A custom role nobody uses any more is about to be deleted. Sent before
    the row goes: a receiver drops the historical references it keeps (an
    accepted invitation's role, say) so the delete does not trip a foreign key.""",
)

usage_of: Hook[Organization, dict[str, int] | None] = Hook(
    "usage-of",
    """What an organization uses against its named limits
    (``app.tenancy.entitlements``): a receiver returns ``{"seats": 207}`` for
    the limits its area counts. Sent inside the organization's scope. The
    platform console shows usage against limits with it, and refuses (or asks
    to confirm) a plan whose limit is below it.""",
)


@dataclass(frozen=True)
class ApiUsage:
    """An organization's API requests now: ``today`` (UTC day, as counted in
    the database: each process writes its counts at most once a minute) and
    ``this_minute`` against ``per_minute`` (the limiter's own counter, what
    the next request is judged by; ``None`` when it is not counted: rate
    limiting off, or an unlimited rate)."""

    today: int
    this_minute: int | None
    per_minute: int | None


api_usage_of: Hook[Organization, ApiUsage | None] = Hook(
    "api-usage-of",
    """How many API requests the organization made today and this minute
    (``ApiUsage``), for the plan and usage page. Sent inside the
    organization's scope. The API area answers it; without it the page has
    no API meters. Not part of ``usage_of``: those answers are named limits
    the platform compares plans with, and there is no daily limit.""",
)

user_email_verified: Hook[User, None] = Hook(
    "user-email-verified",
    """A user's e-mail address was just proven theirs (the verification link,
    a confirmed change of address). Sent by auth inside its transaction,
    after ``email_verified_at`` is set, with no organization in scope: a
    receiver acting in an organization says so (``tenant_context``). Verified
    domains connect here to let the user join an organization at their
    address's domain.""",
)

user_signed_in: Hook[User, None] = Hook(
    "user-signed-in",
    """A user just signed in with their password (a new session), in auth's
    transaction, with no organization in scope. The user's address may be
    unverified: a receiver that trusts the address checks ``is_verified``.""",
)


@dataclass(frozen=True)
class PasswordRule:
    """What a receiver of ``password_sign_in`` says of a password sign-in:
    ``refusal`` (a sentence for the person; a link to ``sso_url`` is offered)
    or ``break_glass`` (allowed, but only with a second factor, and reported
    through ``break_glass_signed_in``)."""

    refusal: str | None = None
    sso_url: str | None = None
    break_glass: bool = False


password_sign_in: Hook[User, PasswordRule | None] = Hook(
    "password-sign-in",
    """A password just proved who ``user`` is (before any second factor), on
    the apex, with no organization in scope. A receiver answers a
    ``PasswordRule`` when an organization's policy restricts password
    sign-in for them (SSO enforced), else ``None``.""",
)

break_glass_signed_in: Hook[User, None] = Hook(
    "break-glass-signed-in",
    """A break-glass Owner just signed in with password and second factor while
    SSO is enforced (``PasswordRule.break_glass``): the receiver audits it and
    tells the other Owners, in auth's transaction.""",
)

sign_in_realm: Hook[str, str | None] = Hook(
    "sign-in-realm",
    """Home-realm discovery: where does the address typed on the sign-in page
    sign in? A receiver returns the URL that starts single sign-on at the
    address's organization, or ``None`` (a password, as usual).""",
)

sign_in_options: Hook[str, tuple[str, str] | None] = Hook(
    "sign-in-options",
    """Other ways to sign in, offered on the sign-in page for the page the
    visitor came from (``next``, e.g. an organization's host): a receiver
    returns ``(label, url)`` — "Sign in with SSO to Acme" — or ``None``.""",
)

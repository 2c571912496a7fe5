"""The one error a person is shown when a service refuses what they asked.

Every service raises ``UserError`` (or a subclass that adds meaning, such as
``app.auth.services.Throttled`` with its ``Retry-After``) with a sentence fit
for the person, the form field it concerns, if any, and the HTTP status that
answers it. Pages bind it to their form with ``app.web.forms.with_error`` and
answer 422 with the form; the API will map the same error to problem+json.
A service raises it before changing anything it has not flushed, and the view
rolls back, so a refusal never leaves half a change.
"""

from __future__ import annotations


class UserError(Exception):
    """What was refused (``message``), beside which form field (``field``), answered with ``status``."""

    status: int = 422

    def __init__(self, message: str, field: str | None = None, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r}, status={self.status})"


class StaleEdit(UserError):
    """An edit made from a version that is no longer the current one (409).

    Someone else saved the same thing since the form was drawn. Nothing is
    written; the page shows the form again with what is stored now, so the
    person can make their change on top of it (``app.concurrency``).
    """

    status = 409

    def __init__(
        self,
        message: str = "This was changed by someone else while you were editing it. "
        "Here is what it holds now: make your change again and save.",
        field: str | None = None,
    ):
        super().__init__(message, field)

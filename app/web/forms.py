"""Forms and the one way a refusal is shown on them."""

from __future__ import annotations

import secrets

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField

from app.concurrency import parse_version
from app.errors import UserError

# Shown above an edit form sent without the version it was drawn from: a
# save that cannot say what it was made from could silently undo someone
# else's change, so it is refused rather than guessed at.
MISSING_VERSION = (
    "This form is missing the version it was opened from. Reload the page, make your change again and save."
)


def new_submit_key() -> str:
    """A fresh one-time key for a create form (see ``app.concurrency``)."""
    return secrets.token_urlsafe(24)


class CreateForm(FlaskForm):
    """A form that creates something: it carries a one-time key, drawn with
    the form, so that a second submit of the same form (a double click, a
    resend) shows the first result instead of creating again. The view
    passes ``form.submit_key.data`` to ``app.concurrency.claim_submit_key``."""

    submit_key = HiddenField(default=new_submit_key)


class EditForm(FlaskForm):
    """A form that edits something: it carries the ``version`` of the row it
    was drawn from (filled from ``obj=``), which the service hands to
    ``app.concurrency.lock_for_edit``; a save from an older version is 409."""

    version = HiddenField()

    def validate(self, extra_validators=None) -> bool:
        """Valid only with a whole-number ``version``: a POST without one (or
        with anything else) is refused, 422 with ``MISSING_VERSION`` above the
        form, before the view changes anything. Services called from code
        (the CLI) may still pass no version; the forms people send may not."""
        ok = super().validate(extra_validators)
        # What was sent, not ``data``: a form built with ``obj=`` fills a
        # field the request left out from the row (its current version),
        # which would turn "no version" into "the latest one".
        sent = self.version.raw_data[0] if self.version.raw_data else None
        if parse_version(sent) is None:
            self.version.errors = [*self.version.errors, MISSING_VERSION]
            self.form_errors.append(MISSING_VERSION)
            return False
        return ok


def with_error(form, error: UserError, fallback: str | None = None):
    """``form`` with ``error`` shown on it, returned for the template.

    The message goes beside the field the error names; an error that names
    no field of this form goes beside ``fallback`` when the view gives one,
    else above the form (``form.form_errors``, drawn by the ``form_errors``
    macro). A view answers ``render(..., form=with_error(form, e)), e.status``:
    422 with the form and its errors.
    """
    target = None
    for name in (error.field, fallback):
        candidate = getattr(form, name, None) if name else None
        if isinstance(candidate, Field):
            target = candidate
            break
    if target is not None:
        target.errors = [*target.errors, error.message]
    else:
        form.form_errors.append(error.message)
    return form

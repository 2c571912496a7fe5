"""Forms and the one way a refusal is shown on them."""

from __future__ import annotations

from wtforms import Field

from app.errors import UserError


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

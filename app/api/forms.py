"""API key forms (Flask-WTF: every form carries the CSRF token).

The form checks shape; ``app.api.keys`` decides (scopes within the
creator's own permissions, an offered expiry, who may create keys).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField

from app.api.keys import EXPIRY_DAYS, ROTATION_OVERLAPS
from app.api.models import NAME_MAX
from app.web.forms import CreateForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class NewKeyForm(CreateForm):
    name = StringField(
        "Name",
        filters=[_strip],
        description=f"What uses the key, e.g. “CI deploy script” (at most {NAME_MAX} characters).",
    )
    # Drawn as grouped checkboxes of the creator's own permissions; the
    # service re-checks each against what the creator holds.
    scopes = SelectMultipleField("Permissions", choices=[], validate_choice=False)
    expires_in_days = SelectField(
        "Expires after",
        choices=[(str(d), f"{d} days") for d in EXPIRY_DAYS],
        default="90",
        validate_choice=False,
    )


class RotateForm(FlaskForm):
    overlap_hours = SelectField(
        "Keep the old key working for",
        choices=[(str(h), "0 hours (stop it now)" if h == 0 else f"{h} hours") for h in ROTATION_OVERLAPS],
        default="24",
        validate_choice=False,
    )


class ConfirmForm(FlaskForm):
    """A bare POST with its CSRF token (revoke)."""

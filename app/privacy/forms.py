"""Forms of the personal data area (Flask-WTF: each carries the CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.auth.passwords import MAX_LENGTH


class ExportForm(FlaskForm):
    """Ask for an export (nothing but the CSRF token)."""


class DeleteAccountForm(FlaskForm):
    """Delete the account: the e-mail address typed out, the password and,
    when the account has one, a current second factor."""

    confirm = StringField(
        "Type your e-mail address to confirm",
        validators=[DataRequired("Type your e-mail address to confirm."), Length(max=254)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    code = StringField(
        "Authentication code",
        validators=[Length(max=32)],
        description="A code from your authenticator app, or one of your recovery codes.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "text"},
    )

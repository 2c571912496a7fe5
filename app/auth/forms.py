"""Account forms (Flask-WTF: every form carries the CSRF token).

Forms check shape only (present, not too long, the two passwords equal); the
rules (valid address, password strength, uniqueness) live in
``app.auth.services`` so that every path applies them.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH

PASSWORD_HINT = f"At least {MIN_LENGTH} characters. Common passwords are refused."


def _email(label: str = "E-mail", autocomplete: str = "email"):
    return EmailField(
        label,
        validators=[DataRequired("Enter your e-mail address."), Length(max=254)],
        render_kw={"autocomplete": autocomplete},
    )


def _password(label: str, message: str, autocomplete: str, description: str = ""):
    return PasswordField(
        label,
        validators=[DataRequired(message), Length(max=MAX_LENGTH)],
        description=description,
        render_kw={"autocomplete": autocomplete},
    )


class LoginForm(FlaskForm):
    email = _email()
    password = _password("Password", "Enter your password.", "current-password")


class SignupForm(FlaskForm):
    name = StringField(
        "Your name", validators=[DataRequired("Enter your name."), Length(max=120)], render_kw={"autocomplete": "name"}
    )
    email = _email()
    password = _password("Password", "Choose a password.", "new-password", PASSWORD_HINT)
    confirm = PasswordField(
        "Confirm password",
        validators=[DataRequired("Enter the password again."), EqualTo("password", "The two passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class ForgotPasswordForm(FlaskForm):
    email = _email()


class ResetPasswordForm(FlaskForm):
    password = _password("New password", "Choose a new password.", "new-password", PASSWORD_HINT)
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Enter the new password again."),
            EqualTo("password", "The two passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class NameForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired("Enter your name."), Length(max=120)], render_kw={"autocomplete": "name"}
    )


class PasswordChangeForm(FlaskForm):
    current_password = _password("Current password", "Enter your current password.", "current-password")
    new_password = _password("New password", "Choose a new password.", "new-password", PASSWORD_HINT)
    confirm_password = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Enter the new password again."),
            EqualTo("new_password", "The two passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class EmailChangeForm(FlaskForm):
    new_email = _email("New e-mail address", "email")
    email_password = _password(
        "Current password",
        "Enter your current password.",
        "current-password",
        "We ask for it so that nobody at an unlocked screen can take over your account.",
    )


def _code(label: str, message: str, description: str = ""):
    return StringField(
        label,
        validators=[DataRequired(message), Length(max=64, message="That is not a code.")],
        description=description,
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class SecondFactorForm(FlaskForm):
    """The sign-in's second step: a code from the app, or a recovery code."""

    code = _code(
        "Authentication code",
        "Enter the code from your authenticator app.",
        "The 6-digit code your authenticator app shows, or one of your recovery codes.",
    )


class TotpConfirmForm(FlaskForm):
    code = _code("Code from the app", "Enter the 6-digit code your authenticator app shows.")


class TotpDisableForm(FlaskForm):
    disable_password = _password("Current password", "Enter your current password.", "current-password")
    factor_code = _code(
        "Authentication code",
        "Enter a code from your authenticator app or a recovery code.",
        "The 6-digit code your authenticator app shows, or one of your recovery codes.",
    )


class RecoveryCodesForm(FlaskForm):
    codes_password = _password(
        "Current password",
        "Enter your current password.",
        "current-password",
        "New codes replace every earlier one.",
    )


class StepUpForm(FlaskForm):
    """Confirm it is you before a sensitive action: the password, and the
    app or recovery code when the account has an authenticator app."""

    password = _password("Password", "Enter your password.", "current-password")
    code = StringField(
        "Authentication code",
        validators=[Length(max=64)],
        description="The 6-digit code your authenticator app shows, or one of your recovery codes.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "spellcheck": "false"},
    )


class PasskeyRenameForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired("Give the passkey a name."), Length(max=60, message="Use at most 60 characters.")],
    )


class PasskeyRemoveForm(FlaskForm):
    """Remove a passkey: the current password; when it is the last second
    factor, also a passkey confirmation (filled in by the page's script)."""

    remove_password = _password("Current password", "Enter your current password.", "current-password")
    passkey_response = HiddenField()

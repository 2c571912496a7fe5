"""Members forms (Flask-WTF: each carries the CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.auth.passwords import MAX_LENGTH
from app.web.forms import CreateForm


class InviteForm(CreateForm):
    """Invite one or many people with one role (choices: the roles the inviter may give).

    Carries a one-time key: sent twice, the second lands where the first did, inviting nobody again.
    """

    emails = TextAreaField(
        "E-mail addresses",
        validators=[DataRequired("Enter at least one e-mail address."), Length(max=20000)],
        description="One or many, separated by commas or new lines.",
    )
    role = SelectField(
        "Role", validate_choice=False, description="Everyone invited here gets this role; you can change it later."
    )


class AcceptSignUpForm(FlaskForm):
    """A new person's account, created while accepting: the e-mail is the invited one."""

    name = StringField("Your name", validators=[DataRequired("Enter your name."), Length(max=120)])
    password = PasswordField(
        "Choose a password",
        validators=[DataRequired("Choose a password."), Length(max=MAX_LENGTH)],
        description="At least 8 characters.",
    )

"""Members forms (Flask-WTF: each carries the CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.auth.passwords import MAX_LENGTH
from app.members.models import MESSAGE_MAX
from app.web.forms import CreateForm, EditForm


def _message_field():
    # Length here answers early; the service checks again (and trims) before saving.
    return TextAreaField(
        "Personal message (optional)",
        validators=[Length(max=MESSAGE_MAX, message=f"Keep the message to {MESSAGE_MAX} characters.")],
        description=f"Shown in the e-mail and on the page where they accept. Up to {MESSAGE_MAX} characters.",
    )


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
    message = _message_field()


class InviteCsvForm(CreateForm):
    """Invite the rows of an uploaded CSV file (``email[,role]``); ``role``: for rows that name none."""

    file = FileField("CSV file", description="One person a row: e-mail address, then optionally a role.")
    role = SelectField("Role for rows without one", validate_choice=False)
    message = _message_field()


class InvitationRoleForm(EditForm):
    """Change a pending invitation's role; carries the version it was drawn from."""

    role = SelectField("Role", validate_choice=False, description="The role they get when they accept.")


class AcceptSignUpForm(FlaskForm):
    """A new person's account, created while accepting: the e-mail is the invited one."""

    name = StringField("Your name", validators=[DataRequired("Enter your name."), Length(max=120)])
    password = PasswordField(
        "Choose a password",
        validators=[DataRequired("Choose a password."), Length(max=MAX_LENGTH)],
        description="At least 8 characters.",
    )

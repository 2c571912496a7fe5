"""Project forms (Flask-WTF: every form carries the CSRF token).

The form checks shape (present, not too long); the service decides what is
allowed (the owner must be a member of *this* organization), so the rule
holds for every caller, not only this form.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.projects.models import DESCRIPTION_MAX, NAME_MAX
from app.projects.services import too_long
from app.web.forms import CreateForm, EditForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ProjectForm(FlaskForm):
    name = StringField(
        "Name",
        filters=[_strip],
        validators=[DataRequired("Give the project a name."), Length(max=NAME_MAX, message=too_long(NAME_MAX))],
    )
    description = TextAreaField(
        "Description",
        filters=[_strip],
        validators=[Optional(), Length(max=DESCRIPTION_MAX, message=too_long(DESCRIPTION_MAX))],
    )
    # Choices are the organization's members, filled in by the view; the
    # service re-checks membership, so the list is a convenience, not the rule.
    owner_id = SelectField(
        "Owner",
        choices=[],
        validate_choice=False,
        validators=[DataRequired("Choose the project's owner.")],
        description="A member of this organization who answers for the project.",
    )

    def with_owner_choices(self, choices: list[tuple[str, str]]) -> ProjectForm:
        self.owner_id.choices = choices
        return self


class NewProjectForm(CreateForm, ProjectForm):
    """The create form: the fields and a one-time key (a second submit shows the first result)."""


class EditProjectForm(EditForm, ProjectForm):
    """The edit form: the fields and the version they were drawn from (a stale save is 409)."""

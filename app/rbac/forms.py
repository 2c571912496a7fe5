"""Forms of the roles area. Field checks here; the rules (uniqueness, no
escalation, Owners) live in ``app.rbac.services``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.permissions import PERMISSIONS
from app.rbac.services import DESCRIPTION_MAX, NAME_MAX
from app.web.forms import CreateForm, EditForm

try:  # WTForms 3.3+ deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value, label):
        return (value, label)


def choice(value: str, label: str):
    """One option of a select, in the form the installed WTForms prefers."""
    return _Choice(value, label)


class RoleForm(FlaskForm):
    """A custom role: name, description and a subset of the catalogue (the grid's checkboxes)."""

    name = StringField(
        "Name",
        validators=[
            DataRequired("Give the role a name."),
            Length(max=NAME_MAX, message=f"Use at most {NAME_MAX} characters."),
        ],
    )
    description = TextAreaField(
        "Description",
        validators=[
            Optional(),
            Length(max=DESCRIPTION_MAX, message=f"Use at most {DESCRIPTION_MAX} characters."),
        ],
        description="What people holding this role do (optional).",
    )
    permissions = SelectMultipleField(
        "Permissions",
        choices=[p.name for p in PERMISSIONS],
        validate_choice=True,
    )


class NewRoleForm(CreateForm, RoleForm):
    """Create a custom role: the fields and a one-time key (a second submit shows the first result)."""


class EditRoleForm(EditForm, RoleForm):
    """Edit a custom role: the fields and the version they were drawn from (a stale save is 409)."""


class AssignForm(FlaskForm):
    """Give a member this role, picked by searching (``q``: name or e-mail as
    typed; ``user_id``: the member picked from the matches). Without
    JavaScript ``q`` alone is sent and the page offers the matches to choose."""

    q = StringField("Add a member", validators=[Optional(), Length(max=100, message="Type at most 100 characters.")])
    user_id = HiddenField()


class TransferForm(FlaskForm):
    """Choose the new Owner; ``confirm`` is set by the confirmation step."""

    user_id = SelectField(
        "New Owner", choices=[], validate_choice=True, validators=[DataRequired("Choose the member who becomes Owner.")]
    )
    confirm = HiddenField()


class ConfirmForm(FlaskForm):
    """A bare, CSRF-protected confirmation (delete, duplicate)."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.web.forms import EditForm


class GeneralSettingsForm(EditForm):
    """The organization's name, and the version of the organization it was drawn from (a stale save is 409)."""

    name = StringField("Organization name", validators=[DataRequired("Give the organization a name."), Length(max=120)])


class DeleteOrganizationForm(FlaskForm):
    confirm = StringField(
        "Type the organization's address to confirm", validators=[DataRequired("Type the address to confirm.")]
    )

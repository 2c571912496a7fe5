from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class GeneralSettingsForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired("Give the organization a name."), Length(max=120)])


class DeleteOrganizationForm(FlaskForm):
    confirm = StringField(
        "Type the organization's address to confirm", validators=[DataRequired("Type the address to confirm.")]
    )

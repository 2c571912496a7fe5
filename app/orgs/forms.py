from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional


class OrganizationForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired("Give the organization a name."), Length(max=120)])
    slug = StringField(
        "Address",
        validators=[Optional(), Length(min=3, max=63, message="Use 3 to 63 characters.")],
        description="Lower-case letters, digits and hyphens; leave empty to generate it from the name.",
    )

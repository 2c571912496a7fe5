from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.web.forms import EditForm


class GeneralSettingsForm(EditForm):
    """Name, address, contact e-mail and time zone, and the version of the
    organization it was drawn from (a stale save is 409). The slug, contact
    and time zone are optional in the request (a rename-only post keeps them)."""

    name = StringField("Organization name", validators=[DataRequired("Give the organization a name."), Length(max=120)])
    slug = StringField("Address", validators=[Optional(), Length(max=63)])
    contact_email = StringField("Contact e-mail", validators=[Optional(), Length(max=254)])
    timezone = StringField(
        "Time zone", validators=[Optional(), Length(max=64)], render_kw={"list": "timezones", "autocomplete": "off"}
    )


class ColourForm(EditForm):
    colour = StringField("Primary colour", validators=[Length(max=16)])


class LogoForm(EditForm):
    logo = FileField("Logo")


class RemoveLogoForm(EditForm):
    pass


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        pass  # unknown values are dropped by the service, not a 500


class SecurityForm(EditForm):
    idle_minutes = StringField("Sign out after inactivity (minutes)", validators=[Length(max=12)])
    absolute_hours = StringField("Sign out after (hours), whatever the activity", validators=[Length(max=12)])
    ip_allowlist = TextAreaField("IP allowlist", validators=[Length(max=8000)])
    confirm_lockout = BooleanField("I understand my own address is not in the list, and may lock me out")
    sign_in_methods = MultiCheckboxField("Allowed sign-in methods", choices=[])
    break_glass = MultiCheckboxField("Break-glass Owners", choices=[])
    require_2fa = BooleanField("Require two-factor authentication")
    require_2fa_grace_days = StringField("Grace period (days)", validators=[Length(max=12)])
    members_may_create_api_keys = BooleanField("Members may create API keys")
    api_keys_may_never_expire = BooleanField("Keys may be created without an expiry")


class NotificationsForm(EditForm):
    kinds = MultiCheckboxField("E-mail me when", choices=[])


class DeleteOrganizationForm(FlaskForm):
    confirm = StringField(
        "Type the organization's address to confirm", validators=[DataRequired("Type the address to confirm.")]
    )

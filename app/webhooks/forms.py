"""Webhook endpoint forms (Flask-WTF: every form carries the CSRF token).

The form checks shape; the service decides (the URL passes the SSRF guard,
the events are in the audit catalogue, the plan's limit holds), so the
rules hold for every caller.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from app.web.forms import CreateForm, EditForm
from app.webhooks.models import DESCRIPTION_MAX


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class EndpointForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        filters=[_strip],
        description="Where Tenantry POSTs each event, e.g. https://example.com/webhooks/tenantry.",
    )
    description = TextAreaField(
        "Description",
        filters=[_strip],
        validators=[Optional(), Length(max=DESCRIPTION_MAX, message=f"Use at most {DESCRIPTION_MAX:,} characters.")],
    )
    # Drawn as grouped checkboxes by the template; the service checks each
    # value against the audit catalogue (the choices are a convenience).
    event_types = SelectMultipleField("Events", choices=[], validate_choice=False)


class NewEndpointForm(CreateForm, EndpointForm):
    """The create form: the fields and a one-time key."""


class EditEndpointForm(EditForm, EndpointForm):
    """The edit form: the fields and the version they were drawn from (a stale save is 409)."""


class ReplayForm(FlaskForm):
    since = StringField(
        "Failed since",
        filters=[_strip],
        description="In the organization's time zone: every delivery that failed and was created at or after it is sent again.",
    )

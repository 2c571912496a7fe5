"""Audit stream forms (Flask-WTF: every form carries the CSRF token).

The form checks shape; the service decides (the URL passes the SSRF guard,
a Splunk or Datadog stream has its token), so the rules hold for every caller.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField

from app.streaming.models import KINDS
from app.web.forms import CreateForm, EditForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class StreamForm(FlaskForm):
    name = StringField("Name", filters=[_strip], description="What your team calls this destination, e.g. “SIEM”.")
    url = StringField(
        "URL",
        filters=[_strip],
        description=(
            "HTTPS endpoint: the URL batches are POSTed to. Splunk: your HEC base URL (…/services/collector/event "
            "is added). Datadog: your site's intake, e.g. https://http-intake.logs.datadoghq.eu (/api/v2/logs is added)."
        ),
    )
    # Never drawn with its value: a stored token is not shown again.
    token = PasswordField(
        "Token",
        filters=[_strip],
        description="Splunk: the HEC token. Datadog: an API key. Not used by HTTPS streams (they are signed).",
    )


class NewStreamForm(CreateForm, StreamForm):
    """The create form: the kind, where it starts, the fields and a one-time key."""

    kind = RadioField("Destination", choices=list(KINDS.items()), default="https", validate_choice=False)
    start = RadioField(
        "Start with",
        choices=[("new", "New events only"), ("all", "Everything the audit log still holds")],
        default="new",
        validate_choice=False,
    )


class EditStreamForm(EditForm, StreamForm):
    """The edit form: the fields and the version they were drawn from (a stale save is 409)."""

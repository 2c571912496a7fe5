"""Domain forms (Flask-WTF: every form carries the CSRF token).

The forms check shape only; ``app.domains.services`` decides what is allowed
(a valid, unclaimed, non-free-mail name; a host under a verified domain), so
the rules hold for every caller.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField

from app.domains.services import AUTO_JOIN_LABELS, JOIN_ROLES
from app.permissions import SYSTEM_ROLES
from app.web.forms import CreateForm, EditForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class AddDomainForm(CreateForm):
    name = StringField(
        "Domain",
        filters=[_strip],
        description="A domain your organization owns, such as acme.com. You will publish a DNS record to prove it.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "placeholder": "acme.com"},
    )


class VerifyForm(FlaskForm):
    """The "verify now" button; its field only carries the check's outcome."""

    verify = HiddenField()


class DomainSettingsForm(EditForm):
    auto_join = RadioField("People with a verified address at this domain", choices=list(AUTO_JOIN_LABELS.items()))
    auto_join_role = SelectField(
        "Role they join with",
        choices=[(k, SYSTEM_ROLES[k].name) for k in JOIN_ROLES],
        validate_choice=False,
        description="Owner is never given this way. Seats on your plan still apply.",
    )

    def validate(self, extra_validators=None) -> bool:
        # The service refuses an unknown choice beside its field; WTForms' own
        # "Not a valid choice" would say less.
        self.auto_join.pre_validate = lambda form: None
        return super().validate(extra_validators)


class CustomHostForm(EditForm):
    """The host to serve; ``version`` is the organization's."""

    host = StringField(
        "Host",
        filters=[_strip],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class RemoveForm(FlaskForm):
    """Remove a domain, or stop serving the custom host (a button)."""

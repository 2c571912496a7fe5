"""Platform console forms (Flask-WTF: every form carries the CSRF token).

The forms check shape; the services decide (an unknown plan, an empty
reason, a wrong confirmation are refused there too, for every caller).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from app.platform.organizations import REASON_MAX
from app.web.forms import EditForm

REASON_HINT = "Recorded in the platform's audit log and the organization's."


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ReasonForm(FlaskForm):
    """An action that needs nothing but a reason."""

    reason = TextAreaField("Reason", filters=[_strip], description=REASON_HINT, render_kw={"maxlength": REASON_MAX})


class SuspendForm(ReasonForm):
    reason = TextAreaField(
        "Reason",
        filters=[_strip],
        description="Shown to the organization's members on the suspension page, and recorded in the audit logs.",
        render_kw={"maxlength": REASON_MAX},
    )


class PlanForm(EditForm, ReasonForm):
    """Change the plan: the plan, a reason, and (when a limit falls below
    usage) a confirmation. Carries the organization's version."""

    # Choices are the plans, filled by the view; the service refuses a key
    # that is not a plan, so the list is a convenience, not the rule.
    plan = SelectField("Plan", choices=[], validate_choice=False)
    confirm = BooleanField("I understand: change the plan anyway")


class PurgeForm(ReasonForm):
    confirm = StringField("Type the organization's address to confirm", filters=[_strip])


class ImpersonateForm(ReasonForm):
    reason = TextAreaField(
        "Reason",
        filters=[_strip],
        description="Why you need to act as this person. Recorded in the platform's audit log.",
        render_kw={"maxlength": REASON_MAX},
    )
    ticket = StringField("Ticket reference (optional)", filters=[_strip], render_kw={"maxlength": 100})

"""Platform console forms (Flask-WTF: every form carries the CSRF token).

The forms check shape; the services decide (an unknown plan, an empty
reason, a wrong confirmation are refused there too, for every caller).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField

from app.platform.organizations import REASON_MAX
from app.tenancy import entitlements
from app.web.forms import EditForm

try:  # WTForms 3.3+ deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value, label):
        return (value, label)


def choice(value: str, label: str):
    """One option of a select, in the form the installed WTForms prefers."""
    return _Choice(value, label)


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


class PlanEditForm(EditForm, ReasonForm):
    """Edit a plan: one field per limit (``limit-<name>``) and per feature
    (``feature-<name>``), added by ``plan_edit_form``; a reason; and, when a
    limit falls below what organizations use, a confirmation. Carries the
    plan's version."""

    reason = TextAreaField(
        "Reason",
        filters=[_strip],
        description="Recorded in the platform's audit log.",
        render_kw={"maxlength": REASON_MAX},
    )
    confirm = BooleanField("I understand: save the plan anyway")


# One field per limit and per feature entitlements know, named after it.
for _name in entitlements.limit_names():
    setattr(
        PlanEditForm,
        f"limit_{_name}",
        StringField(
            entitlements.label(_name),
            filters=[_strip],
            description='A whole number; empty or "unlimited" for no limit.'
            if entitlements.may_be_unlimited(_name)
            else "A whole number.",
        ),
    )
for _name in entitlements.feature_names():
    setattr(PlanEditForm, f"feature_{_name}", BooleanField(entitlements.label(_name)))


class OverrideForm(ReasonForm):
    """Give one organization its own value for a limit or a feature."""

    # Choices are the limits and features, filled by the view; the service
    # refuses any other name.
    name = SelectField("Limit or feature", choices=[], validate_choice=False)
    value = StringField("New limit", filters=[_strip], description='For a limit: a whole number, or "unlimited".')
    enabled = SelectField(
        "Feature",
        choices=[_Choice("", "—"), _Choice("on", "On"), _Choice("off", "Off")],
        validate_choice=False,
        description="For a feature: switched on or off for this organization.",
    )
    until = StringField(
        "Until (optional)",
        filters=[_strip],
        description="The override ends at the start of this day (UTC); empty: no end.",
        render_kw={"type": "date"},
    )
    confirm = BooleanField("I understand: set it anyway")


class RemoveOverrideForm(ReasonForm):
    name = HiddenField()

"""Access review forms (Flask-WTF: every form carries the CSRF token).

The forms check shape; ``app.reviews.services`` decides what is allowed
(reviewers must be Owners or Admins, the deadline within a year...), so the
rules hold for the recurrence job as for the page.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.reviews.models import DECISIONS, NAME_MAX, NOTE_MAX, RECURRENCE_LABELS
from app.web.forms import CreateForm, EditForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class _Checkboxes(SelectMultipleField):
    """A multiple choice drawn as checkboxes (keyboard and screen-reader friendly)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class NewReviewForm(CreateForm):
    """Start a campaign: name, who is reviewed, reviewers, deadline, repetition."""

    name = StringField(
        "Name",
        filters=[_strip],
        validators=[
            DataRequired("Give the review a name."),
            Length(max=NAME_MAX, message=f"Use at most {NAME_MAX} characters."),
        ],
    )
    scope = RadioField(
        "Who is reviewed",
        choices=[("all", "Every active member"), ("permissions", "Members holding any of these permissions")],
        default="all",
        validate_choice=False,
    )
    permissions = _Checkboxes("Permissions", choices=[], validate_choice=False)
    reviewers = _Checkboxes(
        "Reviewers",
        choices=[],
        validate_choice=False,
        description="Owners and Admins: each of them may decide on any member of the review.",
    )
    deadline = DateField("Deadline", validators=[DataRequired("Choose a deadline (a date like 2026-01-31).")])
    recurrence = SelectField(
        "Repeats",
        choices=list(RECURRENCE_LABELS.items()),
        default="none",
        validate_choice=False,
        description="A repeating review starts its next campaign by itself, with the same members' scope and reviewers.",
    )


class DecisionForm(EditForm):
    """A reviewer's decision on one member: keep, change role (to ``role``) or remove.

    Carries the item's version: two reviewers deciding the same member at
    once, the second gets a 409 and sees the first's decision."""

    decision = StringField()  # sent by the button pressed (Keep, Change role, Remove)
    role = SelectField("New role", choices=[], validate_choice=False, validators=[Optional()])
    note = TextAreaField(
        "Note",
        filters=[_strip],
        validators=[Optional(), Length(max=NOTE_MAX, message=f"Use at most {NOTE_MAX} characters.")],
    )

    def validate_decision(self, field):
        from wtforms.validators import ValidationError

        if field.data not in DECISIONS:
            raise ValidationError("Choose keep, change role or remove.")


class CloseForm(FlaskForm):
    """Close a campaign (the CSRF token only: closing twice is refused by the service)."""

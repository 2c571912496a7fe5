"""The one user-facing error and the one way a form shows it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField

from app.auth.services import LinkInvalid, Throttled
from app.errors import UserError
from app.web.forms import with_error


class _Form(FlaskForm):
    class Meta:
        csrf = False

    name = StringField("Name")
    email = StringField("E-mail")


def test_user_error_answers_422_unless_it_says_otherwise():
    assert UserError("No.").status == 422
    assert UserError("Taken.", "slug", status=409).status == 409
    assert (UserError("Taken.", "slug").message, UserError("Taken.", "slug").field) == ("Taken.", "slug")


def test_subclasses_keep_the_one_shape_with_their_own_status():
    assert isinstance(Throttled(30), UserError) and Throttled(30).status == 429
    assert isinstance(LinkInvalid(), UserError) and LinkInvalid().status == 410


def test_error_goes_beside_the_field_it_names(app):
    with app.test_request_context(method="POST"):
        form = with_error(_Form(), UserError("Enter your name.", "name"))
        assert form.name.errors == ["Enter your name."]
        assert not form.email.errors
        assert form.form_errors == []


def test_error_naming_no_field_of_the_form_goes_beside_the_fallback_or_above(app):
    with app.test_request_context(method="POST"):
        beside = with_error(_Form(), UserError("Not allowed.", "role"), fallback="email")
        assert beside.email.errors == ["Not allowed."]
        above = with_error(_Form(), UserError("Not allowed."))
        assert above.form_errors == ["Not allowed."]
        # A name that is a form attribute but not a field is no field.
        odd = with_error(_Form(), UserError("Odd.", "meta"))
        assert odd.form_errors == ["Odd."]

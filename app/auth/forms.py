"""Account forms (Flask-WTF: every form carries the CSRF token)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length

from app.auth.passwords import MAX_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail address."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=MAX_LENGTH)])

"""SSO portal forms (Flask-WTF: every form carries the CSRF token).

Forms check shape; ``app.sso.services`` and each protocol's
``clean_config`` decide what is allowed. A connection's settings form is
built per protocol from its ``config_fields`` (``connection_form``).
"""

from __future__ import annotations

import functools

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.permissions import SYSTEM_ROLES
from app.rbac.forms import choice
from app.sso import registry
from app.sso.models import NAME_MAX, PROVIDERS
from app.web.forms import CreateForm, EditForm

ROLE_CHOICES = [choice(k, SYSTEM_ROLES[k].name) for k in ("admin", "manager", "member", "viewer")]
PROTOCOL_CHOICES = (("oidc", "OpenID Connect"), ("saml", "SAML 2.0"))


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class NewConnectionForm(CreateForm):
    provider = SelectField(
        "Identity provider",
        choices=[choice(k, v) for k, v in PROVIDERS.items()],
        validate_choice=False,
        validators=[DataRequired("Choose your identity provider.")],
    )
    protocol = SelectField(
        "Protocol",
        choices=[choice(k, v) for k, v in PROTOCOL_CHOICES],
        validate_choice=False,
        validators=[DataRequired("Choose OpenID Connect or SAML.")],
        description="Okta, Entra ID and Google Workspace offer both; OpenID Connect is the quicker to set up.",
    )
    name = StringField(
        "Name",
        filters=[_strip],
        validators=[
            DataRequired("Give the connection a name."),
            Length(max=NAME_MAX, message=f"Use at most {NAME_MAX} characters."),
        ],
        description="Shown to your people on the sign-in button, e.g. “Acme Okta”.",
    )

    def with_protocols(self) -> NewConnectionForm:
        """Offer only the protocols that are installed."""
        self.protocol.choices = [choice(k, v) for k, v in PROTOCOL_CHOICES if registry.get(k) is not None]
        return self


class _ConnectionBase(EditForm):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give the connection a name."), Length(max=NAME_MAX)]
    )
    default_role = SelectField(
        "Role of new members",
        choices=ROLE_CHOICES,
        validate_choice=False,
        description="What a person signing in for the first time gets, unless one of their groups maps to a role.",
    )


@functools.cache
def connection_form(protocol_key: str) -> type[EditForm]:
    """The settings form class of a protocol: name, default role and the
    protocol's own fields (secrets never drawn back into the page; an
    upload field is a file input)."""
    proto = registry.get(protocol_key)
    attrs = {}
    for f in proto.config_fields:
        if f.upload:
            attrs[f.name] = FileField(f.label, validators=[Optional()], description=f.help)
            continue
        validators = [Optional()] if (f.secret or not f.required) else [DataRequired(f"Enter the {f.label.lower()}.")]
        kind = PasswordField if f.secret else (TextAreaField if f.multiline else StringField)
        attrs[f.name] = kind(f.label, filters=[_strip], validators=validators, description=f.help)
    return type(f"{protocol_key.title()}ConnectionForm", (_ConnectionBase,), attrs)


class VersionForm(EditForm):
    """Enable / disable: the version the button was drawn from."""


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token (test, revoke)."""


class SetupLinkForm(FlaskForm):
    label = StringField(
        "Who is it for?",
        filters=[_strip],
        validators=[DataRequired("Say who the link is for."), Length(max=NAME_MAX)],
        description="A name or an e-mail address, to recognise the link in the list.",
    )


def upload_fields(protocol_key: str) -> tuple[str, ...]:
    """Names of the protocol's file inputs (the only fields a file may come in)."""
    proto = registry.get(protocol_key)
    return tuple(f.name for f in proto.config_fields if f.upload) if proto else ()

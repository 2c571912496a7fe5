"""Reminding members to set up two-factor authentication.

An administrator who may change the security policy (``settings:security``)
reminds members without a second factor, one at a time or in bulk from the
members page (its "without two-factor" filter finds them). The reminder is
an e-mail, sent as a job through the mail machinery in the same transaction,
and audited (``member.two_factor_reminded``). At most one reminder per
member and organization per ``TWO_FACTOR_REMINDERS_PER_MEMBER`` (a day by
default), so a double click or a bulk run twice does not flood anyone.
"""

from __future__ import annotations

from flask import url_for

from app import audit
from app.auth import factors, throttle
from app.errors import UserError
from app.mail import queue_mail
from app.tenancy import policy as security_policy
from app.tenancy.models import Membership
from app.web.hosts import apex_url


def remind(target: Membership, actor: Membership, org) -> bool:
    """E-mail ``target`` to set up two-factor authentication (the deadline
    named when the organization requires it with a grace period).

    ``False`` (nothing sent) when they already have a second factor;
    ``UserError`` when the actor may not (``settings:security``), the member
    is deactivated, or they were reminded too recently."""
    if "settings:security" not in actor.permissions:
        raise UserError("Your role does not allow reminding members about two-factor authentication.")
    if target.status != "active":
        raise UserError("is deactivated")
    user = target.user
    if factors.has_second_factor(user):
        return False
    key = f"{org.id}:{target.user_id}"
    if not throttle.hit("TWO_FACTOR_REMINDERS_PER_MEMBER", key):
        raise UserError("was reminded recently")
    policy = security_policy.for_org(org)
    deadline = policy.two_factor_deadline()
    queue_mail(
        user.email,
        f"{org.name} asks you to set up two-factor authentication",
        "two_factor_reminder",
        user=user,
        org=org,
        required=policy.require_2fa,
        deadline=deadline,
        link=apex_url(url_for("account.security")),
        sender=actor.user.name,
    )
    audit.record(
        "member.two_factor_reminded",
        target=user,
        metadata={"user_id": str(user.id), "email": user.email, "required": policy.require_2fa},
    )
    return True

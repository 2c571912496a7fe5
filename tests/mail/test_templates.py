"""Every account mail has a text and an HTML part, carries its link, and fetches nothing."""

from __future__ import annotations

import re

import pytest

from app.mail import build
from tests import factories as f

CASES = {
    "verify": {"link": "http://tenantry.localhost/verify-email/T", "hours": 48},
    "reset": {"link": "http://tenantry.localhost/reset-password/T", "minutes": 60},
    "email_change": {"link": "http://tenantry.localhost/confirm-email/T", "hours": 48, "new_email": "new@example.test"},
    "email_changed_notice": {"old_email": "old@example.test", "new_email": "new@example.test"},
}


@pytest.mark.parametrize("template", sorted(CASES))
def test_account_mail_has_text_and_clean_html(app, template):
    user = f.make_user("ann@example.test", "Ann <Example> & Co")
    with app.test_request_context():
        msg = build(user.email, "Subject", template, user=user, **CASES[template])
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Ann <Example> & Co" in text  # plain text is not HTML-escaped
    assert "Ann &lt;Example&gt; &amp; Co" in html  # HTML is
    if "link" in CASES[template]:
        assert CASES[template]["link"] in text and f'href="{CASES[template]["link"]}"' in html
    assert not re.search(r"<(img|script|link|iframe)\b", html, re.I)
    assert "http://" not in html.replace(CASES[template].get("link", "-"), "")

"""Every date a page shows goes through one filter, ``time_tag``: one format,
in the organization's time zone (UTC without a ``timezone`` setting)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

from flask import g

from app.web.templating import time_tag

WHEN = datetime(2026, 11, 29, 14, 10, 7, tzinfo=UTC)


def text(markup) -> str:
    return re.sub(r"<[^>]+>", "", str(markup)).replace("\u00a0", " ")


def test_utc_without_an_organization(app):
    with app.test_request_context("/"):
        tag = time_tag(WHEN)
    assert text(tag) == "29 Nov 2026, 14:10 UTC"
    assert 'datetime="2026-11-29T14:10:07+00:00"' in tag


def test_the_organizations_time_zone(app):
    with app.test_request_context("/"):
        g.org = SimpleNamespace(settings={"timezone": "Europe/Paris"})
        assert text(time_tag(WHEN)) == "29 Nov 2026, 15:10 CET"
        g.org = SimpleNamespace(settings={"timezone": "America/New_York"})
        assert text(time_tag(WHEN)) == "29 Nov 2026, 09:10 EST"


def test_utc_when_the_setting_is_missing_or_unknown(app):
    with app.test_request_context("/"):
        for settings in ({}, {"timezone": ""}, {"timezone": "Mars/Olympus"}, {"timezone": "../etc"}):
            g.org = SimpleNamespace(settings=settings)
            assert text(time_tag(WHEN)) == "29 Nov 2026, 14:10 UTC"


def test_none_and_naive_values(app):
    with app.test_request_context("/"):
        assert time_tag(None) == ""
        assert text(time_tag(WHEN.replace(tzinfo=None))) == "29 Nov 2026, 14:10 UTC"


def test_no_template_formats_a_date_itself():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.html")
        if p.parts[-2] != "mail" and re.search(r"strftime|isoformat\(", p.read_text())
    ]
    assert offenders == [], f"format dates with |time_tag: {offenders}"

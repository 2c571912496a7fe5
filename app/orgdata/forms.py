"""The export page's one form: start an export (a one-time key: a double click starts one)."""

from __future__ import annotations

from app.web.forms import CreateForm


class StartExportForm(CreateForm):
    """No fields beyond the CSRF token and the one-time key."""

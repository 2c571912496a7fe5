"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi …``.

A configuration that cannot run safely stops the process with one line
saying what to set, instead of a traceback.
"""

import sys

from app import create_app
from app.config import ConfigurationError

try:
    app = create_app()
except ConfigurationError as exc:
    sys.exit(f"tenantry: refusing to start: {exc}")

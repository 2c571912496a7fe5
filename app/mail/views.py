"""The development outbox: lists mail written when no ``MAIL_URL`` is set.

The blueprint is registered only in development (``app/web/blueprints.py``),
and even there it answers only requests from a loopback address and only while
no ``MAIL_URL`` is set: the outbox holds password-reset links.
"""

from __future__ import annotations

import ipaddress
from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, render_template, request

from app.mail import outbox_dir
from app.web.access import public

bp = Blueprint("mail", __name__, url_prefix="/_dev/outbox")


def _is_loopback(addr: str | None) -> bool:
    try:
        return ipaddress.ip_address((addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard():
    """404 unless this is development, mail is not sent over SMTP, and the
    visitor is on this machine."""
    if not current_app.config["DEVELOPMENT"] or current_app.config.get("MAIL_URL"):
        abort(404)
    if not _is_loopback(request.remote_addr):
        abort(404)


def _read(path):
    with path.open("rb") as fh:
        msg = BytesParser(policy=policy.default).parse(fh)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "id": path.stem,
        "to": msg["To"],
        "subject": msg["Subject"],
        "date": msg["Date"].datetime if msg["Date"] else None,  # shown through time_tag
        "text": body.get_content() if body else "",
    }


@bp.get("/")
@public
def index():
    """Every message in the outbox, newest first (development only)."""
    _guard()
    folder = outbox_dir()
    files = sorted(folder.glob("*.eml"), reverse=True)[:200] if folder.exists() else []
    return render_template("mail/outbox.html", messages=[_read(p) for p in files])


@bp.get("/<msg_id>")
@public
def show(msg_id: str):
    """One message's text (development only)."""
    _guard()
    path = outbox_dir() / f"{msg_id}.eml"
    if "/" in msg_id or ".." in msg_id or not path.exists():
        abort(404)
    return render_template("mail/show.html", message=_read(path))

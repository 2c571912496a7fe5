"""The development outbox: lists mail written when no ``MAIL_URL`` is set.

Only registered routes answer in development; elsewhere they are 404.
"""
from __future__ import annotations

from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, render_template

from app.mail import outbox_dir
from app.rbac.decorators import public

bp = Blueprint("mail", __name__, url_prefix="/_dev/outbox")


def _guard():
    if not current_app.config["DEVELOPMENT"] or current_app.config.get("MAIL_URL"):
        abort(404)


def _read(path):
    with path.open("rb") as fh:
        msg = BytesParser(policy=policy.default).parse(fh)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "id": path.stem, "to": msg["To"], "subject": msg["Subject"], "date": msg["Date"],
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

"""The development outbox: lists mail written when no ``MAIL_URL`` is set.

The blueprint is registered only in development (``app/web/blueprints.py``),
and even there it answers only requests from a loopback address and only while
no ``MAIL_URL`` is set: the outbox holds password-reset links.
"""

from __future__ import annotations

import ipaddress
import re
from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, make_response, render_template, request, url_for
from markupsafe import Markup, escape

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


# The HTML part is shown in a sandboxed frame (no scripts, no forms, no
# same-origin access), from its own URL whose policy allows the inline styles
# mail needs and nothing else: no script, nothing fetched, framed only by
# the outbox page. Links open in a new tab, outside the sandbox.
MAIL_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
_LINK_TARGET = '<base target="_blank">'
_URL_RE = re.compile(r"https?://[^\s<>\"')]+")


def _parse(path):
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)


def _read(path):
    msg = _parse(path)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "id": path.stem,
        "to": msg["To"],
        "subject": msg["Subject"],
        "date": msg["Date"].datetime if msg["Date"] else None,  # shown through time_tag
        "text": body.get_content() if body else "",
        "has_html": msg.get_body(preferencelist=("html",)) is not None,
    }


def linkify(text: str) -> Markup:
    """``text`` escaped, with every http(s) URL in it a link (whole, never shortened)."""
    out, last = [], 0
    for m in _URL_RE.finditer(text):
        link = m.group(0).rstrip(".,;:!?")  # the sentence's full stop is not part of the link
        out += [escape(text[last : m.start()]), Markup('<a href="{0}">{0}</a>').format(link)]
        last = m.start() + len(link)
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _message_path(msg_id: str):
    path = outbox_dir() / f"{msg_id}.eml"
    if "/" in msg_id or "\\" in msg_id or ".." in msg_id or not path.exists():
        abort(404)
    return path


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
    """One message: its HTML part as a recipient sees it (in a sandboxed
    frame, ``html``), and its plain text with every link whole and
    clickable (development only)."""
    _guard()
    message = _read(_message_path(msg_id))
    return render_template(
        "mail/show.html",
        message=message,
        text_html=linkify(message["text"]),
        html_url=url_for("mail.html", msg_id=msg_id) if message["has_html"] else None,
    )


@bp.get("/<msg_id>/html")
@public
def html(msg_id: str):
    """The message's HTML part alone, for the outbox page's sandboxed frame.

    Served with its own policy (``MAIL_HTML_CSP``: no script, nothing
    fetched, a CSP sandbox, framed only by our own pages); links open in a
    new tab. Development only, like the rest of the outbox."""
    _guard()
    part = _parse(_message_path(msg_id)).get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    body = part.get_content()
    # Links leave the frame: a reset link opened inside it would be refused
    # (our pages may not be framed) and would run sandboxed.
    head = re.search(r"<head[^>]*>", body, re.IGNORECASE)
    body = body[: head.end()] + _LINK_TARGET + body[head.end() :] if head else _LINK_TARGET + body
    resp = make_response(body)
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
    resp.headers["Content-Security-Policy"] = MAIL_HTML_CSP
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    resp.headers["Cache-Control"] = "no-store"
    return resp

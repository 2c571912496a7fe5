"""No lost updates, no double submits: what every edit and create form relies on.

**Edits carry the version they were made from.** A model that people edit
declares a ``version`` column as its ``version_id_col`` (``versioned()``
below): SQLAlchemy bumps it on every UPDATE and adds ``WHERE version = <as
read>``. The edit form carries it in a hidden field (``app.web.forms.EditForm``)
and the service starts with ``lock_for_edit(row, submitted_version)``:

* the row is read again with ``SELECT … FOR UPDATE``, so two saves of the
  same row take turns, and everything the service reads afterwards (its
  checks, the audit "before") is what the row holds now, not what it held
  when this request began;
* a form drawn from another version is refused with ``StaleEdit`` (409):
  someone saved in between, and saving now would silently undo their change.
  Nothing is written; the view shows the form with the current state.

A service called from code with no version (a script, the CLI) is saved
under the lock as before; a form sent without one is refused before the
service runs (``EditForm.validate``: 422).

**Create forms carry a one-time key** (``app.web.forms.CreateForm``), drawn
with the form. The create view calls ``claim_submit_key(key)`` before
creating: the first submit with a key claims it (a row in ``submit_keys``,
in the same transaction as what it creates) and, once it has created,
``settle_submit_key(key, url)`` notes where the result is. A second submit
with the same key, sequential or at the same instant (the primary key makes
the second INSERT wait for the first transaction), gets that URL back and
creates nothing. A submit that fails (422) rolls its claim back with
everything else, so the corrected form can be sent again. Keys older than
``SUBMIT_KEY_TTL`` are deleted as new ones are claimed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, Integer, String, Text, delete, func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from app.errors import StaleEdit
from app.extensions import db
from app.scoping import TenantScoped, current_org_id

SUBMIT_KEY_TTL = timedelta(days=1)
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


# --------------------------------------------------------------------------- edits
def versioned() -> Mapped[int]:
    """The ``version`` column of an edited model; name it in ``__mapper_args__ = {"version_id_col": version}``."""
    return mapped_column(Integer, nullable=False, server_default="1")


def parse_version(value) -> int | None:
    """The version a form sent, or ``None`` when it sent none (or nonsense)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def lock_for_edit(instance, seen_version=None) -> None:
    """Lock ``instance``'s row and reload it; refuse an edit made from another version.

    ``SELECT … FOR UPDATE`` of this row only (not of what it eagerly joins),
    overwriting the loaded attributes with what is stored now. Raises
    ``StaleEdit`` (409) when ``seen_version`` is given and differs from the
    stored version, or when the row is gone.
    """
    mapper = inspect(instance).mapper
    cls = mapper.class_
    key = mapper.primary_key_from_instance(instance)
    stmt = (
        select(cls)
        .where(*[col == value for col, value in zip(mapper.primary_key, key, strict=True)])
        .with_for_update(of=cls)
        .execution_options(populate_existing=True)
    )
    if db.session.execute(stmt).unique().scalar_one_or_none() is None:
        raise StaleEdit("This was deleted by someone else while you were editing it.")
    wanted = parse_version(seen_version)
    if wanted is not None and wanted != instance.version:
        raise StaleEdit()


# --------------------------------------------------------------------------- one-time keys
class SubmitKey(TenantScoped, db.Model):
    """A create form's one-time key that was submitted, and where its result lives."""

    __tablename__ = "submit_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    result_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_submit_keys_org_created", "organization_id", "created_at"),)


def valid_submit_key(key) -> bool:
    return isinstance(key, str) and bool(_KEY_RE.match(key))


def claim_submit_key(key) -> str | None:
    """Claim ``key`` for this submit; ``None`` when it is ours (go on and create).

    When an earlier submit with this key created something, returns the URL
    of its result (after waiting for that submit's transaction, if it is
    still running). A missing or malformed key claims nothing and returns
    ``None``: the form is processed as one without a key.
    """
    if not valid_submit_key(key):
        return None
    org_id = current_org_id()
    db.session.execute(
        delete(SubmitKey)
        .where(SubmitKey.created_at < func.now() - SUBMIT_KEY_TTL)
        .execution_options(synchronize_session=False)
    )
    claimed = db.session.execute(
        insert(SubmitKey.__table__)
        .values(organization_id=org_id, key=key)
        .on_conflict_do_nothing(index_elements=["organization_id", "key"])
        .returning(SubmitKey.__table__.c.key)
    ).scalar_one_or_none()
    if claimed is not None:
        return None
    url = db.session.execute(select(SubmitKey.result_url).where(SubmitKey.key == key)).scalar_one_or_none()
    # Claimed and committed without a result (a create that redirects
    # nowhere in particular): the earlier submit was still the one that counted.
    return url or ""


def settle_submit_key(key, result_url: str) -> None:
    """Note where the result of the submit that claimed ``key`` lives (same transaction)."""
    if valid_submit_key(key):
        db.session.execute(
            update(SubmitKey)
            .where(SubmitKey.key == key)
            .values(result_url=result_url)
            .execution_options(synchronize_session=False)
        )

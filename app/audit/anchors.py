"""Chain heads kept outside the database: what makes a truncated tail visible.

A chain whose newest links were deleted together with their events is still
internally consistent; only a record of how far it once reached shows the
loss. Every seal run and every green verification writes each chain's head
``(seq, chain MAC)`` here:

* a JSON file (``AUDIT_ANCHOR_PATH``, default ``<instance>/audit-anchors.json``),
  keyed by database name and organization id, written atomically under a
  file lock; keep it on storage the database's operators cannot write (or
  mount it from one);
* a log line ``audit.head`` with the same fields, for shipping to write-once
  storage (the JSON logs in production).

Verification reports a chain that no longer reaches its anchored head, or
reaches it with another MAC.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path

from flask import current_app

from app.util import utcnow

log = logging.getLogger("tenantry.audit.anchor")


def path() -> Path:
    configured = current_app.config.get("AUDIT_ANCHOR_PATH")
    return Path(configured) if configured else Path(current_app.config["INSTANCE_DIR"]) / "audit-anchors.json"


@contextlib.contextmanager
def _locked():
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(str(p) + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield p
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(p: Path) -> dict:
    try:
        return json.loads(p.read_text() or "{}")
    except FileNotFoundError:
        return {}
    except ValueError:
        log.error("audit anchor file %s is unreadable; treating it as empty", p)
        return {}


def load(database: str) -> dict[str, dict]:
    """``{org_id: {"seq": int, "chain": hex, "at": iso}}`` for ``database``."""
    with _locked() as p:
        return dict(_read(p).get(database, {}))


def advance(database: str, heads: dict) -> None:
    """Record new heads ``{org_id: (seq, chain_mac_bytes)}``; never moves one back."""
    if not heads:
        return
    with _locked() as p:
        data = _read(p)
        db_heads = data.setdefault(database, {})
        now = utcnow().isoformat()
        changed = False
        for org_id, (seq, chain) in heads.items():
            key = str(org_id)
            cur = db_heads.get(key)
            if cur is not None and cur.get("seq", 0) >= seq:
                continue
            db_heads[key] = {"seq": seq, "chain": bytes(chain).hex(), "at": now}
            changed = True
            log.info(
                "audit.head org=%s seq=%s chain=%s",
                key,
                seq,
                bytes(chain).hex(),
                extra={"audit_org": key, "audit_seq": seq, "audit_chain": bytes(chain).hex()},
            )
        if not changed:
            return
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".anchors-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

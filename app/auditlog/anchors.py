"""Chain heads kept outside the database: what makes a truncated tail visible.

A chain whose newest links were deleted together with their events is still
internally consistent; only a record of how far it once reached shows the
loss. Every seal run and every green verification hands each chain's head
``(seq, chain MAC)`` to ``advance``, which

* writes it to the anchor store (below), keyed by database name and
  organization id; keep the store where the database's operators cannot
  write;
* logs a line ``audit.head`` with the same fields, for shipping to
  write-once storage (the JSON logs in production), whatever the store.

Verification reports a chain that no longer reaches its anchored head, or
reaches it with another MAC.

**The store** is anything with the two methods of ``AnchorStore``:

* ``FileAnchorStore``, the default: a JSON file (``AUDIT_ANCHOR_PATH``,
  default ``<instance>/audit-anchors.json``) replaced atomically under an
  ``fcntl`` lock. The lock only serialises processes on one machine, so it
  suits one machine, or several that share a file system with working
  locks.
* Any other store (object storage with conditional writes, a write-once
  ledger, a table in another database) implements ``load`` and
  ``advance`` and is put in the configuration as ``AUDIT_ANCHOR_STORE``
  (``create_app({"AUDIT_ANCHOR_STORE": MyStore(...)})``; a store chosen by
  a URL setting would be built from it here). Its ``advance`` must be
  atomic against concurrent sealers and verifiers on every machine that
  shares it, and must never move a head back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from flask import current_app

from app.util import utcnow

log = logging.getLogger("tenantry.audit.anchor")

# {org_id: {"seq": int, "chain": hex, "at": iso}}: one database's anchored heads.
Heads = dict[str, dict]


class AnchorStore(Protocol):
    """Where the anchored chain heads are kept."""

    def load(self, database: str) -> Heads:
        """Every anchored head of ``database`` (``{}`` when none)."""

    def advance(self, database: str, heads: dict[str, tuple[int, bytes]], at: str) -> list[str]:
        """Anchor each head ``{org_id: (seq, chain MAC)}`` that is further along
        than the stored one (never moving one back), stamped ``at``; returns
        the organization ids it moved."""


class FileAnchorStore:
    """The heads of every database in one JSON file, replaced atomically under a file lock."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except FileNotFoundError:
            return {}
        except ValueError:
            log.error("audit anchor file %s is unreadable; treating it as empty", self.path)
            return {}

    def load(self, database: str) -> Heads:
        with self._locked():
            return dict(self._read().get(database, {}))

    def advance(self, database: str, heads: dict[str, tuple[int, bytes]], at: str) -> list[str]:
        with self._locked():
            data = self._read()
            stored = data.setdefault(database, {})
            moved = []
            for org_id, (seq, chain) in heads.items():
                cur = stored.get(org_id)
                if cur is not None and cur.get("seq", 0) >= seq:
                    continue
                stored[org_id] = {"seq": seq, "chain": chain.hex(), "at": at}
                moved.append(org_id)
            if moved:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".anchors-")
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            return moved


def path() -> Path:
    """The default store's file: ``AUDIT_ANCHOR_PATH``, or ``<instance>/audit-anchors.json``."""
    configured = current_app.config.get("AUDIT_ANCHOR_PATH")
    return Path(configured) if configured else Path(current_app.config["INSTANCE_DIR"]) / "audit-anchors.json"


def store() -> AnchorStore:
    """The configured store: ``AUDIT_ANCHOR_STORE``, else the file at ``path()``."""
    return current_app.config.get("AUDIT_ANCHOR_STORE") or FileAnchorStore(path())


def load(database: str) -> Heads:
    """``{org_id: {"seq": int, "chain": hex, "at": iso}}`` for ``database``."""
    return store().load(database)


def advance(database: str, heads: dict) -> None:
    """Record new heads ``{org_id: (seq, chain_mac_bytes)}``; never moves one back.
    Logs an ``audit.head`` line for each head that moved."""
    if not heads:
        return
    wanted = {str(org_id): (seq, bytes(chain)) for org_id, (seq, chain) in heads.items()}
    for org_id in store().advance(database, wanted, utcnow().isoformat()):
        seq, chain = wanted[org_id]
        log.info(
            "audit.head org=%s seq=%s chain=%s",
            org_id,
            seq,
            chain.hex(),
            extra={"audit_org": org_id, "audit_seq": seq, "audit_chain": chain.hex()},
        )

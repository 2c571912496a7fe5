"""The anchor store: heads only move forward, the file is the default, and
another store plugs in through the configuration."""

from __future__ import annotations

from app.auditlog import anchors


class MemoryStore:
    """An ``AnchorStore`` kept in a dict, as an object-storage store would keep it in a bucket."""

    def __init__(self):
        self.heads: dict[str, dict] = {}

    def load(self, database):
        return dict(self.heads.get(database, {}))

    def advance(self, database, heads, at):
        stored = self.heads.setdefault(database, {})
        moved = [o for o, (seq, _) in heads.items() if stored.get(o, {}).get("seq", 0) < seq]
        for o in moved:
            stored[o] = {"seq": heads[o][0], "chain": heads[o][1].hex(), "at": at}
        return moved


def test_the_default_store_is_the_file(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_PATH", str(tmp_path / "heads.json"))
    store = anchors.store()
    assert isinstance(store, anchors.FileAnchorStore) and store.path == tmp_path / "heads.json"
    anchors.advance("db", {"org": (3, b"\x01")})
    assert (tmp_path / "heads.json").exists()
    assert anchors.load("db")["org"]["seq"] == 3


def test_a_head_never_moves_back(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_PATH", str(tmp_path / "heads.json"))
    anchors.advance("db", {"org": (5, b"\x05")})
    anchors.advance("db", {"org": (4, b"\x04"), "other": (1, b"\x01")})
    heads = anchors.load("db")
    assert (heads["org"]["seq"], heads["org"]["chain"]) == (5, "05")
    assert heads["other"]["seq"] == 1
    assert anchors.load("another-db") == {}


def test_a_configured_store_keeps_the_heads_and_catches_a_truncated_tail(
    app, world, record_in, verify, owner_sql, monkeypatch, tmp_path
):
    store = MemoryStore()
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_STORE", store)
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_PATH", str(tmp_path / "unused.json"))
    for i in range(4):
        record_in(world.acme, "project.created", target=("project", f"p{i}", f"P{i}"), after={"name": f"P{i}"})
    assert verify("acme").ok
    (heads,) = store.heads.values()
    assert heads[str(world.acme.id)]["seq"] == 4
    assert not (tmp_path / "unused.json").exists()
    last = owner_sql("SELECT max(id) FROM audit_events WHERE organization_id = :o", o=world.acme.id).scalar()
    owner_sql("DELETE FROM audit_seals WHERE event_id = :e", e=last)
    owner_sql("DELETE FROM audit_events WHERE id = :e", e=last)
    res = verify("acme")
    assert (res.first.kind, res.first.seq) == ("truncated", 4)

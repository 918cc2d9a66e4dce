"""The hash-chained audit log (``tenantvec._audit``): append and read with filters, the chain
check against edits, removals, truncation and swaps, tampering in a real shard reported
by ``Store.verify`` and ``tenantvec verify`` (and never "repaired"), the lifecycle entries
the engine writes, and refused input that changes nothing."""

from __future__ import annotations

import math
from pathlib import Path

import lmdb
import msgpack
import numpy as np
import pytest
from click.testing import CliRunner

import tenantvec
from tenantvec import _audit
from tenantvec._audit import ZERO_HASH, AuditEntry, append, check_chain, read
from tenantvec._engine.checksum import CRC_BYTES, seal
from tenantvec._engine.layout import pack_label
from tenantvec._ids import tenant_dir_name
from tenantvec.cli import main
from tenantvec.errors import CorruptShard, InvalidArgument

DIM = 4


class DictTable:
    """An in-memory AuditTable."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))


def key(seq: int) -> bytes:
    return b"e" + seq.to_bytes(8, "big")


def filled(n: int = 5) -> DictTable:
    """A log of ``n`` entries at times 100, 110, ..., ops alternating add/forget."""
    table = DictTable()
    for i in range(n):
        append(table, op="add" if i % 2 == 0 else "forget", time=100 + 10 * i, actor="agent-1", session="s1",
               ids=(f"m{i}",), counts={"added": i}, reason=None if i else "first")
    return table


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32) + 0.1


def store(root: Path, **kw: object) -> tenantvec.Store:
    kw.setdefault("durability", "process")
    return tenantvec.Store(root, dim=DIM, **kw)


def log_of(t: tenantvec.Tenant) -> list[AuditEntry]:
    with t.reading() as view:
        return read(view.side("audit"))


def open_env(root: Path, tid: str) -> lmdb.Environment:
    """The LMDB environment of a closed store's tenant, opened directly."""
    return lmdb.open(str(root / "tenants" / tenant_dir_name(tid)), max_dbs=16, create=False, map_size=1 << 26)


def raw_audit(root: Path, tid: str, edit=None) -> list[tuple[bytes, bytes]]:
    """The audit table of a closed store's tenant, raw (values sealed); ``edit(txn, db)``
    first changes it in a write transaction."""
    env = open_env(root, tid)
    try:
        with env.begin(write=edit is not None) as txn:
            db = env.open_db(b"audit", txn=txn)
            if edit is not None:
                edit(txn, db)
            return list(txn.cursor(db=db))
    finally:
        env.close()


def rewrite_entry(seq: int, change) -> object:
    """An ``edit`` for :func:`raw_audit`: entry ``seq`` re-packed after ``change(row)``, its
    CRC32 made right again (a tamperer who knows the format)."""

    def edit(txn: lmdb.Transaction, db: object) -> None:
        row = msgpack.unpackb(txn.get(key(seq), db=db)[:-CRC_BYTES], raw=False)
        change(row)
        txn.put(key(seq), seal(msgpack.packb(row, use_bin_type=True)), db=db)

    return edit


# ---------------------------------------------------------------------------- append and read
def test_append_chains_entries_and_read_returns_them() -> None:
    table = DictTable()
    e1 = append(table, op="remember", time=1700000000.5, actor="u1", session="s", ids=["a", "b"],
                counts={"z": 2, "added": 1}, reason="why")
    e2 = append(table, op="forget", time=1700000001)
    assert (e1.seq, e2.seq) == (1, 2)
    assert (e1.prev, e2.prev, len(e1.hash)) == (ZERO_HASH, e1.hash, 64)
    assert e1.hash != e2.hash
    assert e1.counts["added"] == 1
    assert list(e1.counts) == ["added", "z"]
    assert (e2.actor, e2.session, e2.ids, dict(e2.counts), e2.reason, e2.time) == (None, None, (), {}, None,
                                                                                    1700000001.0)
    assert read(table) == [e1, e2]
    assert len({e1, e2, read(table)[0]}) == 2  # hashable (counts left out of hash())
    assert sorted(table.data) == [key(1), key(2), b"h"]
    assert check_chain(table.items()) == []


def test_read_filters_by_time_ops_and_limit() -> None:
    table = filled(6)  # times 100..150, ops add, forget, add, ...
    assert [e.seq for e in read(table, since=110, until=140)] == [2, 3, 4]  # since inclusive, until exclusive
    assert [e.seq for e in read(table, ops=["forget"])] == [2, 4, 6]
    assert [e.seq for e in read(table, ops=("add",), since=115, limit=1)] == [3]
    assert [e.seq for e in read(table, limit=2)] == [1, 2]  # the first ``limit``, in seq order
    assert read(table, limit=0) == []
    assert read(DictTable()) == []
    for bad in ({"since": "yesterday"}, {"until": True}, {"ops": "add"}, {"ops": [1]}, {"limit": -1},
                {"limit": 1.0}):
        with pytest.raises(InvalidArgument):
            read(table, **bad)


def test_read_refuses_an_entry_that_does_not_decode() -> None:
    table = filled(2)
    table.data[key(2)] = b"\xc1 junk"
    with pytest.raises(CorruptShard, match="entry 2"):
        read(table)


@pytest.mark.parametrize("bad", [
    {"op": ""}, {"op": 5}, {"op": None}, {"time": math.nan}, {"time": -1.0}, {"time": True}, {"time": "now"},
    {"ids": "m1"}, {"ids": [1]}, {"ids": [""]}, {"ids": 7}, {"counts": {"a": True}}, {"counts": {"a": 1.5}},
    {"counts": {1: 2}}, {"counts": [("a", 1)]}, {"counts": {"a": 2**64}}, {"actor": 5}, {"actor": ""},
    {"session": b"s"}, {"reason": "\ud800"},
])
def test_bad_input_raises_and_writes_nothing(bad: dict) -> None:
    table = filled(2)
    before = dict(table.data)
    kw = {"op": "add", "time": 1.0} | bad
    with pytest.raises(InvalidArgument, match="audit entry"):
        append(table, **kw)
    assert table.data == before


# ---------------------------------------------------------------------------- the chain
def _edit_row(table: DictTable, seq: int, change) -> None:
    row = msgpack.unpackb(table.data[key(seq)], raw=False)
    change(row)
    table.data[key(seq)] = msgpack.packb(row, use_bin_type=True)


def _rehash(row: list) -> None:
    """Recompute an edited row's own hash, as a tamperer who knows the format would."""
    import hashlib

    row[10] = hashlib.sha256(row[9] + msgpack.packb(row[:9], use_bin_type=True)).digest()


def test_chain_detects_an_edited_entry() -> None:
    table = filled()
    _edit_row(table, 3, lambda row: row.__setitem__(3, "forget"))  # op add -> forget, hash kept
    assert check_chain(table.items()) == ["entry 3 was edited: its hash does not match its fields"]
    # re-hashing the edited entry moves the break to the next one
    _edit_row(table, 3, _rehash)
    assert check_chain(table.items()) == [
        "entry 4 does not follow entry 3: its prev hash differs (an entry was replaced)"]


def test_chain_detects_a_removed_middle_entry() -> None:
    table = filled()
    del table.data[key(3)]
    assert check_chain(table.items()) == ["entry 3 is missing (removed)"]
    del table.data[key(2)]
    assert check_chain(table.items()) == ["entries 2 to 3 are missing (removed)"]


def test_chain_detects_a_truncated_tail_and_a_bad_head() -> None:
    table = filled()
    del table.data[key(5)]
    assert check_chain(table.items()) == [
        "the head names entry 5 as the last, but the log ends at entry 4 (entries removed from the end)"]
    table = filled()
    table.data[b"h"] = msgpack.packb([5, bytes(32)])
    assert check_chain(table.items()) == ["the head's hash is not the hash of entry 5"]
    del table.data[b"h"]
    assert check_chain(table.items()) == ["the head is missing (the log has entries up to 5)"]
    table.data[b"h"] = b"\xc1"
    assert check_chain(table.items())[0].startswith("the head does not decode")


def test_chain_detects_swapped_entries() -> None:
    table = filled()
    table.data[key(2)], table.data[key(3)] = table.data[key(3)], table.data[key(2)]
    problems = check_chain(table.items())
    assert "the entry stored as entry 2 is entry 3 (moved or swapped)" in problems
    assert "the entry stored as entry 3 is entry 2 (moved or swapped)" in problems
    assert any(p.startswith("entry 2 does not follow entry 1") for p in problems)


def test_chain_reports_undecodable_entries_and_ignores_foreign_keys() -> None:
    table = filled(3)
    table.data[b"notes/1"] = b"not part of the log"
    assert check_chain(table.items()) == []
    table.data[key(2)] = b"\x93\x01"  # truncated msgpack
    assert [p.split(" (")[0] for p in check_chain(table.items())] == ["entry 2 does not decode"]
    table.data[b"e\x00"] = b"x"
    assert any("not an entry key" in p for p in check_chain(table.items()))


def test_append_after_damage_never_overwrites_an_entry() -> None:
    table = filled(3)
    table.data[b"h"] = msgpack.packb([1, bytes(32)], use_bin_type=True)  # head rewound
    third = table.data[key(3)]
    assert append(table, op="add", time=1.0).seq == 4
    assert table.data[key(3)] == third
    table = filled(3)
    del table.data[b"h"]
    e = append(table, op="add", time=1.0)
    assert (e.seq, e.prev) == (4, read(table)[2].hash)
    assert check_chain(table.items()) == []


# ---------------------------------------------------------------------------- in a shard
def test_lifecycle_ops_each_leave_their_entry(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with store(root) as s:
        t = s.create_tenant("acme")
        t.add(vecs(20), ids=[f"r{i}" for i in range(20)], documents=[f"SECRET text {i}" for i in range(20)])
        s.deactivate("acme")
        s.activate("acme")
        rep = s.export_tenant("acme", tmp_path / "acme.tvx")
        t.delete(ids=["r0", "r1"])
        s.compact("acme")
        entries = log_of(t)
        assert [(e.op, e.actor) for e in entries] == [("create", "system"), ("deactivate", "system"),
                                                       ("activate", "system"), ("export", "system"),
                                                       ("compact", "system")]
        assert entries[0].counts == {"dim": DIM}
        assert entries[3].counts == {"records": 20, "working_memory": 0, "audit_entries": rep.audit_entries}
        assert entries[4].counts == {"records": 18}
        assert rep.audit_entries == 4  # the file's log: create, deactivate, activate, and the head
        # import: the source's log as exported, then the import's own entry after it
        copy = s.import_tenant("copy", tmp_path / "acme.tvx")
        copied = log_of(copy)
        assert copied[:3] == entries[:3]
        assert (copied[3].op, copied[3].seq, copied[3].prev) == ("import", 4, entries[2].hash)
        assert copied[3].counts == {"records": 20, "working_memory": 0, "audit_entries": 4}
        assert s.verify("acme").ok
        assert s.verify("copy").ok
    # verify --fix that changed something: the entry names the records it removed
    env = open_env(root, "acme")
    with env.begin(write=True) as txn:
        txn.put(pack_label(5), seal(b"\xc1 not msgpack"), db=env.open_db(b"recs", txn=txn))
    env.close()
    with store(root) as s:
        r = s.verify("acme", fix=True)
        assert r.ok, r
        assert r.fixed, r
        last = log_of(s.tenant("acme"))[-1]
        assert (last.op, last.ids) == ("verify", ("r5",))
        assert last.counts == {"records_removed": 1, "id_entries_removed": 1, "index_rebuilt": 1}
        assert s.verify("acme").ok
        n = len(log_of(s.tenant("acme")))
        assert s.verify("acme", fix=True).ok  # nothing to repair: no entry
        assert len(log_of(s.tenant("acme"))) == n
    # no entry holds document text
    for tid in ("acme", "copy"):
        values = [v for _, v in raw_audit(root, tid)]
        assert values
        assert not any(b"SECRET" in v for v in values)


def _forget_then_abort(t: tenantvec.Tenant) -> None:
    with t.transaction() as tx:
        _audit.append(tx.side("audit"), op="forget", time=60.0, ids=("m1",))
        tx.delete(ids=["m1"])
        raise RuntimeError("abort")


def test_memory_layer_appends_in_a_transaction_and_reads_in_a_view(tmp_path: Path) -> None:
    with store(tmp_path / "s") as s:
        t = s.create_tenant("acme")
        with t.transaction() as tx:
            tx.add(vecs(1), ids=["m1"], documents=["Acme bills through PostgreSQL"])
            e = _audit.append(tx.side("audit"), op="remember", time=50.0, actor="agent", session="s1", ids=("m1",),
                              counts={"added": 1})
            with pytest.raises(InvalidArgument):  # refused before writing; the transaction goes on
                _audit.append(tx.side("audit"), op="", time=51.0)
        with pytest.raises(RuntimeError, match="abort"):  # rolled back: no entry either
            _forget_then_abort(t)
        with t.reading() as view:
            assert _audit.read(view.side("audit"), ops=["remember", "forget"]) == [e]
            assert [x.op for x in _audit.read(view.side("audit"))] == ["create", "remember"]
        assert e.seq == 2
        assert t.count() == 1
        assert s.verify("acme").ok


def test_an_older_shard_without_an_audit_table_has_an_empty_log(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with store(root) as s:
        s.create_tenant("acme").add(vecs(2), ids=["a", "b"])
    env = open_env(root, "acme")
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"audit", txn=txn), delete=True)
    env.close()
    with tenantvec.Store(root, readonly=True) as ro:
        assert log_of(ro.tenant("acme")) == []
        assert ro.verify("acme").ok
    with store(root) as s:  # a writer adds the table; its log starts with its first entry
        s.deactivate("acme")
        s.activate("acme")
        assert [e.seq for e in log_of(s.tenant("acme"))] == [1, 2]


# ---------------------------------------------------------------------------- tampering
@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A closed store whose tenant 'acme' has a log of 5 entries."""
    root = tmp_path / "s"
    with store(root) as s:
        t = s.create_tenant("acme")
        t.add(vecs(3), ids=["a", "b", "c"])
        for i in range(4):
            with t.transaction() as tx:
                _audit.append(tx.side("audit"), op="remember", time=10.0 + i, ids=(f"m{i}",))
    return root


def test_an_edited_entry_is_reported_by_verify_and_the_cli_and_never_rewritten(logged: Path) -> None:
    raw_audit(logged, "acme", rewrite_entry(3, lambda row: row[7].append(["extra", 1])))
    edited = raw_audit(logged, "acme")
    with tenantvec.Store(logged, readonly=True) as ro:
        r = ro.verify("acme")
        assert not r.ok
        assert r.problems == ("audit log: entry 3 was edited: its hash does not match its fields",)
    result = CliRunner().invoke(main, ["--root", str(logged), "verify", "acme"])
    assert result.exit_code == 1, result.output
    assert "audit log: entry 3 was edited" in result.output
    with store(logged) as s:
        r = s.verify("acme", fix=True)
        assert not r.ok
        assert r.fixed == ()
        assert r.problems == r.found
        assert any("cannot repair an audit log" in n for n in r.notes)
    assert raw_audit(logged, "acme") == edited  # the evidence stays as it was


def test_a_removed_entry_and_a_truncated_tail_are_reported(logged: Path) -> None:
    raw_audit(logged, "acme", lambda txn, db: txn.delete(key(2), db=db))
    with tenantvec.Store(logged, readonly=True) as ro:
        assert ro.verify("acme").problems == ("audit log: entry 2 is missing (removed)",)
    raw_audit(logged, "acme", lambda txn, db: txn.delete(key(5), db=db))
    with tenantvec.Store(logged, readonly=True) as ro:
        assert ro.verify("acme").problems == (
            "audit log: entry 2 is missing (removed)",
            "audit log: the head names entry 5 as the last, but the log ends at entry 4 (entries removed from the end)",
        )


def test_a_damaged_value_is_dropped_by_fix_and_its_gap_stays_reported(logged: Path) -> None:
    def flip(txn: lmdb.Transaction, db: object) -> None:
        raw = txn.get(key(4), db=db)
        txn.put(key(4), bytes([raw[0] ^ 0xFF]) + raw[1:], db=db)

    raw_audit(logged, "acme", flip)
    with store(logged) as s:
        r = s.verify("acme")
        assert any("1 audit entries fail their CRC32" in p for p in r.problems), r.problems
        assert "audit log: entry 4 is missing (removed)" in r.problems
        r = s.verify("acme", fix=True)
        assert r.problems == ("audit log: entry 4 is missing (removed)",), r
        assert [e.seq for e in log_of(s.tenant("acme"))] == [1, 2, 3, 5, 6]  # 6: the repair's own entry

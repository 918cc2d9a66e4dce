"""The transaction hook (``Tenant.transaction()``, ``tenantvec._engine.txn``): record writes
and side-table writes of one tenant commit together or not at all, reads inside see the
transaction's own writes, a failed step rolls back only itself, a full map is grown and
the transaction replayed, and a process killed inside a transaction leaves nothing of it.
"""

from __future__ import annotations

import hashlib
import io
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import lmdb
import msgpack
import numpy as np
import pytest

import tenantvec
from tenantvec import _audit
from tenantvec._engine.transfer import MAGIC, TRAILER
from tenantvec.errors import CorruptShard, DuplicateId, InvalidArgument, InvalidVector, ReadOnlyStore, TenantVecError

DIM = 8


def vecs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32) + 0.1


@pytest.fixture
def store(tmp_path: Path):
    with tenantvec.Store(tmp_path / "s", dim=DIM, metric="cosine", flush_interval=0) as s:
        yield s


def test_records_and_side_tables_commit_together(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    with t.transaction() as tx:
        ids = tx.add(vecs(3, 1), ids=["a", "b", "c"], documents=["x", "y", "z"], metadata=[{"n": i} for i in range(3)])
        tx.side("wm").put(b"sess-1/goal", b"ship it")
    assert ids == ["a", "b", "c"]
    assert t.count() == 3
    assert [r.document for r in t.get(ids=["c", "a"])] == ["z", "x"]
    assert t.query(vecs(3, 1)[1], k=1)[0].id == "b"
    with t.transaction() as tx:
        assert tx.side("wm").get(b"sess-1/goal") == b"ship it"


def test_an_exception_in_the_block_leaves_nothing(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    t.add(vecs(2, 1), ids=["keep1", "keep2"])

    def doomed() -> None:
        with t.transaction() as tx:
            tx.add(vecs(4, 2), ids=[f"n{i}" for i in range(4)])
            tx.delete(ids=["keep1"])
            tx.side("wm").put(b"k", b"v")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        doomed()
    assert t.count() == 2
    assert sorted(r.id for r in t.get(where={})) == ["keep1", "keep2"]
    assert {h.id for h in t.query(vecs(4, 2)[0], k=10)} == {"keep1", "keep2"}
    with t.transaction() as tx:
        assert tx.side("wm").get(b"k") is None
    # the tenant takes writes again afterwards
    t.add(vecs(1, 3), ids=["after"])
    assert t.count() == 3


def test_reads_inside_see_the_transactions_own_writes(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    t.add(vecs(1, 1), ids=["old"], documents=["before"])
    with t.transaction() as tx:
        tx.upsert(vecs(1, 2), ids=["old"], documents=["after"])
        tx.add(vecs(1, 3), ids=["new"], documents=["fresh"])
        assert [(r.id, r.document) for r in tx.get(["new", "old", "missing"])] == [("new", "fresh"), ("old", "after")]
        wm = tx.side("wm")
        for key in (b"s1/b", b"s1/a", b"s2/a"):
            wm.put(key, key.upper())
        assert wm.items(b"s1/") == [(b"s1/a", b"S1/A"), (b"s1/b", b"S1/B")]
        assert wm.delete(b"s1/a") is True
        assert wm.delete(b"s1/a") is False
        assert wm.items(b"s1/") == [(b"s1/b", b"S1/B")]
        # the Tenant handle outside the transaction still sees the committed state
    assert [r.document for r in t.get(ids=["old"])] == ["after"]


def test_upsert_of_an_id_added_in_the_same_transaction(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    v1, v2 = vecs(2, 7)
    with t.transaction() as tx:
        tx.add(v1[None], ids=["x"], metadata=[{"v": 1}])
        tx.upsert(v2[None], ids=["x"], metadata=[{"v": 2}])
    assert t.count() == 1
    (rec,) = t.get(ids=["x"], include_vectors=True)
    assert rec.metadata == {"v": 2}
    np.testing.assert_array_equal(rec.vector, v2)
    hits = t.query(v2, k=5)
    assert [h.id for h in hits] == ["x"]
    assert hits[0].distance == pytest.approx(0.0, abs=1e-5)


def test_a_failed_step_rolls_back_only_itself(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    t.add(vecs(1, 1), ids=["taken"])
    with t.transaction() as tx:
        tx.add(vecs(1, 2), ids=["first"])
        with pytest.raises(DuplicateId, match="taken"):
            tx.add(vecs(2, 3), ids=["fresh", "taken"])  # nothing of this batch is written
        with pytest.raises(InvalidVector):
            tx.add(np.full((1, DIM), np.nan, np.float32), ids=["nan"])
        tx.add(vecs(1, 4), ids=["second"])
        assert [r.id for r in tx.get(["fresh", "first", "second"])] == ["first", "second"]
    assert sorted(r.id for r in t.get(where={})) == ["first", "second", "taken"]
    assert t.count() == 3
    assert {h.id for h in t.query(vecs(1, 3)[0], k=10)} == {"first", "second", "taken"}


def test_crossing_the_hnsw_threshold_inside_a_transaction(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM, metric="l2", hnsw_threshold=50, flush_interval=0) as store:
        t = store.create_tenant("acme")
        data = vecs(120, 5)
        with t.transaction() as tx:
            tx.add(data[:40], ids=[f"r{i}" for i in range(40)])
            tx.add(data[40:80], ids=[f"r{i}" for i in range(40, 80)])  # crosses 50 here
            tx.delete(ids=["r0", "r41"])
            tx.upsert(data[80:120], ids=[f"r{i}" for i in range(80, 120)])
        info = t.info()
        assert info.count == 118
        assert info.index_kind == "hnsw"
        for i in (1, 40, 79, 80, 119):
            assert t.query(data[i], k=1)[0].id == f"r{i}"
        assert not {"r0", "r41"} & {h.id for h in t.query(data[0], k=118)}
    # a fresh open (snapshot + op log, or a rebuild) finds the same records
    with tenantvec.Store(tmp_path / "s") as store:
        t = store.tenant("acme")
        assert t.count() == 118
        assert t.query(data[79], k=1)[0].id == "r79"
        assert store.verify("acme").ok


def test_a_full_map_is_grown_and_the_transaction_replayed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="tenantvec")
    store = tenantvec.Store(tmp_path / "s", dim=DIM, metric="l2", flush_interval=0, hnsw_threshold=100_000)
    object.__setattr__(store.options, "map_size", 256 << 10)
    with store:
        t = store.create_tenant("acme")
        with t.transaction() as tx:
            for b in range(12):
                tx.add(vecs(100, b), ids=[f"b{b}-{i}" for i in range(100)], documents=["d" * 300] * 100)
                tx.side("wm").put(f"k{b}".encode(), b"v" * 2000)
        assert t.count() == 1200
        assert "growing LMDB map" in caplog.text  # the transaction was replayed at least once
        with t.transaction() as tx:
            assert len(tx.side("wm").items()) == 12
        assert t.query(vecs(100, 11)[99], k=1)[0].id == "b11-99"
    with tenantvec.Store(tmp_path / "s") as store:
        assert store.tenant("acme").count() == 1200


def test_same_thread_calls_inside_a_transaction_raise_instead_of_deadlocking(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    with t.transaction() as tx:
        tx.add(vecs(1, 1), ids=["a"])
        with pytest.raises(TenantVecError, match="holds a transaction"):
            t.add(vecs(1, 2), ids=["b"])
        with pytest.raises(TenantVecError, match="holds a transaction"), t.transaction():
            pass
        for read in (lambda: t.query(vecs(1, 1)[0]), lambda: t.get(ids=["a"]), lambda: t.count()):
            with pytest.raises(TenantVecError, match="holds a transaction"):
                read()
    assert t.count() == 1


def test_other_threads_wait_for_the_commit_and_then_see_all_of_it(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    seen: list[int] = []
    entered = threading.Event()

    def reader() -> None:
        entered.set()
        seen.append(t.count())

    with t.transaction() as tx:
        tx.add(vecs(5, 1), ids=[f"a{i}" for i in range(5)])
        th = threading.Thread(target=reader)
        th.start()
        entered.wait(5)
        time.sleep(0.2)
        assert seen == []  # blocked behind the transaction's write lock
        tx.add(vecs(5, 2), ids=[f"b{i}" for i in range(5)])
    th.join(10)
    assert seen == [10]


def test_bad_side_table_names_keys_and_values(store: tenantvec.Store) -> None:
    t = store.create_tenant("acme")
    with t.transaction() as tx:
        with pytest.raises(InvalidArgument, match="'nope'"):
            tx.side("nope")
        wm = tx.side("wm")
        for key in ("str", b"", b"k" * 512, None):
            with pytest.raises(InvalidArgument):
                wm.put(key, b"v")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            wm.put(b"k", "not bytes")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            wm.items("s1/")  # type: ignore[arg-type]
        wm.put(b"k" * 511, b"")
        assert wm.get(b"k" * 511) == b""


def test_read_only_stores_refuse_transactions(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        store.create_tenant("acme").add(vecs(1, 1), ids=["a"])
    with tenantvec.Store(tmp_path / "s", readonly=True) as ro, pytest.raises(ReadOnlyStore), ro.tenant("acme").transaction():
        pass


def test_a_damaged_side_value_is_never_served(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        with t.transaction() as tx:
            tx.side("wm").put(b"k", b"precious")
        tdir = next((tmp_path / "s" / "tenants").iterdir())
    env = lmdb.open(str(tdir), max_dbs=16)
    with env.begin(write=True) as txn:
        db = env.open_db(b"wm", txn=txn)
        raw = bytearray(txn.get(b"k", db=db))
        raw[0] ^= 0xFF
        txn.put(b"k", bytes(raw), db=db)
    env.close()
    with tenantvec.Store(tmp_path / "s") as store:
        with store.tenant("acme").transaction() as tx:
            with pytest.raises(CorruptShard, match="acme"):
                tx.side("wm").get(b"k")
            with pytest.raises(CorruptShard):
                tx.side("wm").items()
            # store-level calls on the tenant would wait for this thread's own transaction
            for call in (lambda: store.verify("acme"), lambda: store.compact("acme"), lambda: store.drop_tenant("acme"),
                         lambda: store.tenant("acme").compact()):
                with pytest.raises(TenantVecError, match="holds a transaction"):
                    call()
        report = store.verify("acme")
        assert not report.ok
        assert any("1 wm entries fail their CRC32" in p for p in report.problems)
        fixed = store.verify("acme", fix=True)
        assert any("removed 1 damaged side table entries" in r for r in fixed.fixed)
        assert store.verify("acme").ok
        with store.tenant("acme").transaction() as tx:
            assert tx.side("wm").items() == []


def test_side_tables_survive_reopen_compaction_and_export(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM, flush_interval=0) as store:
        t = store.create_tenant("acme")
        t.add(vecs(50, 1), ids=[f"r{i}" for i in range(50)])
        with t.transaction() as tx:
            tx.side("wm").put(b"a", b"1")
            tx.side("wm").put(b"b", b"2")
        t.delete(ids=[f"r{i}" for i in range(40)])
        store.compact("acme")
        store.export_tenant("acme", tmp_path / "acme.tvx")
        store.import_tenant("copy", tmp_path / "acme.tvx")
    with tenantvec.Store(tmp_path / "s") as store:
        for tid in ("acme", "copy"):
            with store.tenant(tid).transaction() as tx:
                assert tx.side("wm").items() == [(b"a", b"1"), (b"b", b"2")]
            assert store.tenant(tid).count() == 10


CHILD = textwrap.dedent("""
    import sys, numpy as np, tenantvec
    root, commit = sys.argv[1], sys.argv[2] == "commit"
    with tenantvec.Store(root, dim=8, metric="l2", hnsw_threshold=20, flush_interval=0) as store:
        t = store.tenant("acme", create=True)
        t.add(np.ones((1, 8), np.float32), ids=["base"])
        rng = np.random.default_rng(0)
        with t.transaction() as tx:
            for b in range(5):
                tx.add(rng.random((10, 8), dtype=np.float32), ids=[f"b{b}-{i}" for i in range(10)])
                tx.side("wm").put(f"k{b}".encode(), b"v")
            if not commit:
                print("inside", flush=True)
                sys.stdin.read()  # killed here, before the commit
        print("committed", flush=True)
        sys.stdin.read()  # killed here, after the commit
""")


@pytest.mark.parametrize("when", ["inside", "commit"])
def test_sigkill_inside_or_after_a_transaction(tmp_path: Path, when: str, subprocess_env: dict[str, str]) -> None:
    root = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), when], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=subprocess_env, text=True)
    try:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line == ("inside" if when == "inside" else "committed")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with tenantvec.Store(root) as store:
        t = store.tenant("acme")
        want = 1 if when == "inside" else 51
        assert t.count() == want
        assert len(t.query(np.ones(8, np.float32), k=100)) == want
        with t.transaction() as tx:
            assert len(tx.side("wm").items()) == (0 if when == "inside" else 5)
        assert store.verify("acme").ok


def _drop_audit_table(tdir: Path) -> None:
    """Make the shard look as it did before the audit side table existed."""
    env = lmdb.open(str(tdir), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"audit", txn=txn), delete=True)
    env.close()


def test_a_shard_from_before_the_audit_table(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        store.create_tenant("acme").add(vecs(3, 1), ids=["a", "b", "c"])
    tdir = next((tmp_path / "s" / "tenants").iterdir())
    _drop_audit_table(tdir)
    # a read-only opener serves it (no audit table: nothing to show) and exports it
    with tenantvec.Store(tmp_path / "s", readonly=True) as ro:
        assert ro.tenant("acme").count() == 3
        assert ro.export_tenant("acme", tmp_path / "old.tvx").audit_entries == 0
        assert ro.verify("acme").ok
    # the first writer adds the table
    with tenantvec.Store(tmp_path / "s") as store:
        t = store.tenant("acme")
        with t.transaction() as tx:
            tx.side("audit").put(b"1", b"first")
        store.compact("acme")
        with t.transaction() as tx:
            assert tx.side("audit").items(b"1") == [(b"1", b"first")]
            assert [e.op for e in _audit.read(tx.side("audit"))] == ["compact"]  # no create entry: older
        store.import_tenant("copy", tmp_path / "old.tvx")
        assert store.tenant("copy").count() == 3


def _rewrite_export(src: Path, dst: Path, edit) -> None:
    """Re-pack an export file after ``edit(header, items)`` changed it (new checksum)."""
    body = src.read_bytes()[: -len(TRAILER) - 32]
    items = list(msgpack.Unpacker(io.BytesIO(body[len(MAGIC):]), raw=False, strict_map_key=False))
    header, rest = items[0], items[1:]
    header, rest = edit(header, rest)
    out = MAGIC + b"".join(msgpack.packb(x, use_bin_type=True) for x in [header, *rest])
    dst.write_bytes(out + TRAILER + hashlib.sha256(out).digest())


def test_import_reads_format_1_exports_and_refuses_damaged_side_entries(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add(vecs(2, 1), ids=["a", "b"])
        with t.transaction() as tx:
            tx.side("wm").put(b"w", b"scratch")
            tx.side("audit").put(b"1", b"entry")
        rep = store.export_tenant("acme", tmp_path / "v2.tvx")
        assert (rep.working_memory, rep.audit_entries) == (1, 3)  # b"1", the create entry, the head

        def as_format_1(header: dict, rest: list) -> tuple[dict, list]:
            n = header["audit_count"]
            header = {k: v for k, v in header.items() if k != "audit_count"} | {"format": 1}
            return header, rest[:-n]  # records, then the one working memory entry

        _rewrite_export(tmp_path / "v2.tvx", tmp_path / "v1.tvx", as_format_1)
        assert store.import_tenant("old", tmp_path / "v1.tvx").count() == 2
        with store.tenant("old").transaction() as tx:
            assert tx.side("wm").items() == [(b"w", b"scratch")]
            assert [e.op for e in _audit.read(tx.side("audit"))] == ["import"]

        def damage_audit(header: dict, rest: list) -> tuple[dict, list]:
            key, value = rest[-1]
            return header, [*rest[:-1], [key, bytes([value[0] ^ 1]) + value[1:]]]

        _rewrite_export(tmp_path / "v2.tvx", tmp_path / "bad.tvx", damage_audit)
        with pytest.raises(tenantvec.errors.CorruptExport, match="audit entry"):
            store.import_tenant("bad", tmp_path / "bad.tvx")
        assert not store.has_tenant("bad")


def test_a_read_view_is_consistent_and_sees_side_tables(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        with t.transaction() as tx:
            tx.add(vecs(2, 1), ids=["a", "b"], documents=["A", "B"])
            tx.side("wm").put(b"s1/k", b"v1")
        with t.reading() as view:
            assert [r.document for r in view.get(["b", "zz", "a"])] == ["B", "A"]
            assert view.side("wm").get(b"s1/k") == b"v1"
            assert view.side("wm").items(b"s1/") == [(b"s1/k", b"v1")]
            assert [e.op for e in _audit.read(view.side("audit"))] == ["create"]
            with pytest.raises(InvalidArgument, match="'nope'"):
                view.side("nope")
            with pytest.raises(TenantVecError, match="holds a read view"), t.transaction():
                pass  # the write lock would wait for this thread's own view
            with pytest.raises(TenantVecError, match="holds a read view"):
                t.count()  # a nested read could wait behind a waiting writer
        with t.transaction() as tx:
            with pytest.raises(TenantVecError, match="holds a transaction"), t.reading():
                pass
            tx.side("wm").put(b"s1/k", b"v2")
        with t.reading() as view:
            assert view.side("wm").get(b"s1/k") == b"v2"
    tdir = next((tmp_path / "s" / "tenants").iterdir())
    _drop_audit_table(tdir)
    with tenantvec.Store(tmp_path / "s", readonly=True) as ro, ro.tenant("acme").reading() as view:
        assert view.side("wm").get(b"s1/k") == b"v2"
        assert view.side("audit").items() == []  # an older shard opened read-only: empty

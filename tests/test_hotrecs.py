"""The decoded records of a hot shard (tenantvec._engine.hotrecs): put there by writes,
read from LMDB by the queries that return records not in memory, never a source of wrong
or missing hits, and counted."""

from __future__ import annotations

import threading
import time
import tracemalloc
import uuid

import numpy as np
import pytest

import tenantvec
from tenantvec._engine import hotrecs as _hotrecs
from tenantvec._engine.capacity import hot_records_bytes
from tenantvec._engine.checksum import seal
from tenantvec._engine.hotrecs import decode
from tenantvec._engine.layout import pack_label, packb, unpack_label

DIM = 4


def lmdb_recs(shard) -> dict[int, bytes]:
    with shard._env.begin(db=shard.databases.recs) as txn:
        return {unpack_label(k): bytes(v) for k, v in txn.cursor()}


def check_kept(shard, *, every: bool = False) -> None:
    """Each kept entry is the decoded LMDB record (all of them with ``every``); the count
    is the sum of the entries' sizes."""
    hot = shard._hot
    want = lmdb_recs(shard)
    assert hot._recs.keys() <= want.keys()
    if every:
        assert hot._recs.keys() == want.keys()
    for label, item in hot._recs.items():
        assert item[:3] == decode(want[label])[:3], label
        assert item[3] == decode(want[label])[3], label
    assert hot.nbytes == sum(item[3] for item in hot._recs.values())


class CountingBegin:
    """A shard's read_txn that counts the transactions begun on the records table."""

    def __init__(self, shard) -> None:
        self.shard, self.begun = shard, 0

    def __call__(self, **kw):
        self.begun += 1
        return self.shard.read_txn(**kw)


@pytest.mark.parametrize("threshold", [2048, 8])
def test_writes_put_their_records_in_memory_and_queries_read_none(tmp_path, threshold, monkeypatch):
    rng = np.random.default_rng(5)
    with tenantvec.Store(tmp_path / "s", dim=DIM, hnsw_threshold=threshold) as store:
        t = store.create_tenant("t")
        vecs = rng.normal(size=(10, DIM)).astype(np.float32)
        t.add(vecs, ids=[f"r{i}" for i in range(10)], documents=[f"doc {i}" for i in range(10)],
              metadata=[{"i": i, "tags": ["x"] * (i % 2)} for i in range(10)])
        t.upsert(vecs[:1] * 2, ids=["r0"], documents=["replaced"])
        t.add(vecs[1:3], ids=["n1", "n2"], documents=["new 1", "new 2"])
        t.delete(ids=["r9"])
        shard = store._manager.pin("t")
        try:
            check_kept(shard, every=True)
            calls: list[int] = []
            real = _hotrecs.HotRecords._fetch
            monkeypatch.setattr(_hotrecs.HotRecords, "_fetch", lambda *a: calls.append(1) or real(*a))
            hits = {h.id: (h.document, h.metadata) for h in t.query(vecs[0], k=20)}
            assert calls == []  # every hit was in memory
            assert hits == {r.id: (r.document, r.metadata) for r in t.get()}
            assert hits["r0"] == ("replaced", {})
            assert store.stats().memory_bytes == shard.memory_bytes == shard.accounted
        finally:
            store._manager.unpin(shard)


@pytest.mark.parametrize("threshold", [2048, 8])
def test_a_cold_load_reads_only_the_records_queries_return(tmp_path, threshold):
    rng = np.random.default_rng(6)
    vecs = rng.normal(size=(40, DIM)).astype(np.float32)
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM, hnsw_threshold=threshold) as store:
        store.create_tenant("t").add(vecs, ids=[f"r{i}" for i in range(40)],
                                     documents=[f"doc {i}" for i in range(40)])
    with tenantvec.Store(root) as store:
        t = store.tenant("t")
        shard = store._manager.pin("t")
        try:
            assert len(shard._hot) == 0
            assert shard._hot.nbytes == 0
            begin = CountingBegin(shard)
            shard._hot.hits(begin, shard.databases.recs, [3, 4, 5], [0.0, 0.1, 0.2])
            assert begin.begun == 1  # one read transaction for all missing records
            assert sorted(shard._hot._recs) == [3, 4, 5]
            hits = t.query(vecs[7], k=5)
            assert len(shard._hot) <= 8
            assert hits[0].id == "r7"
            check_kept(shard)
            before = shard.memory_bytes
            t.query(vecs[7], k=5)  # the same hits: nothing more is read
            assert shard.memory_bytes == before
            t.query(vecs, k=40)
            check_kept(shard, every=True)
            assert store.stats().memory_bytes == shard.memory_bytes > before
        finally:
            store._manager.unpin(shard)


def test_reload_and_rebuild_start_a_new_copy(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("t")
        t.add(rng.normal(size=(9, DIM)).astype(np.float32), ids=[f"r{i}" for i in range(9)])
        shard = store._manager.pin("t")
        try:
            check_kept(shard, every=True)
            with shard._env.begin() as txn:
                shard._rebuild_index(txn)
            assert len(shard._hot) == 0
            assert shard._hot.nbytes == 0
            assert len(t.query(np.ones(DIM, np.float32), k=9)) == 9
            check_kept(shard, every=True)
        finally:
            store._manager.unpin(shard)
        store._manager.evict("t")
        assert len(t.query(np.ones(DIM, np.float32), k=9)) == 9  # reloaded: a fresh copy


def test_missing_record_is_skipped_not_raised(tmp_path):
    """A read-only view can see an index label whose record the writer has deleted since."""
    hot = _hotrecs.HotRecords("t")
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("t")
        t.add(np.eye(DIM, dtype=np.float32), ids=list("abcd"))
        shard = store._manager.pin("t")
        try:
            hits = hot.hits(shard.read_txn, shard.databases.recs, [0, 99, 2], [0.0, 0.1, 0.2])
            assert [h.id for h in hits] == ["a", "c"]
            assert sorted(hot._recs) == [0, 2]
            hot.forget([0, 1, 1, 42])
            assert sorted(hot._recs) == [2]
            assert hot.nbytes == hot._recs[2][3]
        finally:
            store._manager.unpin(shard)


def test_a_damaged_record_raises_and_is_not_kept(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("t")
        t.add(np.eye(DIM, dtype=np.float32), ids=list("abcd"), documents=list("wxyz"))
        shard = store._manager.pin("t")
        try:
            with shard._env.begin(write=True, db=shard.databases.recs) as txn:
                raw = bytearray(txn.get(pack_label(1)))
                raw[3] ^= 0xFF
                txn.put(pack_label(1), bytes(raw))
            hot = _hotrecs.HotRecords("t")
            with pytest.raises(tenantvec.CorruptShard, match="'t'"):
                hot.hits(shard.read_txn, shard.databases.recs, [0, 1], [0.0, 0.1])
            assert len(hot) == 0
            assert hot.nbytes == 0
        finally:
            store._manager.unpin(shard)


def test_released_records_are_read_every_time_and_never_kept(tmp_path):
    rng = np.random.default_rng(11)
    vecs = rng.normal(size=(12, DIM)).astype(np.float32)
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("t")
        t.add(vecs, ids=[f"r{i}" for i in range(12)], documents=[f"doc {i}" for i in range(12)])
        shard = store._manager.pin("t")
        try:
            shard._hot.release()
            assert len(shard._hot) == 0
            assert shard._hot.nbytes == 0
            t.add(vecs[:2], ids=["x", "y"], documents=["dx", "dy"])
            t.upsert(vecs[2:3], ids=["r2"], documents=["new"])
            hits = {h.id: h.document for h in t.query(vecs[2], k=14)}
            assert hits == {r.id: r.document for r in t.get()}
            assert hits["r2"] == "new"
            assert len(shard._hot) == 0
            assert shard._hot.nbytes == 0
        finally:
            store._manager.unpin(shard)


def test_entries_share_strings_and_keep_metadata_private():
    # as stored: msgpack + CRC32
    flat = seal(packb(["a", {"kind": "fact", "n": 1, "w": 0.5, "ok": True, "raw": b"x", "none": None}, "doc", 1.0, 1.0]))
    nested = seal(packb(["b", {"tags": ["x"], "n": 2}, None, 1.0, 1.0]))
    assert decode(flat)[:2] == ("a", "doc")
    assert isinstance(decode(flat)[2], dict)
    assert decode(nested)[:2] == ("b", None)
    assert isinstance(decode(nested)[2], bytes)
    hot = _hotrecs.HotRecords("t")
    hot.remember([0, 1], [["a", {"kind": "fact", "n": 1, "w": 0.5, "ok": True, "raw": b"x", "none": None}, "doc"],
                          ["b", {"tags": ["x"], "n": 2}, None]], [flat, nested])
    assert hot._recs == {0: decode(flat), 1: decode(nested)}  # a write keeps what a read would decode
    hits = hot.hits(None, None, [1, 0], [0.1, 0.2])  # type: ignore[arg-type]  (nothing to read)
    assert [(h.id, h.distance, h.document) for h in hits] == [("b", 0.1, None), ("a", 0.2, "doc")]
    assert hits[0].metadata == {"tags": ["x"], "n": 2}
    assert hits[1].metadata["kind"] == "fact"
    hits[0].metadata["tags"].append("y")
    hits[1].metadata["kind"] = "changed"
    again = hot.hits(None, None, [1, 0], [0.1, 0.2])  # type: ignore[arg-type]
    assert again[0].metadata == {"tags": ["x"], "n": 2}
    assert again[1].metadata["kind"] == "fact"
    assert again[1].document is hits[1].document  # shared, immutable
    assert hot.nbytes == decode(flat)[3] + decode(nested)[3]


SHAPES = {
    "flat": lambda i: [f"{i:08d}", {"package": "numpy", "row": i}, "some paragraph of text " * 5, 1.0, 1.0],
    "long": lambda i: [uuid.uuid4().hex, {"kind": "semantic", "row": i}, "a paragraph of a docstring " * 40, 1.0, 1.0],
    "bare": lambda _i: [uuid.uuid4().hex, {}, None, 1.0, 1.0],
    "nested": lambda i: [str(i), {"tags": ["a", "b"], "n": i}, "doc", 1.0, 1.0],
    "latin": lambda i: [str(i), {"city": "Zürich"}, "déjà vu, café crème " * 5, 1.0, 1.0],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_counted_bytes_track_resident_memory(shape):
    """What the budget counts, by arithmetic on the stored sizes, is close to what the
    decoded records really hold (tracemalloc). Metadata keys are counted per record, though
    msgpack interns them and records share them, so counts run a little high."""
    n = 4000
    packed = [seal(packb(SHAPES[shape](i))) for i in range(n)]
    hot = _hotrecs.HotRecords("t")
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i, p in enumerate(packed):
            hot._recs[i] = decode(bytes(bytearray(p)))  # fresh objects, as LMDB returns
        resident = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    counted = sum(item[3] for item in hot._recs.values())
    assert 0.85 * resident <= counted <= 1.3 * resident, (counted / n, resident / n)


@pytest.mark.parametrize("fields", range(7))
def test_plan_estimate_matches_counted_entries(fields):
    """``tenantvec plan`` estimates the decoded records from msgpack sizes alone."""
    meta = {f"field{j}": (j * 1000 if j % 2 else f"value-{j}") for j in range(fields)}
    packed = [seal(packb([f"mem-{i:08d}", meta, f"user said something memorable number {i}.", 1.7e9, 1.7e9]))
              for i in range(100)]
    counted = sum(decode(p)[3] for p in packed)
    estimate = hot_records_bytes(100, round(np.mean([len(p) - 4 for p in packed])), fields)  # msgpack bytes
    assert abs(estimate - counted) <= 0.06 * counted, (estimate, counted)


def test_concurrent_queries_decode_each_record_once_and_count_it_once(tmp_path, monkeypatch):
    """Readers read and decode records side by side (under the read lock); each record is
    kept and counted once, whichever reader got there first, and every hit is right."""
    decode_slowly = _hotrecs.decode

    def slow(raw: bytes):  # yield the GIL mid-decode, so that readers race for a record
        time.sleep(0.0002)
        return decode_slowly(raw)

    monkeypatch.setattr(_hotrecs, "decode", slow)
    rng = np.random.default_rng(9)
    n = 60
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        store.create_tenant("t").add(vecs, ids=[f"r{i}" for i in range(n)], documents=[f"doc {i}" for i in range(n)],
                                     metadata=[{"i": i} for i in range(n)])
    with tenantvec.Store(root) as store:  # loaded cold: the queries read every record
        t = store.tenant("t")
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def reader(seed: int) -> None:
            r = np.random.default_rng(seed)
            try:
                start.wait()
                for _ in range(150):
                    for h in t.query(vecs[r.integers(n)], k=int(r.integers(1, 12))):
                        assert h.document == f"doc {h.id[1:]}"
                        assert h.metadata == {"i": int(h.id[1:])}
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors[0]
        shard = store._manager.pin("t")
        try:
            assert len(shard._hot) > n // 2
            check_kept(shard)
            assert store.stats().memory_bytes == shard.memory_bytes
        finally:
            store._manager.unpin(shard)


def test_read_modify_write_of_non_ascii_hits_keeps_the_count_exact(tmp_path):
    """An entry is uncounted by what it was counted (its stored size), so a note edited in
    place many times never drifts the count (it once went negative, when CPython's cached
    UTF-8 copies made sys.getsizeof report more on the way out than on the way in)."""
    vec = np.ones(DIM, dtype=np.float32)
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("t")
        t.add(vec, ids=["note"], documents=["メモ déjà vu " * 100], metadata=[{"city": "Zürich"}])
        for _ in range(20):  # a note edited in place: read it, write it back
            h = t.query(vec, k=1)[0]
            t.upsert(vec, ids=[h.id], documents=[h.document], metadata=[h.metadata])
        t.query(vec, k=1)
        shard = store._manager.pin("t")
        try:
            check_kept(shard, every=True)
            assert shard._hot.nbytes > 0
            assert store.stats().memory_bytes == shard.memory_bytes
        finally:
            store._manager.unpin(shard)


def test_records_read_are_counted_even_when_building_the_hits_fails(tmp_path, monkeypatch):
    vecs = np.random.default_rng(10).normal(size=(20, DIM)).astype(np.float32)
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        store.create_tenant("t").add(vecs, ids=[f"r{i}" for i in range(20)])
    with tenantvec.Store(root) as store:
        t = store.tenant("t")
        t.query(vecs[0], k=3)
        with monkeypatch.context() as m:
            m.setattr(_hotrecs, "_set_hit", (None,) * 4)  # building a hit fails after the read
            with pytest.raises(TypeError):
                t.query(vecs[5], k=20)
        shard = store._manager.pin("t")
        try:
            assert len(shard._hot) == 20
            check_kept(shard)
            assert store.stats().memory_bytes == shard.memory_bytes
        finally:
            store._manager.unpin(shard)
        assert [h.id for h in t.query(vecs[0], k=1)] == ["r0"]

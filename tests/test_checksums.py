"""Per-record CRC32 checksums (shard format 2): a flipped bit in a stored record, vector or
id map entry is never served (``CorruptShard``), ``verify`` names it, ``verify(fix=True)``
drops what it cannot trust and the tenant serves the rest; format-1 shards are upgraded by
a writer and refused by read-only openers until then."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenantvec
from tenantvec._engine.checksum import CRC_BYTES, intact
from tenantvec._engine.layout import pack_label, packb, unpackb
from tenantvec._ids import tenant_dir_name

DIM = 8
N = 20
HNSW = tenantvec.HnswParams(m=8, ef_construction=64, ef=64)
SEALED_DBS = (b"ids", b"recs", b"vecs")


def _vectors(n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _fill(t: tenantvec.Tenant, n: int = N, prefix: str = "u") -> None:
    t.add(_vectors(n), ids=[f"{prefix}{i}" for i in range(n)], documents=[f"document {i}" for i in range(n)],
          metadata=[{"topic": f"t{i % 3}", "n": i} for i in range(n)])


def _raw_env(root: Path, tid: str) -> lmdb.Environment:
    return lmdb.open(str(root / "tenants" / tenant_dir_name(tid)), max_dbs=8, create=False, map_size=1 << 30)


def _flip(root: Path, tid: str, db: bytes, key: bytes, offset: int, bit: int) -> None:
    """Flip one bit of a stored value, behind tenantvec's back (the store is closed)."""
    env = _raw_env(root, tid)
    try:
        with env.begin(write=True) as txn:
            handle = env.open_db(db, txn=txn)
            raw = bytearray(txn.get(key, db=handle))
            raw[offset] ^= 1 << bit
            txn.put(key, bytes(raw), db=handle)
    finally:
        env.close()


def _stored(root: Path, tid: str, db: bytes, key: bytes) -> bytes:
    env = _raw_env(root, tid)
    try:
        with env.begin() as txn:
            return bytes(txn.get(key, db=env.open_db(db, txn=txn)))
    finally:
        env.close()


def _all_intact(root: Path, tid: str) -> int:
    """Asserts every value of the sealed databases passes its CRC32; returns how many."""
    env = _raw_env(root, tid)
    n = 0
    try:
        with env.begin() as txn:
            for name in SEALED_DBS:
                for key, raw in txn.cursor(db=env.open_db(name, txn=txn)):
                    assert intact(raw), (name, key)
                    n += 1
    finally:
        env.close()
    return n


def _field_offset(rec_value: bytes, field: int) -> int:
    """Offset of the last byte of field ``field`` (0 id, 1 metadata, 2 document, 3 created,
    4 updated) in a stored record: msgpack [id, metadata, document, created, updated] + CRC32."""
    rec = unpackb(rec_value[:-CRC_BYTES])
    assert packb(rec) == rec_value[:-CRC_BYTES]
    return 1 + sum(len(packb(x)) for x in rec[: field + 1]) - 1  # 1: the fixarray header


def _check_others_intact(t: tenantvec.Tenant, gone: set[str]) -> None:
    vecs = _vectors()
    want = {f"u{i}" for i in range(N)} - gone
    recs = {r.id: r for r in t.get(include_vectors=True)}
    assert set(recs) == want
    for rid, r in recs.items():
        i = int(rid[1:])
        assert r.document == f"document {i}"
        assert r.metadata == {"topic": f"t{i % 3}", "n": i}
        np.testing.assert_array_equal(r.vector, vecs[i])
        assert r.created_at == r.updated_at > 0
    for rid in want:
        assert t.query(vecs[int(rid[1:])], k=1)[0].id == rid


@pytest.fixture
def exact_store(tmp_path: Path) -> Path:
    """A closed store with tenant 'e' (20 records, exact index) and tenant 'other'."""
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        _fill(store.create_tenant("e"))
        _fill(store.create_tenant("other"), 5, prefix="o")
    return root


# ---------------------------------------------------------------------------- one bit per field
RECORD_FIELDS = {"id": 0, "metadata value": 1, "document": 2, "created_at": 3, "updated_at": 4}


@pytest.mark.parametrize("field", sorted(RECORD_FIELDS))
def test_a_flipped_bit_in_a_record_field_is_never_served(exact_store: Path, field: str) -> None:
    root, lb = exact_store, pack_label(13)
    value = _stored(root, "e", b"recs", lb)
    _flip(root, "e", b"recs", lb, _field_offset(value, RECORD_FIELDS[field]), 1)
    vecs = _vectors()
    with tenantvec.Store(root, readonly=True) as store:
        r = store.verify("e")
        assert not r.ok, r
        assert r.problems == ("record label 13 (id 'u13') fails its checksum "
                              "(record: id, metadata, document, timestamps)",), r
        t = store.tenant("e")
        with pytest.raises(tenantvec.CorruptShard, match=r"tenant 'e': record 'u13' \(label 13\) fails its checksum "
                                                         r"\(record: id, metadata, document, timestamps\)"):
            t.get(["u13"])
        with pytest.raises(tenantvec.CorruptShard, match="record label 13 fails its checksum"):
            t.query(vecs[13], k=1)  # the hit is the damaged record
        with pytest.raises(tenantvec.CorruptShard, match="label 13"):
            t.get(where={"topic": "t1"})
        assert [r.id for r in t.get(["u12", "u14"])] == ["u12", "u14"]  # the rest is served
        assert t.query(vecs[12], k=1)[0].id == "u12"
        assert store.verify("other").ok
        assert store.tenant("other").count() == 5
    with tenantvec.Store(root) as store:
        r = store.verify("e", fix=True)
        assert r.ok, r
        assert r.found == ("record label 13 (id 'u13') fails its checksum "
                           "(record: id, metadata, document, timestamps)",), r
        assert "removed 1 unusable records (labels 13 (id 'u13'))" in r.fixed, r.fixed
        assert store.verify("e").ok
        t = store.tenant("e")
        assert t.count() == N - 1
        assert t.get(["u13"]) == []
        _check_others_intact(t, {"u13"})
    assert _all_intact(root, "e") == 3 * (N - 1)


def test_a_flipped_bit_in_a_vector_stops_the_load(exact_store: Path) -> None:
    root = exact_store
    _flip(root, "e", b"vecs", pack_label(13), 4 * 2 + 1, 3)
    with tenantvec.Store(root, readonly=True) as store:
        r = store.verify("e")
        assert not r.ok, r
        assert r.problems == ("record label 13 (id 'u13') fails its checksum (vector)",), r
        # the exact index is built from every stored vector: the tenant does not load
        with pytest.raises(tenantvec.CorruptShard,
                           match=r"tenant 'e': record 'u13' \(label 13\) fails its checksum \(vector\)"):
            store.tenant("e").count()
        with pytest.raises(tenantvec.CorruptShard, match="fails its checksum"):
            store.tenant("e").query(_vectors()[0], k=3)
        assert store.tenant("other").count() == 5
    with tenantvec.Store(root) as store:
        r = store.verify("e", fix=True)
        assert r.ok, r
        assert "removed 1 unusable records (labels 13 (id 'u13'))" in r.fixed, r
        t = store.tenant("e")
        assert t.count() == N - 1
        _check_others_intact(t, {"u13"})
        assert store.verify("e").ok


def test_a_flipped_bit_in_an_id_map_entry_is_repaired_from_the_record(exact_store: Path) -> None:
    root = exact_store
    _flip(root, "e", b"ids", b"u13", 7, 0)  # the label's last byte: 13 -> 12, another record
    with tenantvec.Store(root, readonly=True) as store:
        r = store.verify("e")
        assert not r.ok, r
        assert "id map entry 'u13' fails its checksum (id map entry)" in r.problems, r
        t = store.tenant("e")
        with pytest.raises(tenantvec.CorruptShard, match=r"record 'u13' fails its checksum \(id map entry\)"):
            t.get(["u13"])  # never the record of label 12
        with pytest.raises(tenantvec.CorruptShard, match="id map entry"):
            t.get(["u12", "u13"])
        assert t.query(_vectors()[13], k=1)[0].id == "u13"  # the record itself is intact
    with tenantvec.Store(root) as store:
        r = store.verify("e", fix=True)
        assert r.ok, r
        assert r.fixed == ("removed 1 dangling or damaged id map entries",
                           "re-mapped 1 records missing from the id map",
                           "the exact index is rebuilt from LMDB on every open"), r.fixed
        _check_others_intact(store.tenant("e"), set())  # nothing lost
    assert _all_intact(root, "e") == 3 * N


def test_hnsw_tenant_loads_from_its_snapshot_but_never_serves_a_damaged_vector(tmp_path: Path) -> None:
    root = tmp_path / "s"
    n = 60
    with tenantvec.Store(root, dim=DIM, hnsw_threshold=30, hnsw=HNSW) as store:
        t = store.create_tenant("h")
        t.add(_vectors(n), ids=[f"h{i}" for i in range(n)], metadata=[{"n": i} for i in range(n)])
        assert t.info().index_kind == "hnsw"
    _flip(root, "h", b"vecs", pack_label(40), 0, 7)
    with tenantvec.Store(root, readonly=True, hnsw=HNSW) as store:
        t = store.tenant("h")
        assert t.count() == n  # the snapshot (checked by its own CRC32) holds the vectors
        with pytest.raises(tenantvec.CorruptShard, match=r"record 'h40' \(label 40\) fails its checksum \(vector\)"):
            t.get(["h40"], include_vectors=True)
        assert t.get(["h40"])[0].metadata == {"n": 40}  # the record is intact
        with pytest.raises(tenantvec.CorruptShard, match="label 40"):
            t.query(_vectors(n)[0], k=3, where={"n": {"$gte": 0}})  # filter columns read every vector
        r = store.verify("h")
        assert not r.ok
        assert "record label 40 (id 'h40') fails its checksum (vector)" in r.problems
    with tenantvec.Store(root, hnsw=HNSW) as store:
        r = store.verify("h", fix=True)
        assert r.ok, r
        assert any("labels 40 (id 'h40')" in f for f in r.fixed), r
        t = store.tenant("h")
        assert t.count() == n - 1
        assert "h40" not in {h.id for h in t.query(_vectors(n)[40], k=n)}
        assert len(t.query(_vectors(n)[0], k=5, where={"n": {"$gte": 0}})) == 5


def test_a_damaged_record_can_be_deleted_by_id(exact_store: Path) -> None:
    root = exact_store
    value = _stored(root, "e", b"recs", pack_label(3))
    _flip(root, "e", b"recs", pack_label(3), _field_offset(value, 2), 0)
    with tenantvec.Store(root) as store:
        t = store.tenant("e")
        with pytest.raises(tenantvec.CorruptShard):
            t.upsert(_vectors()[3], ids=["u3"])  # needs the stored created_at
        assert t.delete(ids=["u3"]) == 1  # does not read the record
        assert store.verify("e").ok
        assert t.count() == N - 1


# ---------------------------------------------------------------------------- any bit of any value
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tpl") / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        _fill(store.create_tenant("e"), 12)
    return root


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_bit_of_any_stored_value_is_detected(template: Path, data: st.DataObject) -> None:
    db = data.draw(st.sampled_from(SEALED_DBS), label="db")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "s"
        shutil.copytree(template, root)
        env = _raw_env(root, "e")
        with env.begin() as txn:
            keys = sorted(k for k, _ in txn.cursor(db=env.open_db(db, txn=txn)))
        env.close()
        key = data.draw(st.sampled_from(keys), label="key")
        value = _stored(root, "e", db, key)
        offset = data.draw(st.integers(0, len(value) - 1), label="offset")
        _flip(root, "e", db, key, offset, data.draw(st.integers(0, 7), label="bit"))
        with tenantvec.Store(root, readonly=True) as store:
            r = store.verify("e")
            assert not r.ok, r
            assert any("fails its checksum" in p for p in r.problems), r
        with tenantvec.Store(root) as store:
            r = store.verify("e", fix=True)
            assert r.ok, r
            kept = {x.id for x in store.tenant("e").get()}
        lost = {f"u{i}" for i in range(12)} - kept
        assert len(lost) == (0 if db == b"ids" else 1), (db, key, offset, lost)


# ---------------------------------------------------------------------------- format 1
def _make_format1(root: Path, tid: str) -> int:
    """Turn a shard into what format 1 wrote: the same values without their CRC32."""
    env = _raw_env(root, tid)
    n = 0
    try:
        with env.begin(write=True) as txn:
            for name in SEALED_DBS:
                db = env.open_db(name, txn=txn)
                for key, raw in list(txn.cursor(db=db)):
                    assert intact(raw)
                    txn.put(key, raw[:-CRC_BYTES], db=db)
                    n += 1
            txn.put(b"format", packb(1), db=env.open_db(b"meta", txn=txn))
    finally:
        env.close()
    return n


def _format(root: Path, tid: str) -> int:
    return unpackb(_stored(root, tid, b"meta", b"format"))


@pytest.mark.parametrize("threshold", [2048, 10])  # exact (built from LMDB), hnsw (snapshot + records)
def test_a_writer_upgrades_a_format_1_shard_in_one_transaction(exact_store: Path, threshold: int, caplog) -> None:
    root = exact_store
    if threshold < N:  # re-create 'e' as an HNSW tenant with a snapshot
        with tenantvec.Store(root, hnsw_threshold=threshold, hnsw=HNSW) as store:
            store.drop_tenant("e")
            _fill(store.create_tenant("e"))
            assert store.tenant("e").info().index_kind == "hnsw"
    assert _make_format1(root, "e") == 3 * N
    with tenantvec.Store(root, readonly=True) as store:
        with pytest.raises(tenantvec.CorruptShard, match=r"shard format 1 .* no record checksums; open the store "
                                                         r"once without readonly=True"):
            store.tenant("e").count()
        r = store.verify("e")
        assert not r.ok, r
        assert any("format 1" in p for p in r.problems), r
        assert store.tenant("other").count() == 5
    assert _format(root, "e") == 1  # read-only openers change nothing
    with caplog.at_level(logging.INFO, logger="tenantvec"), tenantvec.Store(root, hnsw_threshold=threshold,
                                                                                hnsw=HNSW) as store:
        t = store.tenant("e")
        _check_others_intact(t, set())
        assert any("upgraded shard format 1 to 2: added CRC32 checksums to 60 stored values" in m
                   for m in caplog.messages), caplog.messages
        assert store.verify("e").ok
    assert _format(root, "e") == 2
    assert _all_intact(root, "e") == 3 * N
    with tenantvec.Store(root, readonly=True) as store:
        _check_others_intact(store.tenant("e"), set())


def test_verify_in_a_writable_store_upgrades_a_format_1_shard_first(exact_store: Path) -> None:
    root = exact_store
    _make_format1(root, "e")
    value = _stored(root, "e", b"recs", pack_label(5))
    env = _raw_env(root, "e")  # damage in format 1 is sealed as found: the checks after still see it
    with env.begin(write=True) as txn:
        txn.put(pack_label(5), value[:-1], db=env.open_db(b"recs", txn=txn))
    env.close()
    with tenantvec.Store(root) as store:
        r = store.verify("e")
        assert r.notes[0] == "upgraded shard format 1 to 2: added CRC32 checksums to every record", r
        assert not r.ok, r
        assert r.problems == ("record label 5 (id 'u5') does not decode",), r
        assert store.verify("e", fix=True).ok
        _check_others_intact(store.tenant("e"), {"u5"})
    assert _format(root, "e") == 2


def test_a_format_1_shard_of_another_tenant_is_not_touched(exact_store: Path) -> None:
    root = exact_store
    _make_format1(root, "e")
    env = _raw_env(root, "e")
    with env.begin(write=True) as txn:
        txn.put(b"tenant", packb("someone-else"), db=env.open_db(b"meta", txn=txn))
    env.close()
    with tenantvec.Store(root) as store, pytest.raises(tenantvec.CorruptShard, match="belongs to tenant 'someone-else'"):
        store.tenant("e").count()
    assert _format(root, "e") == 1


# ---------------------------------------------------------------------------- copies keep them
def test_export_import_and_compaction_keep_every_value_sealed(exact_store: Path, tmp_path: Path) -> None:
    root = exact_store
    with tenantvec.Store(root, hnsw_threshold=10, hnsw=HNSW) as store:
        store.export_tenant("e", tmp_path / "e.tve")
        store.import_tenant("copy", tmp_path / "e.tve")
        _check_others_intact(store.tenant("copy"), set())
        t = store.tenant("e")
        t.add(_vectors(30, seed=1), ids=[f"x{i}" for i in range(30)])  # switches to HNSW
        t.delete(ids=[f"x{i}" for i in range(0, 30, 2)])
        store.compact("e")
        assert store.verify("e").ok
        assert store.verify("copy").ok
    assert _all_intact(root, "copy") == 3 * N
    assert _all_intact(root, "e") == 3 * (N + 15)
    _flip(root, "e", b"recs", pack_label(2), 3, 4)
    with tenantvec.Store(root) as store, pytest.raises(tenantvec.CorruptShard, match="label 2"):
        store.export_tenant("e", tmp_path / "bad.tve")  # never exported as if it were sound
    assert not (tmp_path / "bad.tve").exists()

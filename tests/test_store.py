"""Public API semantics of Store and Tenant (DESIGN.md "Public API", "Semantics to keep exact")."""

from __future__ import annotations

import dataclasses
import os
import re
import time

import numpy as np
import pytest
from oracles import distances, nearest

import tenantvec
from tenantvec import errors
from tenantvec._engine.layout import unpack_label

DIM = 4


def vec(*xs: float) -> np.ndarray:
    return np.asarray(xs, dtype=np.float32)


E = np.eye(DIM, dtype=np.float32)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def store(root):
    s = tenantvec.Store(root, dim=DIM)
    yield s
    s.close()


@pytest.fixture
def acme(store):
    t = store.create_tenant("acme")
    t.add(
        E,
        ids=["a", "b", "c", "d"],
        documents=["doc a", None, "doc c", "doc d"],
        metadata=[{"kind": "fact", "n": 1}, {"kind": "event"}, None, {"tags": ["x", "y"]}],
    )
    return t


# ------------------------------------------------------------------ public names
EXPECTED_ALL = [
    "__version__",
    "Store",
    "Tenant",
    "open",
    "Hit",
    "Record",
    "TenantInfo",
    "QueryPlan",
    "StoreStats",
    "TenantSummary",
    "VerifyReport",
    "CompactReport",
    "ExportReport",
    "HnswParams",
    "TenantVecError",
    "InvalidTenantId",
    "TenantNotFound",
    "TenantExists",
    "DimensionMismatch",
    "InvalidVector",
    "InvalidFilter",
    "InvalidArgument",
    "DuplicateId",
    "StoreLocked",
    "StoreNotFound",
    "ReadOnlyStore",
    "CorruptShard",
    "CorruptExport",
    "StorageError",
    "StorageFull",
    "TenantInactive",
    "StoreClosed",
    "EmbedderError",
    "EmbedderMismatch",
    "TenantMismatch", "MemoryNotFound", "SessionNotFound", "SessionExpired", "ConsolidationError",
]

DESIGN_ERRORS = [
    "InvalidTenantId", "TenantNotFound", "TenantExists", "DimensionMismatch", "InvalidVector",
    "InvalidFilter", "DuplicateId", "StoreLocked", "ReadOnlyStore", "CorruptShard", "TenantInactive",
]


def test_all_is_pinned():
    assert sorted(tenantvec.__all__) == sorted(EXPECTED_ALL)
    assert len(set(tenantvec.__all__)) == len(tenantvec.__all__)
    for name in tenantvec.__all__:
        assert getattr(tenantvec, name) is not None


def test_design_names_are_public():
    for name in ["Store", "open", "Hit", "Record", "TenantInfo", "TenantVecError", *DESIGN_ERRORS]:
        assert name in tenantvec.__all__
        assert getattr(tenantvec, name) is getattr(tenantvec, name)
    for name in DESIGN_ERRORS:
        assert getattr(tenantvec, name) is getattr(errors, name)


def test_every_error_is_a_tenantvec_error():
    error_names = [n for n in tenantvec.__all__ if isinstance(getattr(tenantvec, n), type)
                   and issubclass(getattr(tenantvec, n), BaseException)]
    assert set(error_names) == set(errors.__all__)
    assert set(DESIGN_ERRORS) <= set(error_names)
    for name in error_names:
        cls = getattr(tenantvec, name)
        assert issubclass(cls, tenantvec.TenantVecError), name
        assert issubclass(cls, Exception)
    assert issubclass(tenantvec.InvalidTenantId, ValueError)
    assert issubclass(tenantvec.TenantNotFound, KeyError)
    assert issubclass(tenantvec.InvalidVector, ValueError)
    assert issubclass(tenantvec.DimensionMismatch, ValueError)
    assert issubclass(tenantvec.InvalidFilter, ValueError)


def test_result_types_are_frozen_dataclasses():
    for cls in (tenantvec.Hit, tenantvec.Record, tenantvec.TenantInfo):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen
    hit = tenantvec.Hit("a", 0.5, {"k": 1}, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.distance = 0.0  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(tenantvec.Hit)] == ["id", "distance", "metadata", "document"]
    rec_fields = {f.name for f in dataclasses.fields(tenantvec.Record)}
    assert {"id", "metadata", "document", "vector", "created_at", "updated_at"} <= rec_fields


def test_returned_objects_are_frozen(acme):
    hit = acme.query(E[0], k=1)[0]
    rec = acme.get(ids=["a"])[0]
    info = acme.info()
    for obj, field in ((hit, "id"), (rec, "metadata"), (info, "count")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


# ------------------------------------------------------------------ tenant lifecycle
def test_create_tenant_twice_raises_tenant_exists(store):
    store.create_tenant("acme")
    with pytest.raises(tenantvec.TenantExists) as ei:
        store.create_tenant("acme")
    assert "'acme'" in str(ei.value)


def test_tenant_not_found_is_a_keyerror_with_a_readable_message(store):
    with pytest.raises(tenantvec.TenantNotFound) as ei:
        store.tenant("ghost")
    exc = ei.value
    assert isinstance(exc, KeyError)
    assert isinstance(exc, tenantvec.TenantVecError)
    msg = str(exc)
    assert "'ghost'" in msg
    assert not msg.startswith(("'", '"')), msg  # a sentence, not KeyError's repr()
    assert re.search(r"not exist|not found", msg)
    with pytest.raises(KeyError):
        store.tenant("ghost")
    assert not store.has_tenant("ghost")


def test_tenant_create_true(store):
    t = store.tenant("acme", create=True)
    assert store.has_tenant("acme")
    t.add(E[:1], ids=["x"])
    again = store.tenant("acme", create=True)  # existing: no error, data kept
    assert again.count() == 1
    assert store.tenant("acme").count() == 1
    assert t.id == "acme"


def test_tenants_sorted_and_has_tenant(store):
    names = ["b", "A", "a", "c", "é", "Z", "a b", "10", "9"]
    for n in names:
        store.create_tenant(n)
    assert store.tenants() == sorted(names)
    for n in names:
        assert store.has_tenant(n)
    assert not store.has_tenant("d")
    assert not store.has_tenant("B")


def test_tenants_of_empty_store(store):
    assert store.tenants() == []


def test_drop_tenant_removes_files(store, root):
    t = store.create_tenant("acme")
    t.add(E, ids=list("abcd"))
    store.create_tenant("other")
    before = set(os.listdir(root / "tenants"))
    store.drop_tenant("acme")
    after = set(os.listdir(root / "tenants"))
    assert len(after) == len(before) - 1
    assert not any(name.startswith(".") for name in after), after  # no leftover grave
    assert store.tenants() == ["other"]
    assert not store.has_tenant("acme")
    with pytest.raises(tenantvec.TenantNotFound):
        store.tenant("acme")
    with pytest.raises(tenantvec.TenantNotFound):
        store.drop_tenant("acme")


def test_old_handle_after_drop_raises(store):
    t = store.create_tenant("acme")
    t.add(E[:1], ids=["x"])
    store.drop_tenant("acme")
    with pytest.raises(tenantvec.TenantNotFound):
        t.count()
    with pytest.raises(tenantvec.TenantNotFound):
        t.add(E[:1], ids=["y"])
    assert not store.has_tenant("acme")  # the failed add did not resurrect it


def test_old_handle_after_drop_and_recreate_raises(store):
    t = store.create_tenant("acme")
    t.add(E[:1], ids=["old"])
    store.drop_tenant("acme")
    fresh = store.create_tenant("acme")
    fresh.add(E[1:2], ids=["new"])
    for call in (t.count, lambda: t.get(where={}), lambda: t.query(E[0]), lambda: t.add(E[:1], ids=["z"])):
        with pytest.raises(tenantvec.TenantNotFound):
            call()
    assert [r.id for r in fresh.get(where={})] == ["new"]


def test_unused_old_handle_after_drop_and_recreate_raises(store):
    t = store.create_tenant("acme")  # never used before the drop
    store.drop_tenant("acme")
    store.create_tenant("acme").add(E[:1], ids=["new"])
    with pytest.raises(tenantvec.TenantNotFound):
        t.count()


def test_per_tenant_dim_and_metric_are_persisted(root):
    with tenantvec.Store(root, dim=DIM, metric="cosine") as store:
        small = store.create_tenant("small", dim=2, metric="l2")
        small.add([[3.0, 4.0]], ids=["p"])
        store.create_tenant("default")
    with tenantvec.Store(root) as store:
        small = store.tenant("small")
        info = small.info()
        assert (info.dim, info.metric) == (2, "l2")
        hit = small.query([0.0, 0.0], k=1)[0]
        assert hit.distance == pytest.approx(25.0)  # squared L2
        with pytest.raises(tenantvec.DimensionMismatch):
            small.add(E[:1])
        d = store.tenant("default").info()
        assert (d.dim, d.metric) == (DIM, "cosine")


def test_tenant_create_true_with_dim(store):
    t = store.tenant("wide", create=True, dim=8, metric="ip")
    assert (t.info().dim, t.info().metric) == (8, "ip")


@pytest.mark.parametrize("kwargs", [{"dim": DIM * 2}, {"metric": "l2"}], ids=repr)
def test_tenant_create_true_with_conflicting_explicit_options(store, kwargs):
    store.create_tenant("acme")
    with pytest.raises(tenantvec.TenantVecError) as ei:
        store.tenant("acme", create=True, **kwargs)
    if "dim" in kwargs:
        assert isinstance(ei.value, tenantvec.DimensionMismatch)


def test_reopen_with_different_dim_or_metric(root):
    with tenantvec.Store(root, dim=DIM, metric="cosine") as store:
        store.create_tenant("acme")
    with pytest.raises(tenantvec.DimensionMismatch):
        tenantvec.Store(root, dim=DIM + 1)
    with pytest.raises(tenantvec.TenantVecError):
        tenantvec.Store(root, metric="ip")
    with tenantvec.Store(root) as store:
        assert store.tenants() == ["acme"]


# ------------------------------------------------------------------ records
def test_add_returns_ids(store):
    t = store.create_tenant("acme")
    assert t.add(E[:2], ids=["x", "y"]) == ["x", "y"]
    gen = t.add(E[2:])
    assert len(gen) == 2
    assert len(set(gen)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in gen)
    assert t.count() == 4
    assert {r.id for r in t.get(where={})} == {"x", "y", *gen}


def test_add_single_1d_vector(store):
    t = store.create_tenant("acme")
    ids = t.add(E[0], ids=["one"], metadata={"k": 1})
    assert ids == ["one"]
    assert t.get(ids=["one"])[0].metadata == {"k": 1}


def test_get_by_ids_keeps_order_and_skips_unknown(acme):
    recs = acme.get(ids=["c", "nope", "a", "d", "zzz"])
    assert [r.id for r in recs] == ["c", "a", "d"]
    assert acme.get(ids=[]) == []
    assert acme.get(ids=["nope"]) == []


def test_get_record_contents(acme):
    a, b, c, d = acme.get(ids=["a", "b", "c", "d"], include_vectors=True)
    assert (a.metadata, a.document) == ({"kind": "fact", "n": 1}, "doc a")
    assert (b.metadata, b.document) == ({"kind": "event"}, None)
    assert (c.metadata, c.document) == ({}, "doc c")
    assert d.metadata == {"tags": ["x", "y"]}
    for r, v in zip((a, b, c, d), E):
        np.testing.assert_array_equal(r.vector, v)
        assert r.created_at == r.updated_at
        assert abs(r.created_at - time.time()) < 60
    assert acme.get(ids=["a"])[0].vector is None


def test_vectors_are_stored_as_given(store):
    t = store.create_tenant("acme")
    v = vec(3.0, 4.0, 0.0, 0.0)
    t.add(v, ids=["v"])
    np.testing.assert_array_equal(t.get(ids=["v"], include_vectors=True)[0].vector, v)
    v[0] = 100.0  # the caller's buffer is not aliased
    np.testing.assert_array_equal(t.get(ids=["v"], include_vectors=True)[0].vector, vec(3, 4, 0, 0))


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_hnsw_index_holds_the_stored_vectors_after_the_switch(root, metric):
    # The switch from exact to HNSW builds from LMDB's vectors, exactly as a reopen
    # would: the exact index keeps l2 rows re-centred in float32, which round-trip
    # a unit in the last place off (seen as a snapshot disagreeing with LMDB).
    rng = np.random.default_rng(7)
    with tenantvec.Store(root, dim=8, metric=metric, hnsw_threshold=20) as store:
        t = store.create_tenant("t")
        for start in range(0, 40, 4):
            t.add(rng.normal(0.3, 1.0, size=(4, 8)).astype(np.float32),
                  ids=[f"r{i}" for i in range(start, start + 4)])
        assert t.info().index_kind == "hnsw"
        shard = store._manager.hot()["t"]
        recs = t.get(include_vectors=True)
        with shard._env.begin() as txn:
            labels = [unpack_label(txn.get(r.id.encode(), db=shard.databases.ids)[:8]) for r in recs]  # label + CRC32
        held = shard.index.get_vectors(np.asarray(labels))
        stored = np.stack([r.vector for r in recs])
        if metric == "cosine":  # hnswlib keeps cosine vectors normalised
            stored = stored / np.linalg.norm(stored, axis=1, keepdims=True)
            np.testing.assert_allclose(held, stored, rtol=1e-6)
        else:
            np.testing.assert_array_equal(held, stored)


def test_get_all_in_insertion_order_with_paging(store):
    t = store.create_tenant("acme")
    ids = [f"r{i}" for i in range(10)]
    t.add(np.random.default_rng(0).normal(size=(10, DIM)), ids=ids)
    assert [r.id for r in t.get(where={})] == ids
    assert [r.id for r in t.get(where={}, limit=3)] == ids[:3]
    assert [r.id for r in t.get(where={}, limit=3, offset=8)] == ids[8:]
    assert t.get(where={}, limit=0) == []
    assert [r.id for r in t.get()] == ids  # neither ids nor where: everything


def test_upsert_replaces_whole_record_and_keeps_created_at(acme):
    a0 = acme.get(ids=["a"], include_vectors=True)[0]
    time.sleep(0.01)
    acme.upsert(vec(0, 0, 5, 0), ids=["a"])  # no metadata, no document
    a1 = acme.get(ids=["a"], include_vectors=True)[0]
    assert a1.metadata == {}
    assert a1.document is None
    np.testing.assert_array_equal(a1.vector, vec(0, 0, 5, 0))
    assert a1.created_at == a0.created_at
    assert a1.updated_at > a0.updated_at
    assert acme.count() == 4
    # the index follows the new vector
    top = acme.query(vec(0, 0, 1, 0), k=2)
    assert {h.id for h in top} == {"a", "c"}
    assert top[0].distance == pytest.approx(0.0, abs=1e-6)
    assert all(h.id != "a" or h.distance < 1e-5 for h in top)


def test_upsert_inserts_new_ids(acme):
    assert acme.upsert(E[:2], ids=["a", "new"], metadata=[{"v": 2}, {"v": 3}],
                       documents=["A", "N"]) == ["a", "new"]
    assert acme.count() == 5
    new = acme.get(ids=["new"])[0]
    assert (new.metadata, new.document) == ({"v": 3}, "N")
    assert new.created_at == new.updated_at
    assert acme.get(ids=["a"])[0].metadata == {"v": 2}


def test_add_existing_id_raises_duplicate(acme):
    with pytest.raises(tenantvec.DuplicateId) as ei:
        acme.add(E[:1], ids=["a"])
    assert "'a'" in str(ei.value)
    assert acme.count() == 4


def test_delete_semantics(acme):
    with pytest.raises(tenantvec.TenantVecError):
        acme.delete()
    assert acme.count() == 4
    assert acme.delete(ids=["a", "nope", "a"]) == 1
    assert acme.delete(ids=["a"]) == 0
    assert acme.delete(ids=[]) == 0
    assert acme.delete(where={"kind": "event"}) == 1
    assert acme.delete(ids=["c", "d"], where={"tags": {"$contains": "x"}}) == 1  # ids AND where
    assert [r.id for r in acme.get(where={})] == ["c"]
    assert acme.delete(where={}) == 1
    assert acme.count() == 0
    assert acme.query(E[0], k=3) == []


def test_where_empty_deletes_everything(acme):
    assert acme.delete(where={}) == 4
    assert acme.count() == 0
    assert acme.get(where={}) == []


def test_deleted_records_leave_the_index(acme):
    acme.delete(ids=["a"])
    assert all(h.id != "a" for h in acme.query(E[0], k=10))
    acme.add(E[0], ids=["a"])  # re-adding a deleted id is allowed
    assert acme.query(E[0], k=1)[0].id == "a"


# ------------------------------------------------------------------ query
def test_query_shapes(acme):
    hits = acme.query(E[1], k=2)
    assert isinstance(hits, list)
    assert all(isinstance(h, tenantvec.Hit) for h in hits)
    assert hits[0].id == "b"
    assert hits[0].distance == pytest.approx(0.0, abs=1e-6)
    assert hits[0].metadata == {"kind": "event"}
    assert hits[0].document is None
    rows = acme.query(E[[2, 0]], k=2)
    assert isinstance(rows, list)
    assert len(rows) == 2
    assert all(isinstance(r, list) and len(r) == 2 for r in rows)
    assert rows[0][0].id == "c"
    assert rows[1][0].id == "a"
    one_row = acme.query(E[[3]], k=1)
    assert len(one_row) == 1
    assert one_row[0][0].id == "d"
    as_list = acme.query([0.0, 0.0, 0.0, 1.0], k=1)
    assert as_list[0].id == "d"


def test_query_k_larger_than_count(acme):
    hits = acme.query(E[0], k=100)
    assert len(hits) == 4
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert len(acme.query(E[0], k=100, where={"kind": {"$exists": True}})) == 2


@pytest.mark.parametrize("threshold", [2048, 8])
def test_query_huge_k_returns_every_live_record(root, threshold):
    """k is capped at the live count before the index sees it (hnswlib would allocate k
    results up front: MemoryError, and a leak, for a huge k)."""
    rng = np.random.default_rng(4)
    with tenantvec.Store(root, dim=DIM, hnsw_threshold=threshold) as store:
        t = store.create_tenant("t")
        t.add(rng.normal(size=(30, DIM)).astype(np.float32))
        t.delete(ids=[r.id for r in t.get(limit=3)])
        q = rng.normal(size=DIM).astype(np.float32)
        for k in (28, 10**6, 10**12):
            hits = t.query(q, k=k)
            assert len(hits) == 27
            assert len({h.id for h in hits}) == 27
            assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert [len(row) for row in t.query(np.stack([q, q]), k=10**12)] == [27, 27]


def test_query_default_k_is_10(store):
    t = store.create_tenant("many")
    t.add(np.random.default_rng(1).normal(size=(30, DIM)))
    assert len(t.query(E[0])) == 10


def test_query_empty_tenant(store):
    t = store.create_tenant("empty")
    assert t.query(E[0], k=5) == []
    assert t.query(E[:2], k=5) == [[], []]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_query_distances_are_hnswlib_distances(root, metric):
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(20, DIM)).astype(np.float32)
    q = rng.normal(size=DIM).astype(np.float32)
    want = distances(metric, vecs, q)
    with tenantvec.Store(root, dim=DIM, metric=metric) as store:
        t = store.create_tenant("m")
        t.add(vecs, ids=[str(i) for i in range(20)])
        hits = t.query(q, k=20)
        assert [int(h.id) for h in hits] == list(nearest(want, 20))
        np.testing.assert_allclose([h.distance for h in hits], np.sort(want), rtol=1e-5, atol=1e-5)
        assert all(isinstance(h.distance, float) for h in hits)


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("threshold", [2048, 8])
def test_every_query_path_returns_the_same_float32_distances(root, metric, threshold):
    """One vector, a batch of one, ``where={}`` and ``explain=True`` take different code
    paths; the distances agree (exactly for ip and l2 on the exact index; hnswlib's SIMD
    sums in another order than numpy) and are float32 values, as hnswlib's."""
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(40, DIM)).astype(np.float32)
    with tenantvec.Store(root, dim=DIM, metric=metric, hnsw_threshold=threshold) as store:
        t = store.create_tenant("m")
        t.add(vecs, ids=[str(i) for i in range(40)])
        for q in rng.normal(size=(10, DIM)).astype(np.float32):
            single = {h.id: h.distance for h in t.query(q, k=40)}
            for other in (t.query(q[None], k=40)[0], t.query(q, k=40, where={}), t.query(q, k=40, explain=True)[0]):
                got = {h.id: h.distance for h in other}
                assert got.keys() == single.keys()
                for rid, d in got.items():
                    if metric == "cosine" or threshold < 40:
                        assert d == pytest.approx(single[rid], abs=1e-5)
                    else:
                        assert d == single[rid], (rid, d, single[rid])
            assert all(float(np.float32(d)) == d for d in single.values())


def test_hits_are_fresh_copies(acme):
    """Queries answer from the records a hot tenant keeps in memory; a caller mutating a
    hit must not change what the next query (or get) returns."""
    hit = acme.query(E[0], k=1)[0]
    hit.metadata["kind"] = "mutated"
    hit.metadata["extra"] = [1, 2]
    again = acme.query(E[0], k=1)[0]
    assert again.metadata == {"kind": "fact", "n": 1}
    assert acme.query(E[3], k=1)[0].metadata == {"tags": ["x", "y"]}
    acme.query(E[3], k=1)[0].metadata["tags"].append("z")
    assert acme.query(E[3], k=1, where={"tags": {"$contains": "x"}})[0].metadata == {"tags": ["x", "y"]}
    assert acme.get(ids=["a"])[0].metadata == {"kind": "fact", "n": 1}


@pytest.mark.parametrize("threshold", [2048, 8])
def test_in_memory_records_follow_writes_and_are_counted(root, threshold):
    """Hot records in memory: put there by the writes (the first query reads nothing),
    kept current by add, upsert and delete, and counted in the tenant's memory (so in
    memory_budget)."""
    rng = np.random.default_rng(3)
    with tenantvec.Store(root, dim=DIM, hnsw_threshold=threshold) as store:
        t = store.create_tenant("m")
        empty = t.info().memory_bytes
        vecs = rng.normal(size=(20, DIM)).astype(np.float32)
        t.add(vecs, ids=[f"r{i}" for i in range(20)], documents=["x" * 2000] * 20)
        assert t.info().index_kind == ("hnsw" if threshold == 8 else "exact")
        warm = t.info().memory_bytes
        assert warm - empty >= 20 * 2000
        assert {h.document for h in t.query(vecs[0], k=20)} == {"x" * 2000}
        assert t.info().memory_bytes == warm  # every hit was in memory already
        t.upsert(vecs[:2], ids=["r0", "r1"], documents=["new", None], metadata=[{"v": 2}, None])
        t.add(vecs[2:3], ids=["late"], metadata=[{"v": 3}])
        assert t.delete(ids=["r5", "r6"]) == 2
        hits = {h.id: (h.metadata, h.document) for h in t.query(vecs[0], k=30)}
        assert set(hits) == {f"r{i}" for i in range(20) if i not in (5, 6)} | {"late"}
        assert hits["r0"] == ({"v": 2}, "new")
        assert hits["r1"] == ({}, None)
        assert hits["late"] == ({"v": 3}, None)
        assert hits["r2"] == ({}, "x" * 2000)
        # 2 upserted documents shrank by 2,000 B each, 2 records left: at least 8,000 B less
        assert t.info().memory_bytes <= warm - 8000 + 2 * 200


def test_isolation_between_tenants(store):
    a = store.create_tenant("a")
    b = store.create_tenant("b")
    a.add(E[:2], ids=["same", "only-a"], metadata=[{"t": "a"}, {"t": "a"}])
    b.add(E[2:3], ids=["same"], metadata=[{"t": "b"}])
    assert {h.id for h in b.query(E[0], k=10)} == {"same"}
    assert b.get(ids=["same", "only-a"])[0].metadata == {"t": "b"}
    assert b.get(ids=["only-a"]) == []
    assert b.delete(ids=["only-a"]) == 0
    assert a.count() == 2
    assert b.count() == 1
    assert b.delete(where={}) == 1
    assert a.count() == 2


# ------------------------------------------------------------------ info & stats
def test_info(acme):
    info = acme.info()
    assert isinstance(info, tenantvec.TenantInfo)
    assert (info.tenant, info.count, info.dim, info.metric) == ("acme", 4, DIM, "cosine")
    assert info.state == "hot"
    assert info.index_kind == "exact"
    assert info.deleted == 0
    assert info.bytes_on_disk > 0
    acme.delete(ids=["a"])
    assert acme.info().count == 3


def test_stats_keys(store, acme):
    acme.count()
    st = store.stats()
    for key in ("hot", "cold", "loads", "evictions", "hits", "misses", "memory_bytes", "memory_budget"):
        assert hasattr(st, key), key
        assert isinstance(getattr(st, key), int), key
        assert getattr(st, key) >= 0, key
    assert st.hot + st.cold == 1
    assert st.memory_budget == 1024**3
    assert st.loads >= 1


def test_stats_cold_tenants(root):
    with tenantvec.Store(root, dim=DIM) as store:
        for n in ("a", "b", "c"):
            store.create_tenant(n)
    with tenantvec.Store(root) as store:
        st = store.stats()
        assert (st.hot, st.cold) == (0, 3)
        store.tenant("b").count()
        st = store.stats()
        assert (st.hot, st.cold) == (1, 2)


# ------------------------------------------------------------------ activation
def test_deactivate_and_activate(root):
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add(E[:2], ids=["a", "b"])
        other = store.create_tenant("other")
        store.deactivate("acme")
        calls = {
            "add": lambda: t.add(E[2:3], ids=["c"]),
            "upsert": lambda: t.upsert(E[2:3], ids=["a"]),
            "query": lambda: t.query(E[0]),
            "get": lambda: t.get(ids=["a"]),
            "delete": lambda: t.delete(ids=["a"]),
            "count": t.count,
        }
        for name, call in calls.items():
            with pytest.raises(tenantvec.TenantInactive) as ei:
                call()
            assert "'acme'" in str(ei.value), name
        assert isinstance(ei.value, tenantvec.TenantVecError)
        assert t.info().state == "inactive"
        assert other.count() == 0  # other tenants unaffected
        with pytest.raises(tenantvec.TenantInactive):
            store.tenant("acme").count()
    with tenantvec.Store(root) as store:  # persisted
        t = store.tenant("acme")
        with pytest.raises(tenantvec.TenantInactive):
            t.count()
        store.activate("acme")
        assert t.count() == 2
        t.add(E[2:3], ids=["c"])
    with tenantvec.Store(root) as store:
        assert store.tenant("acme").count() == 3


def test_deactivate_unknown_tenant(store):
    with pytest.raises(tenantvec.TenantNotFound):
        store.deactivate("ghost")
    with pytest.raises(tenantvec.TenantNotFound):
        store.activate("ghost")
    assert store.tenants() == []


# ------------------------------------------------------------------ readonly
def test_readonly_store_refuses_writes(root):
    with tenantvec.Store(root, dim=DIM) as store:
        store.create_tenant("acme").add(E[:2], ids=["a", "b"])
    with tenantvec.Store(root, readonly=True) as ro:
        t = ro.tenant("acme")
        assert t.count() == 2
        assert [h.id for h in t.query(E[1], k=1)] == ["b"]
        writes = {
            "add": lambda: t.add(E[2:3], ids=["c"]),
            "upsert": lambda: t.upsert(E[2:3], ids=["a"]),
            "delete ids": lambda: t.delete(ids=["a"]),
            "delete where": lambda: t.delete(where={}),
            "create_tenant": lambda: ro.create_tenant("new"),
            "tenant create": lambda: ro.tenant("new", create=True),
            "drop_tenant": lambda: ro.drop_tenant("acme"),
            "deactivate": lambda: ro.deactivate("acme"),
            "activate": lambda: ro.activate("acme"),
        }
        for name, call in writes.items():
            with pytest.raises(tenantvec.ReadOnlyStore) as ei:
                call()
            assert "read-only" in str(ei.value), name
        assert t.count() == 2
        assert ro.tenants() == ["acme"]
    with tenantvec.Store(root) as store:
        assert store.tenant("acme").count() == 2


def test_readonly_opener_in_the_writer_process(root):
    """LMDB allows one environment per file per process: a readonly Store in the writer's
    process may serve the tenant or refuse with a clear StoreLocked, but must not call a
    healthy tenant corrupt, and the writer must keep working."""
    with tenantvec.Store(root, dim=DIM) as writer:
        t = writer.create_tenant("acme")
        t.add(E[:1], ids=["a"])
        with tenantvec.Store(root, readonly=True) as ro:
            locked: tenantvec.StoreLocked | None = None
            try:
                count = ro.tenant("acme").count()
            except tenantvec.StoreLocked as exc:
                locked = exc
            if locked is None:
                assert count == 1
            else:
                assert "'acme'" in str(locked)
        t.add(E[1:2], ids=["b"])
        assert t.count() == 2
    with tenantvec.Store(root, readonly=True) as ro:  # the writer is gone: serves
        assert ro.tenant("acme").count() == 2


def test_second_writer_is_locked_out(root):
    with tenantvec.Store(root, dim=DIM):
        with pytest.raises(tenantvec.StoreLocked) as ei:
            tenantvec.Store(root)
        assert str(os.getpid()) in str(ei.value)
    with tenantvec.Store(root):  # released on close
        pass


# ------------------------------------------------------------------ close & context manager
def test_close_is_idempotent_and_later_calls_raise(root):
    store = tenantvec.Store(root, dim=DIM)
    t = store.create_tenant("acme")
    t.add(E[:1], ids=["a"])
    store.close()
    store.close()
    for call in (
        lambda: store.tenant("acme"),
        lambda: store.create_tenant("b"),
        lambda: store.has_tenant("acme"),
        store.tenants,
        store.stats,
        lambda: store.drop_tenant("acme"),
        lambda: store.deactivate("acme"),
        t.count,
        lambda: t.add(E[1:2], ids=["b"]),
        lambda: t.query(E[0]),
        lambda: t.get(ids=["a"]),
        lambda: t.delete(ids=["a"]),
        t.info,
    ):
        with pytest.raises(tenantvec.StoreClosed):
            call()
    with tenantvec.Store(root) as again:
        assert again.tenant("acme").count() == 1


def test_context_manager(root):
    with tenantvec.Store(root, dim=DIM) as store:
        assert isinstance(store, tenantvec.Store)
        store.create_tenant("acme").add(E[:1], ids=["a"])
    with pytest.raises(tenantvec.StoreClosed):
        store.tenants()
    with tenantvec.open(root) as store2:  # tenantvec.open is Store
        assert isinstance(store2, tenantvec.Store)
        assert store2.tenant("acme").count() == 1


def test_context_manager_closes_on_error(root):
    def create_then_fail() -> None:
        with tenantvec.Store(root, dim=DIM) as store:
            store.create_tenant("acme")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        create_then_fail()
    with tenantvec.Store(root) as again:  # lock was released
        assert again.tenants() == ["acme"]


def test_data_survives_reopen(root):
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add(E, ids=list("abcd"), metadata=[{"i": i} for i in range(4)], documents=list("ABCD"))
        t.delete(ids=["b"])
        t.upsert(E[0], ids=["c"], metadata={"i": 99})
    with tenantvec.Store(root) as store:
        t = store.tenant("acme")
        assert t.count() == 3
        assert {r.id: r.metadata for r in t.get(where={})} == {"a": {"i": 0}, "c": {"i": 99}, "d": {"i": 3}}
        assert {h.id for h in t.query(E[0], k=2)} == {"a", "c"}


def test_hnsw_tenant_heavy_deletes_never_short(root):
    """Tombstones and a weak graph: hnswlib's "contiguous 2D array" error must never reach
    callers, and a query returns min(k, count) hits."""
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(400, DIM)).astype(np.float32)
    opts = {"dim": DIM, "hnsw_threshold": 50, "hnsw": tenantvec.HnswParams(m=4, ef_construction=8, ef=1)}
    with tenantvec.Store(root, **opts) as store:
        t = store.create_tenant("h")
        t.add(vecs, ids=[str(i) for i in range(400)], metadata=[{"i": i} for i in range(400)])
        assert t.info().index_kind == "hnsw"
        assert t.delete(where={"i": {"$gte": 12}}) == 388
        t.upsert(vecs[:5] * -1, ids=[str(i) for i in range(5)])  # more tombstones
        assert t.count() == 12
        assert t.info().deleted >= 388
        for k in (1, 5, 12, 13, 400):
            for q in vecs[:4]:
                hits = t.query(q, k=k)
                assert len(hits) == min(k, 12)
                assert {h.id for h in hits} <= {str(i) for i in range(12)}
            # ids 0-4 were upserted without metadata: 5..11 still have "i"
            filtered = t.query(vecs[0], k=k, where={"i": {"$gte": 5}})
            assert len(filtered) == min(k, 7)
            assert {h.id for h in filtered} <= {str(i) for i in range(5, 12)}
        assert [len(row) for row in t.query(vecs[:3], k=50)] == [12, 12, 12]
    with tenantvec.Store(root, **opts) as store:  # and after a reopen from the snapshot
        t = store.tenant("h")
        assert t.count() == 12
        assert len(t.query(vecs[7], k=100)) == 12
        assert {h.id for h in t.query(vecs[7], k=100)} == {str(i) for i in range(12)}

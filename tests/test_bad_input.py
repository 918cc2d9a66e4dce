"""Bad input at every public entry point (DESIGN.md invariant 4: bad input never corrupts).

Every rejected call must raise a TenantVecError subclass whose message names the offending
value, and a rejected write must leave the tenant exactly as it was: same count, same
records (ids, metadata, documents, timestamps, vectors), same query results, same
sequence number and index kind. A valid write afterwards must still work.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import tenantvec
from tenantvec import (
    DimensionMismatch,
    DuplicateId,
    InvalidArgument,
    InvalidFilter,
    InvalidTenantId,
    InvalidVector,
    TenantNotFound,
    TenantVecError,
)

DIM = 4
BASE = np.array(
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.float32
)
QUERIES = np.array([[1, 0.2, 0, 0], [0, 0, 1, 1], [0.3, 0.3, 0.3, -1]], dtype=np.float32)
GOOD2 = np.array([[1, 2, 3, 4], [4, 3, 2, 1]], dtype=np.float32)


def nan_row(i: int, value: float = np.nan) -> np.ndarray:
    v = GOOD2.astype(np.float64)
    v[i, 2] = value
    return v


# ------------------------------------------------------------------ fixtures
VARIANTS = {"exact": 2048, "hnsw": 3, "at-threshold": 5}  # variant -> hnsw_threshold


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """One closed store per variant, built once; each test opens a private copy
    (creating tenants fsyncs, copying files does not)."""
    out = {}
    for variant, threshold in VARIANTS.items():
        root = tmp_path_factory.mktemp(f"template-{variant}") / "s"
        with tenantvec.Store(root, dim=DIM, metric="cosine", hnsw_threshold=threshold) as store:
            t = store.create_tenant("acme")
            t.add(
                BASE,
                ids=[f"r{i}" for i in range(5)],
                documents=["zero", None, "two", "three", "four"],
                metadata=[{"kind": "fact", "n": i, "tags": ["a", str(i)]} for i in range(5)],
            )
            store.create_tenant("other").add(BASE[:2], ids=["o0", "o1"])
        out[variant] = root
    return out


@pytest.fixture(params=list(VARIANTS))
def env(request, tmp_path, templates):
    """A store with tenant 'acme' (5 records) and a bystander tenant 'other'.

    "hnsw": the tenant already uses HNSW; "at-threshold": any accepted add would switch
    it from exact to HNSW, so a rejected add must not switch it.
    """
    yield from _open_copy(tmp_path, templates, request.param)


@pytest.fixture
def exact_env(tmp_path, templates):
    """The "exact" variant alone, for store-level entry points."""
    yield from _open_copy(tmp_path, templates, "exact")


def _open_copy(tmp_path, templates, variant):
    root = tmp_path / "s"
    shutil.copytree(templates[variant], root, ignore=shutil.ignore_patterns("LOCK"))
    store = tenantvec.Store(root, hnsw_threshold=VARIANTS[variant], durability="process")
    t = store.tenant("acme")
    assert t.info().index_kind == ("hnsw" if variant == "hnsw" else "exact")
    assert t.count() == 5
    yield store, t
    store.close()


def snapshot(t) -> tuple:
    recs = t.get(where={}, include_vectors=True)
    info = t.info()
    return (
        t.count(),
        [(r.id, r.metadata, r.document, r.created_at, r.updated_at, r.vector.tobytes()) for r in recs],
        [[(h.id, h.distance, h.metadata, h.document) for h in row] for row in t.query(QUERIES, k=10)],
        [h.id for h in t.query(QUERIES[0], k=3, where={"n": {"$gte": 2}})],
        info.count,
        info.seq,
        info.index_kind,
        info.deleted,
    )


def store_snapshot(store) -> tuple:
    listing = sorted(os.listdir(store.path)), sorted(os.listdir(store.path / "tenants"))
    return store.tenants(), listing, snapshot(store.tenant("other"))


def assert_error(exc_info, exc_type, fragments):
    exc = exc_info.value
    assert isinstance(exc, TenantVecError), type(exc)
    assert isinstance(exc, exc_type), type(exc)
    msg = str(exc)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


# ------------------------------------------------------------------ vectors (add and upsert)
VECTOR_CASES = [
    ("dim 2-D", np.ones((2, 5)), DimensionMismatch, ["'acme'", "dimension 5", "expected 4"]),
    ("dim 1-D", np.ones(3), DimensionMismatch, ["'acme'", "dimension 3", "expected 4"]),
    ("dim 512", np.ones((2, 512)), DimensionMismatch, ["'acme'", "512", "expected 4"]),
    ("dim 0", [[]], DimensionMismatch, ["'acme'", "dimension 0"]),
    ("nan", nan_row(1), InvalidVector, ["'acme'", "vector 1", "NaN"]),
    ("inf", nan_row(0, np.inf), InvalidVector, ["'acme'", "vector 0", "inf"]),
    ("-inf", nan_row(1, -np.inf), InvalidVector, ["'acme'", "vector 1", "inf"]),
    ("float32 overflow", nan_row(1, 1e39), InvalidVector, ["'acme'", "vector 1"]),
    ("zero under cosine", np.array([[1, 2, 3, 4], [0, 0, 0, 0]]), InvalidVector, ["'acme'", "vector 1", "zero"]),
    ("negative zero", np.array([[1, 2, 3, 4], [-0.0, 0, 0, -0.0]]), InvalidVector, ["vector 1", "zero"]),
    ("strings", [["a", "b", "c", "d"], ["e", "f", "g", "h"]], InvalidVector, ["'acme'"]),
    ("one str", "abcd", InvalidVector, ["'acme'", "str"]),
    ("None", None, InvalidVector, ["'acme'"]),
    ("dict", {"a": [1, 2, 3, 4]}, InvalidVector, ["'acme'", "dict"]),
    ("bytes", b"\x00" * 16, InvalidVector, ["'acme'"]),
    ("object dtype", [[1, 2, 3, None], [1, 2, 3, 4]], InvalidVector, ["'acme'"]),
    ("bools", np.ones((2, 4), dtype=bool), InvalidVector, ["'acme'", "bool"]),
    ("complex", np.ones((2, 4), dtype=complex), InvalidVector, ["'acme'", "complex"]),
    ("ragged", [[1, 2, 3, 4], [1, 2, 3]], InvalidVector, ["'acme'", "ragged"]),
    ("3-D", np.ones((1, 2, 4)), InvalidVector, ["'acme'", "(1, 2, 4)"]),
    ("0-D", 5.0, InvalidVector, ["'acme'"]),
    ("empty 2-D", np.zeros((0, 4)), InvalidVector, ["'acme'", "(0, 4)"]),
    ("empty list", [], (InvalidVector, DimensionMismatch), ["'acme'"]),
]


def _ids_for(vectors) -> list[str]:
    try:
        arr = np.asarray(vectors)
        n = 1 if arr.ndim <= 1 else len(arr)
    except ValueError:
        n = len(vectors)
    return [f"new{i}" for i in range(max(n, 1))]


@pytest.mark.parametrize("op", ["add", "add-no-ids", "upsert", "upsert-existing"])
@pytest.mark.parametrize(("_case", "vectors", "exc", "fragments"), VECTOR_CASES, ids=[c[0] for c in VECTOR_CASES])
def test_bad_vectors_rejected_and_nothing_changes(env, op, _case, vectors, exc, fragments):
    store, t = env
    before, around = snapshot(t), store_snapshot(store)
    ids = _ids_for(vectors)
    if op == "upsert-existing":
        ids = [f"r{i}" for i in range(len(ids))][:5]
    call = {
        "add": lambda: t.add(vectors, ids=ids),
        "add-no-ids": lambda: t.add(vectors),
        "upsert": lambda: t.upsert(vectors, ids=ids),
        "upsert-existing": lambda: t.upsert(vectors, ids=ids),
    }[op]
    with pytest.raises(TenantVecError) as ei:
        call()
    assert_error(ei, exc, fragments)
    assert snapshot(t) == before
    assert store_snapshot(store) == around
    # the tenant is not wedged (no lock or transaction left behind)
    assert t.add(GOOD2[:1], ids=["after"]) == ["after"]
    assert t.count() == 6


def test_zero_vector_is_fine_under_l2_and_ip(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        for metric in ("l2", "ip"):
            t = store.create_tenant(metric, metric=metric)
            t.add(np.array([[0, 0, 0, 0], [1, 0, 0, 0]]), ids=["zero", "one"])
            assert t.count() == 2
            hits = t.query([0, 0, 0, 0], k=2)
            assert {h.id for h in hits} == {"zero", "one"}
            if metric == "l2":
                assert hits[0].id == "zero"
                assert hits[0].distance == pytest.approx(0.0)
            else:
                assert all(h.distance == pytest.approx(1.0) for h in hits)  # 1 - dot


def test_numeric_inputs_of_any_real_dtype_are_accepted(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add([[1, 2, 3, 4]], ids=["list-int"])
        t.add(np.array([[1, 2, 3, 5]], dtype=np.int8), ids=["int8"])
        t.add(np.array([1, 2, 3, 6], dtype=np.float64), ids=["f64-1d"])
        t.add(np.array([[1, 2, 3, 7]], dtype=np.float16), ids=["f16"])
        t.add(np.asfortranarray(np.array([[1, 2, 3, 8], [2, 2, 2, 2]], dtype=np.float32)), ids=["f1", "f2"])
        t.add(np.array([[1, 2, 3, 4, 9]], dtype=np.float32)[:, :4], ids=["view"])
        assert t.count() == 7
        got = t.get(ids=["f1"], include_vectors=True)[0].vector
        np.testing.assert_array_equal(got, [1, 2, 3, 8])


# ------------------------------------------------------------------ ids, documents, metadata
WRITE_CASES = [
    # (case, op, kwargs, exception, fragments)
    ("ids is a str", "add", {"ids": "ab"}, InvalidArgument, ["'ab'"]),
    ("ids is an int", "add", {"ids": 5}, InvalidArgument, ["5"]),
    ("ids is a set", "add", {"ids": {"x", "y"}}, InvalidArgument, ["set"]),
    ("ids is a dict", "add", {"ids": {"x": 1, "y": 2}}, InvalidArgument, ["dict"]),
    ("int ids", "add", {"ids": [1, 2]}, InvalidArgument, ["'acme'", "id 0", "1"]),
    ("None id", "add", {"ids": ["x", None]}, InvalidArgument, ["id 1", "None"]),
    ("bytes id", "add", {"ids": [b"x", "y"]}, InvalidArgument, ["id 0", "b'x'"]),
    ("empty id", "add", {"ids": ["", "x"]}, InvalidArgument, ["id 0", "''"]),
    ("too long id", "add", {"ids": ["x", "y" * 100_000]}, InvalidArgument, ["id 1"]),
    ("surrogate id", "add", {"ids": ["x", "a\ud800"]}, InvalidArgument, ["id 1"]),
    ("too few ids", "add", {"ids": ["x"]}, InvalidArgument, ["'acme'", "1 ids", "2 vectors"]),
    ("too many ids", "add", {"ids": ["x", "y", "z"]}, InvalidArgument, ["3 ids", "2 vectors"]),
    ("dup in batch", "add", {"ids": ["x", "x"]}, DuplicateId, ["'acme'", "'x'"]),
    ("existing id", "add", {"ids": ["new", "r3"]}, DuplicateId, ["'acme'", "'r3'"]),
    ("existing ids", "add", {"ids": ["r0", "r1"]}, DuplicateId, ["'r0'"]),
    ("upsert dup in batch", "upsert", {"ids": ["r0", "r0"]}, DuplicateId, ["'r0'"]),
    ("upsert without ids", "upsert", {"ids": None}, InvalidArgument, ["'acme'", "ids"]),
    ("upsert int ids", "upsert", {"ids": [0, 1]}, InvalidArgument, ["id 0"]),
    ("upsert too few ids", "upsert", {"ids": ["r0"]}, InvalidArgument, ["1 ids", "2 vectors"]),
    ("documents too short", "add", {"documents": ["d"]}, InvalidArgument, ["1 documents", "2 vectors"]),
    ("documents too long", "upsert", {"documents": ["a", "b", "c"]}, InvalidArgument, ["3 documents"]),
    ("documents is a str", "add", {"documents": "doc"}, InvalidArgument, ["documents", "str"]),
    ("documents is an int", "add", {"documents": 7}, InvalidArgument, ["documents", "int"]),
    ("int document", "add", {"documents": [1, "x"]}, InvalidArgument, ["document 0", "int"]),
    ("bytes document", "upsert", {"documents": ["x", b"y"]}, InvalidArgument, ["document 1", "bytes"]),
    ("dict document", "add", {"documents": ["x", {"t": 1}]}, InvalidArgument, ["document 1", "dict"]),
    ("metadata too short", "add", {"metadata": [{}]}, InvalidArgument, ["1 metadata", "2 vectors"]),
    ("metadata too long", "upsert", {"metadata": [{}, {}, {}]}, InvalidArgument, ["3 metadata"]),
    ("one dict for two", "add", {"metadata": {"k": 1}}, InvalidArgument, ["metadata"]),
    ("metadata is a str", "add", {"metadata": "kind=fact"}, InvalidArgument, ["metadata", "str"]),
    ("metadata item str", "add", {"metadata": ["x", {}]}, InvalidArgument, ["metadata 0", "'x'"]),
    ("metadata item list", "upsert", {"metadata": [{}, [("k", 1)]]}, InvalidArgument, ["metadata 1", "list"]),
    ("int key", "add", {"metadata": [{1: "a"}, {}]}, InvalidArgument, ["metadata 0", "1"]),
    ("tuple key", "add", {"metadata": [{}, {("a",): 1}]}, InvalidArgument, ["metadata 1", "('a',)"]),
    ("empty key", "add", {"metadata": [{"": 1}, {}]}, InvalidArgument, ["metadata 0", "''"]),
    ("reserved created_at", "add", {"metadata": [{"created_at": 5}, {}]}, InvalidArgument,
     ["metadata 0", "'created_at'"]),
    ("reserved updated_at", "upsert", {"metadata": [{}, {"updated_at": 5}]}, InvalidArgument,
     ["metadata 1", "'updated_at'"]),
    ("$ key", "add", {"metadata": [{"$kind": 1}, {}]}, InvalidArgument, ["'$kind'"]),
    ("set value", "add", {"metadata": [{"s": {1, 2}}, {}]}, InvalidArgument, ["metadata 0", "{1, 2}"]),
    ("object value", "add", {"metadata": [{}, {"o": object()}]}, InvalidArgument, ["metadata 1", "object"]),
    ("function value", "upsert", {"metadata": [{"f": len}, {}]}, InvalidArgument, ["metadata 0", "len"]),
    ("huge int", "add", {"metadata": [{"big": 2**70}, {}]}, InvalidArgument, [str(2**70)]),
    ("numpy scalar", "add", {"metadata": [{"x": np.int64(3)}, {}]}, InvalidArgument, ["metadata 0"]),
    ("nested set", "add", {"metadata": [{"n": {"deep": [{1}]}}, {}]}, InvalidArgument, ["metadata 0"]),
]


@pytest.mark.parametrize(("_case", "op", "kwargs", "exc", "fragments"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_bad_write_arguments_rejected_and_nothing_changes(env, _case, op, kwargs, exc, fragments):
    store, t = env
    before, around = snapshot(t), store_snapshot(store)
    args = {"ids": ["new0", "new1"] if op == "add" else ["r0", "new1"], **kwargs}
    with pytest.raises(TenantVecError) as ei:
        getattr(t, op)(GOOD2, **args)
    assert_error(ei, exc, fragments)
    assert snapshot(t) == before
    assert store_snapshot(store) == around
    assert t.add(GOOD2[:1], ids=["after"]) == ["after"]


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"documents": [1, "x"]}, 1),
        ({"documents": ["x", b"yy"]}, b"yy"),
        ({"documents": ["x", {"t": 1}]}, {"t": 1}),
        ({"documents": 7}, 7),
        ({"documents": "doc"}, "doc"),
        ({"metadata": "kind=fact"}, "kind=fact"),
        ({"metadata": {"k": 1}}, {"k": 1}),
        ({"metadata": 7}, 7),
    ],
    ids=repr,
)
def test_document_and_metadata_errors_show_the_value(exact_env, kwargs, value):
    _, t = exact_env
    with pytest.raises(InvalidArgument) as ei:
        t.add(GOOD2, ids=["new0", "new1"], **kwargs)
    assert repr(value) in str(ei.value)


def test_partially_new_batch_adds_nothing(env):
    _, t = env
    before = snapshot(t)
    with pytest.raises(DuplicateId):
        t.add(np.vstack([GOOD2, GOOD2]), ids=["n1", "n2", "n3", "r4"])
    assert snapshot(t) == before
    assert t.get(ids=["n1", "n2", "n3"]) == []


@pytest.mark.parametrize("op", ["add", "upsert"])
@pytest.mark.parametrize(
    "rid",
    ["x" * 511, "x" * 512, "😀" * 127, "😀" * 128, "é" * 300, "y" * 100_000],
    ids=["511 ascii", "512 ascii", "127 emoji", "128 emoji", "300 latin", "100k ascii"],
)
def test_long_record_ids_accepted_or_cleanly_rejected(env, rid, op):
    """Whatever the length limit, a long id is stored and found again, or refused with
    InvalidArgument and no change; never an LMDB error (LMDB keys hold 511 bytes)."""
    _, t = env
    before = snapshot(t)
    refused: TenantVecError | None = None
    try:
        getattr(t, op)(GOOD2[:1], ids=[rid])
    except TenantVecError as exc:
        refused = exc
    except Exception as exc:  # anything else leaks an implementation error
        raise AssertionError(f"{type(exc).__module__}.{type(exc).__name__}: {exc}") from exc
    if refused is not None:
        assert isinstance(refused, InvalidArgument)
        assert snapshot(t) == before
    else:
        assert [r.id for r in t.get(ids=[rid])] == [rid]
        assert t.delete(ids=[rid]) == 1


# ------------------------------------------------------------------ delete
DELETE_CASES = [
    ("no arguments", {}, InvalidArgument, ["'acme'", "ids", "where"]),
    ("explicit Nones", {"ids": None, "where": None}, InvalidArgument, ["where"]),
    ("ids is a str", {"ids": "r0"}, InvalidArgument, ["'r0'"]),
    ("ids is an int", {"ids": 0}, InvalidArgument, ["0"]),
    ("int id", {"ids": ["r0", 1]}, InvalidArgument, ["id 1", "1"]),
    ("empty id", {"ids": ["r0", ""]}, InvalidArgument, ["id 1", "''"]),
    ("where not a dict", {"where": "kind=fact"}, InvalidFilter, ["where"]),
    ("where list", {"where": [{"kind": "fact"}]}, InvalidFilter, ["where"]),
    ("bad operator", {"where": {"n": {"$gt": [1]}}}, InvalidFilter, ["where.n", "$gt"]),
    ("bad filter with ids", {"ids": ["r0", "r1"], "where": {"$or": []}}, InvalidFilter, ["where.$or"]),
    ("bad ids with filter", {"ids": "r0", "where": {}}, InvalidArgument, ["'r0'"]),
    ("half bad $and", {"where": {"$and": [{"kind": "fact"}, {"n": {"$bogus": 1}}]}}, InvalidFilter,
     ["where.$and[1].n", "$bogus"]),
]


@pytest.mark.parametrize(("_case", "kwargs", "exc", "fragments"), DELETE_CASES, ids=[c[0] for c in DELETE_CASES])
def test_bad_delete_deletes_nothing(env, _case, kwargs, exc, fragments):
    store, t = env
    before, around = snapshot(t), store_snapshot(store)
    with pytest.raises(TenantVecError) as ei:
        t.delete(**kwargs)
    assert_error(ei, exc, fragments)
    assert snapshot(t) == before
    assert store_snapshot(store) == around
    assert t.delete(ids=["r0"]) == 1


# ------------------------------------------------------------------ reads
QUERY_CASES = [
    ("dim", {"vector": np.ones(5)}, DimensionMismatch, ["'acme'", "dimension 5", "expected 4"]),
    ("dim 2-D", {"vector": np.ones((2, 3))}, DimensionMismatch, ["'acme'", "dimension 3", "expected 4"]),
    ("nan", {"vector": [1, np.nan, 0, 0]}, InvalidVector, ["'acme'", "NaN"]),
    ("inf row 1", {"vector": [[1, 0, 0, 0], [np.inf, 0, 0, 0]]}, InvalidVector, ["'acme'", "1"]),
    ("zero cosine", {"vector": [0, 0, 0, 0]}, InvalidVector, ["'acme'", "zero"]),
    ("3-D", {"vector": np.ones((1, 1, 4))}, InvalidVector, ["(1, 1, 4)"]),
    ("strings", {"vector": ["a", "b", "c", "d"]}, InvalidVector, ["'acme'"]),
    ("None", {"vector": None}, InvalidVector, ["'acme'"]),
    ("empty", {"vector": np.zeros((0, 4))}, InvalidVector, ["'acme'"]),
    ("ragged", {"vector": [[1, 0, 0, 0], [1, 0]]}, InvalidVector, ["'acme'"]),
    ("k=0", {"k": 0}, InvalidArgument, ["k", "0"]),
    ("k=-1", {"k": -1}, InvalidArgument, ["k", "-1"]),
    ("k=1.5", {"k": 1.5}, InvalidArgument, ["k", "1.5"]),
    ("k=2.0", {"k": 2.0}, InvalidArgument, ["k", "2.0"]),
    ("k=True", {"k": True}, InvalidArgument, ["k", "True"]),
    ("k=False", {"k": False}, InvalidArgument, ["k", "False"]),
    ("k='3'", {"k": "3"}, InvalidArgument, ["k", "'3'"]),
    ("k=None", {"k": None}, InvalidArgument, ["k", "None"]),
    ("where str", {"where": "kind"}, InvalidFilter, ["where"]),
    ("where bad op", {"where": {"kind": {"$like": "f%"}}}, InvalidFilter, ["where.kind", "$like"]),
]


@pytest.mark.parametrize(("_case", "kwargs", "exc", "fragments"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_bad_query(env, _case, kwargs, exc, fragments):
    _, t = env
    before = snapshot(t)
    args = {"vector": QUERIES[0], "k": 3, **kwargs}
    with pytest.raises(TenantVecError) as ei:
        t.query(args.pop("vector"), **args)
    assert_error(ei, exc, fragments)
    assert snapshot(t) == before


def test_query_accepts_numpy_integer_k(env):
    _, t = env
    assert len(t.query(QUERIES[0], k=np.int64(2))) == 2
    assert len(t.query(QUERIES[0], k=np.int32(100))) == 5


GET_CASES = [
    ("ids is a str", {"ids": "r0"}, InvalidArgument, ["'r0'"]),
    ("int id", {"ids": [0]}, InvalidArgument, ["id 0"]),
    ("empty id", {"ids": [""]}, InvalidArgument, ["''"]),
    ("where str", {"where": "kind"}, InvalidFilter, ["where"]),
    ("where nested dict", {"where": {"kind": {"value": "fact"}}}, InvalidFilter, ["where.kind"]),
    ("limit -1", {"limit": -1}, InvalidArgument, ["limit", "-1"]),
    ("limit 1.5", {"limit": 1.5}, InvalidArgument, ["limit", "1.5"]),
    ("limit True", {"limit": True}, InvalidArgument, ["limit", "True"]),
    ("limit '3'", {"limit": "3"}, InvalidArgument, ["limit", "'3'"]),
    ("offset -1", {"offset": -1}, InvalidArgument, ["offset", "-1"]),
    ("offset None", {"offset": None}, InvalidArgument, ["offset", "None"]),
    ("offset 0.5", {"offset": 0.5}, InvalidArgument, ["offset", "0.5"]),
    ("offset False", {"offset": False}, InvalidArgument, ["offset", "False"]),
]


@pytest.mark.parametrize(("_case", "kwargs", "exc", "fragments"), GET_CASES, ids=[c[0] for c in GET_CASES])
def test_bad_get(env, _case, kwargs, exc, fragments):
    _, t = env
    before = snapshot(t)
    with pytest.raises(TenantVecError) as ei:
        t.get(**kwargs)
    assert_error(ei, exc, fragments)
    assert snapshot(t) == before


@pytest.mark.parametrize(
    "where",
    ["kind", ["kind"], {"$nor": []}, {"n": {"$in": 3}}, {"n": {"$exists": "no"}}, {"n": float("nan")}],
    ids=repr,
)
def test_bad_count(env, where):
    _, t = env
    before = snapshot(t)
    with pytest.raises(InvalidFilter) as ei:
        t.count(where=where)
    assert str(ei.value).startswith("where")
    assert snapshot(t) == before


# ------------------------------------------------------------------ store-level entry points
BAD_TENANT_IDS = ["", "a/b", "..", ".", " acme", "acme\n", "x" * 129, "a\\b", "\x00", 123, None, b"acme"]


@pytest.mark.parametrize("bad", BAD_TENANT_IDS, ids=repr)
@pytest.mark.parametrize(
    "entry",
    ["create_tenant", "tenant", "tenant-create", "has_tenant", "drop_tenant", "deactivate", "activate"],
)
def test_bad_tenant_id_everywhere(exact_env, entry, bad):
    store, t = exact_env
    before, around = snapshot(t), store_snapshot(store)
    call = {
        "create_tenant": lambda: store.create_tenant(bad),
        "tenant": lambda: store.tenant(bad),
        "tenant-create": lambda: store.tenant(bad, create=True),
        "has_tenant": lambda: store.has_tenant(bad),
        "drop_tenant": lambda: store.drop_tenant(bad),
        "deactivate": lambda: store.deactivate(bad),
        "activate": lambda: store.activate(bad),
    }[entry]
    with pytest.raises(InvalidTenantId) as ei:
        call()
    assert_error(ei, InvalidTenantId, [repr(bad)])
    assert snapshot(t) == before
    assert store_snapshot(store) == around


@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 0}, {"dim": -3}, {"dim": "4"}, {"dim": 4.0}, {"dim": True}, {"metric": "cos"}, {"metric": "L2"},
     {"metric": 1}, {"dim": 4, "metric": "dot"}],
    ids=repr,
)
@pytest.mark.parametrize("entry", ["create_tenant", "tenant-create"])
def test_bad_tenant_options_create_nothing(exact_env, entry, kwargs):
    store, _ = exact_env
    around = store_snapshot(store)

    def create() -> object:
        if entry == "create_tenant":
            return store.create_tenant("newcomer", **kwargs)
        return store.tenant("newcomer", create=True, **kwargs)

    with pytest.raises(InvalidArgument) as ei:
        create()
    assert_error(ei, InvalidArgument, [repr(v) for v in kwargs.values() if not (type(v) is int and v == 4)])
    assert store_snapshot(store) == around
    assert not store.has_tenant("newcomer")


@pytest.mark.parametrize("entry", ["tenant", "drop_tenant", "deactivate", "activate"])
def test_unknown_tenant(exact_env, entry):
    store, t = exact_env
    before, around = snapshot(t), store_snapshot(store)
    with pytest.raises(TenantNotFound) as ei:
        getattr(store, entry)("ghost")
    assert_error(ei, TenantNotFound, ["'ghost'"])
    assert snapshot(t) == before
    assert store_snapshot(store) == around
    assert not store.has_tenant("ghost")


@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 0}, {"metric": "euclid"}, {"max_hot": 0}, {"memory_budget": "1XB"}, {"durability": "maybe"},
     {"readonly": "no"}, {"hnsw_threshold": -1}],
    ids=repr,
)
def test_bad_store_options_create_nothing(tmp_path, kwargs):
    root = tmp_path / "fresh"
    with pytest.raises(InvalidArgument) as ei:
        tenantvec.Store(root, **kwargs)
    assert_error(ei, InvalidArgument, [repr(next(iter(kwargs.values())))])
    assert not root.exists()


def test_bad_store_options_leave_existing_store_alone(tmp_path):
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=DIM) as store:
        store.create_tenant("acme").add(BASE, ids=[f"r{i}" for i in range(5)])
    listing = sorted(os.listdir(root))
    config = (root / "tenantvec.json").read_bytes()
    for kwargs in ({"dim": 8}, {"metric": "l2"}, {"max_hot": -1}):
        with pytest.raises(TenantVecError):
            tenantvec.Store(root, **kwargs)
    assert sorted(os.listdir(root)) == listing
    assert (root / "tenantvec.json").read_bytes() == config
    with tenantvec.Store(root) as store:  # not locked, not changed
        assert store.tenant("acme").count() == 5


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize("scale", [1e-25, 1e25])
def test_cosine_extreme_magnitudes_rejected_or_exact(tmp_path, kind, scale):
    threshold = {"exact": 2048, "hnsw": 0}[kind]
    with tenantvec.Store(tmp_path / "s", dim=DIM, hnsw_threshold=threshold) as store:
        t = store.create_tenant("acme")
        t.add(np.array([[0, 0, 1, 1], [1, 0, 0, 0]], dtype=np.float32), ids=["b", "c"])
        assert t.info().index_kind == kind
        before = snapshot(t)
        direction = np.array([1, 2, 0, 0], dtype=np.float64)
        try:
            t.add((direction * scale).astype(np.float32), ids=["x"])
        except InvalidVector:
            assert snapshot(t) == before
            return
        for q in (direction, direction * scale):
            try:
                hits = t.query(q, k=3)
            except InvalidVector:
                continue
            dists = {h.id: h.distance for h in hits}
            assert set(dists) == {"x", "b", "c"}
            assert all(np.isfinite(d) and -1e-5 <= d <= 2 + 1e-5 for d in dists.values()), dists
            assert dists["x"] == pytest.approx(0.0, abs=1e-5), dists
            assert dists["c"] == pytest.approx(1 - 1 / np.sqrt(5), abs=1e-5), dists


@pytest.mark.parametrize("path", [None, 123, 1.5], ids=repr)
def test_store_path_of_the_wrong_type(tmp_path, path):
    before = sorted(os.listdir(tmp_path))
    with pytest.raises((TypeError, TenantVecError)):
        tenantvec.Store(path)
    assert sorted(os.listdir(tmp_path)) == before


def test_store_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("precious")
    for path in (f, f / "sub"):
        with pytest.raises((OSError, TenantVecError)):
            tenantvec.Store(path)
    assert f.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_readonly_store_where_there_is_none(tmp_path):
    with pytest.raises(TenantVecError) as ei:
        tenantvec.Store(tmp_path / "nothing", readonly=True)
    assert "nothing" in str(ei.value)
    assert not (tmp_path / "nothing").exists()

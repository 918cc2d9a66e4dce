"""``where`` filters through the public API, against the reference evaluator of tests/oracles.py.

The reference (``ref_match``) implements DESIGN.md's "Metadata filters" section and does
not use tenantvec._filters. Hypothesis generates random metadata and random valid filters
and checks ``get``, ``count``, ``delete`` and filtered ``query`` against it (filtered
``query`` also against the oracles' exact search).
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import distances, nearest, ref_match, search

import tenantvec
from tenantvec.errors import InvalidFilter, TenantVecError

DIM = 6
HYP = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
VECS = np.random.default_rng(1234).normal(size=(256, DIM)).astype(np.float32)

# ------------------------------------------------------------------ reference evaluator
def test_reference_evaluator_sanity():
    assert ref_match({"a": 1}, {"a": 1.0})
    assert not ref_match({"a": 1}, {"a": True})
    assert not ref_match({"a": True}, {"a": 1})
    assert ref_match({"a": {"$ne": 1}}, {})
    assert not ref_match({"a": None}, {})
    assert ref_match({"$not": {"a": {"$gt": 1}}}, {})
    assert ref_match({"t": {"$contains": "x"}}, {"t": ["y", "x"]})
    assert not ref_match({"t": "x"}, {"t": ["x"]})
    assert ref_match({}, {"a": 1})


# ------------------------------------------------------------------ strategies
FIELDS = ["kind", "n", "score", "flag", "tags", "note"]
SCALARS = st.one_of(
    st.sampled_from(["a", "b", "fact", "2024-01-01", "2024-06-30", ""]),
    st.sampled_from([-2, 0, 1, 2, 3, 10**12, 2**60]),
    st.sampled_from([-1.5, 0.0, 1.0, 2.5, 1e-9]),
    st.booleans(),
    st.none(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4))
METADATA = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=len(FIELDS))
RECORDS = st.lists(st.one_of(METADATA, st.none()), min_size=0, max_size=30)

RANGE_VALUES = st.one_of(
    st.sampled_from([-2, 0, 1, 2, 2.5, -1.5, 1e-9]), st.sampled_from(["a", "b", "2024-03-01", ""])
)


def field_ops():
    return st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne", "$contains"]), SCALARS),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), RANGE_VALUES),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(SCALARS, max_size=4)),
        st.tuples(st.just("$exists"), st.booleans()),
    )


LEAF = st.one_of(
    st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS), SCALARS),  # equality shorthand
    st.builds(
        lambda f, ops: {f: dict(ops)},
        st.sampled_from(FIELDS),
        st.lists(field_ops(), min_size=1, max_size=3, unique_by=lambda t: t[0]),
    ),
)


def _extend(children):
    return st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, children),
        # several keys in one dict are ANDed
        st.builds(lambda a, b: {**a, **b}, children, children),
    )


FILTERS = st.recursive(LEAF, _extend, max_leaves=6) | st.just({})

_counter = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with tenantvec.Store(tmp_path_factory.mktemp("filters"), dim=DIM, metric="cosine",
                         durability="process", hnsw_threshold=10) as s:
        yield s


def fresh_tenant(store, metas, *, hnsw: bool = False):
    """A new tenant holding one record per metadata entry (ids r0, r1, ...).

    The store's hnsw_threshold is 10: ``hnsw=True`` pads the tenant past it with records
    whose metadata is ``{"pad": True}`` so the tenant uses an HNSW index.
    """
    t = store.create_tenant(f"t{next(_counter)}")
    metas = list(metas)
    if hnsw and len(metas) <= 10:
        metas += [{"pad": True}] * (11 - len(metas))
    if metas:
        n = len(metas)
        t.add(VECS[:n], ids=[f"r{i}" for i in range(n)], metadata=metas,
              documents=[f"doc {i}" for i in range(n)])
    if hnsw:
        assert t.info().index_kind == "hnsw"
    return t


def fields_of(rec) -> dict:
    return {**rec.metadata, "created_at": rec.created_at, "updated_at": rec.updated_at}


def check_query(t, q, k, where, everything):
    matching = [r for r in everything if ref_match(where, fields_of(r))]
    hits = t.query(q, k=k, where=where)
    by_id = {r.id: r for r in everything}
    want_ids, want_d = search("cosine", {r.id: r.vector for r in matching}, q, k + 1)  # one past k: boundary ties
    boundary_tie = len(want_d) > k and round(want_d[k], 5) == round(want_d[k - 1], 5)
    want_ids, want_d = want_ids[:k], want_d[:k]
    assert len(hits) == min(k, len(matching)), (where, k)
    ids = [h.id for h in hits]
    assert len(set(ids)) == len(ids)
    for h in hits:
        assert ref_match(where, fields_of(by_id[h.id])), f"non-matching record {h.id} for {where}"
        assert h.metadata == by_id[h.id].metadata
        assert h.document == by_id[h.id].document
    np.testing.assert_allclose([h.distance for h in hits], want_d, rtol=1e-4, atol=1e-5)
    # ties aside (also with the first record past k), the same records
    if len(set(np.round(want_d, 5))) == len(want_d) and not boundary_tie:
        assert ids == want_ids


# ------------------------------------------------------------------ property tests
@HYP
@given(metas=RECORDS, filters=st.lists(FILTERS, min_size=1, max_size=4))
def test_get_and_count_agree_with_reference(store, metas, filters):
    t = fresh_tenant(store, metas)
    try:
        everything = t.get(where={})
        assert len(everything) == len(metas)
        for where in filters:
            want = [r.id for r in everything if ref_match(where, fields_of(r))]
            got = [r.id for r in t.get(where=where)]
            assert got == want, where  # insertion order
            assert t.count(where=where) == len(want), where
            # combined with ids: the intersection, in the order asked
            asked = [f"r{i}" for i in reversed(range(len(metas)))] + ["nope"]
            got_ids = [r.id for r in t.get(ids=asked, where=where)]
            assert got_ids == [i for i in asked if i in set(want)]
    finally:
        store.drop_tenant(t.id)


@HYP
@given(metas=RECORDS, where=FILTERS)
def test_delete_agrees_with_reference(store, metas, where):
    t = fresh_tenant(store, metas)
    try:
        before = t.get(where={}, include_vectors=True)
        doomed = {r.id for r in before if ref_match(where, fields_of(r))}
        assert t.delete(where=where) == len(doomed)
        left = t.get(where={})
        assert [r.id for r in left] == [r.id for r in before if r.id not in doomed]
        assert t.count() == len(before) - len(doomed)
        for r in left:
            assert t.get(ids=[r.id])[0].metadata == r.metadata
        if left:  # the index no longer holds deleted records
            hits = t.query(VECS[0], k=len(before))
            assert {h.id for h in hits} == {r.id for r in left}
        # a second delete finds nothing
        assert t.delete(where=where) == 0
    finally:
        store.drop_tenant(t.id)


MUTATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(0, 40), st.one_of(METADATA, st.none())),
        st.tuples(st.just("delete"), st.integers(0, 40), st.none()),
        st.tuples(st.just("add"), st.integers(0, 40), st.one_of(METADATA, st.none())),
    ),
    max_size=12,
)


@HYP
@given(metas=RECORDS, mutations=MUTATIONS, filters=st.lists(FILTERS, min_size=1, max_size=4),
       hnsw=st.booleans())
def test_filters_stay_right_after_writes(store, metas, mutations, filters, hnsw):
    """Filtered calls first (so any per-field index is built), then upserts, deletes and
    adds, then the filters again: they must see exactly the current records."""
    t = fresh_tenant(store, metas, hnsw=hnsw)
    try:
        for where in filters:
            t.count(where=where)
        next_new = 0
        for op, i, meta in mutations:
            live = [r.id for r in t.get(where={})]
            if op == "add":
                t.add(VECS[100 + next_new], ids=[f"n{next_new}"], metadata=meta)
                next_new += 1
            elif live:
                rid = live[i % len(live)]
                if op == "delete":
                    assert t.delete(ids=[rid]) == 1
                else:
                    t.upsert(VECS[200 + i], ids=[rid], metadata=meta)
        everything = t.get(where={}, include_vectors=True)
        for where in filters:
            want = [r.id for r in everything if ref_match(where, fields_of(r))]
            assert [r.id for r in t.get(where=where)] == want, where
            assert t.count(where=where) == len(want), where
            check_query(t, VECS[7] + 0.01, 5, where, everything)
    finally:
        store.drop_tenant(t.id)


@HYP
@given(
    metas=RECORDS,
    filters=st.lists(FILTERS, min_size=1, max_size=3),
    k=st.integers(1, 12),
    qi=st.integers(0, 255),
    hnsw=st.booleans(),
)
def test_filtered_query_is_exact_top_k(store, metas, filters, k, qi, hnsw):
    t = fresh_tenant(store, metas, hnsw=hnsw)
    try:
        everything = t.get(where={}, include_vectors=True)
        q = VECS[qi] + 0.01
        for where in filters:
            check_query(t, q, k, where, everything)
    finally:
        store.drop_tenant(t.id)


# ------------------------------------------------------------------ filtered query, larger
def test_filtered_query_hnsw_tenant_selective_filters(tmp_path):
    """An HNSW tenant: a filter matching few records must still return min(k, matching)."""
    rng = np.random.default_rng(7)
    n = 3000
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    metas = [{"g": i % 100, "even": i % 2 == 0, "s": f"k{i % 7}"} for i in range(n)]
    with tenantvec.Store(tmp_path / "s", dim=DIM, durability="process", hnsw_threshold=100,
                         hnsw=tenantvec.HnswParams(m=8, ef_construction=64, ef=16)) as store:
        t = store.create_tenant("big")
        t.add(vecs, ids=[f"r{i}" for i in range(n)], metadata=metas)
        assert t.info().index_kind == "hnsw"
        everything = t.get(where={}, include_vectors=True)
        qs = rng.normal(size=(5, DIM)).astype(np.float32)
        for where in ({"g": 3}, {"g": {"$in": [1, 2]}}, {"$and": [{"even": True}, {"g": {"$lt": 4}}]},
                      {"s": "k3", "g": {"$gte": 90}}, {"g": {"$gt": 1000}}, {"even": False}):
            for q in qs:
                for k in (1, 10, 40):
                    check_query(t, q, k, where, everything)


def test_filtered_query_finds_far_matching_records(tmp_path):
    """Adversarial: the matching records are the ones FARTHEST from the query, for matching
    shares from 0.25% to 97.5% of an HNSW tenant. Every plan must still return
    min(k, matching) matching hits with their true distances, and the true top-k."""
    rng = np.random.default_rng(9)
    n = 4000
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    q = np.zeros(DIM, dtype=np.float32)
    q[0] = 1.0
    d = distances("cosine", vecs, q)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-d, kind="stable")] = np.arange(n)  # 0 = farthest from q
    with tenantvec.Store(tmp_path / "s", dim=DIM, durability="process", hnsw_threshold=100,
                         hnsw=tenantvec.HnswParams(m=8, ef_construction=64, ef=16)) as store:
        t = store.create_tenant("far")
        t.add(vecs, ids=[f"r{i}" for i in range(n)], metadata=[{"rank": int(r)} for r in rank])
        assert t.info().index_kind == "hnsw"
        found = total = 0
        for m in (10, 200, 1000, 2500, 3900):
            where = {"rank": {"$lt": m}}
            truth_order = nearest(d, m, allowed=rank < m)
            for k in (1, 10, 50):
                hits = t.query(q, k=k, where=where)
                assert len(hits) == min(k, m), (m, k)
                for h in hits:
                    i = int(h.id[1:])
                    assert rank[i] < m, f"non-matching {h.id} for {where}"
                    assert h.distance == pytest.approx(d[i], abs=1e-4)
                got, want = {h.id for h in hits}, {f"r{i}" for i in truth_order[:k]}
                if m <= 1000:  # a small matching set: exact
                    assert got == want, (m, k)
                else:  # large matching sets may be answered by HNSW: recall
                    found += len(got & want)
                    total += len(want)
        assert found / total >= 0.95


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("scale", [1e-5, 1.0, 1e5])
def test_filtered_query_exact_at_extreme_scales(tmp_path, metric, scale):
    """Vectors of any finite float32 scale are valid; filtered top-k must stay exact
    (e.g. no precision loss from lower-precision copies of the vectors)."""
    rng = np.random.default_rng(10)
    n = 600
    vecs = (rng.normal(size=(n, DIM)) * scale).astype(np.float32)
    with tenantvec.Store(tmp_path / "s", dim=DIM, metric=metric, durability="process",
                         hnsw_threshold=100) as store:
        t = store.create_tenant("x")
        t.add(vecs, ids=[f"r{i}" for i in range(n)], metadata=[{"g": i % 5} for i in range(n)])
        assert t.info().index_kind == "hnsw"
        for _ in range(5):
            q = (rng.normal(size=DIM) * scale).astype(np.float32)
            d = distances(metric, vecs, q)
            for k in (1, 5):
                hits = t.query(q, k=k, where={"g": 2})
                assert len(hits) == k
                order = nearest(d, k + 1, allowed=np.arange(n) % 5 == 2)  # one past k: a tie at the cut
                want, srt = order[:k], d[order]
                np.testing.assert_allclose([h.distance for h in hits], d[want], rtol=1e-4, atol=1e-6)
                if srt[k] - srt[k - 1] > 1e-4 * max(1.0, abs(srt[k])):  # no tie at the cut
                    assert {h.id for h in hits} == {f"r{i}" for i in want}, (metric, scale, k)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_filtered_l2_query_far_from_origin(tmp_path, kind):
    """l2 vectors with a large common offset: filtered (and unfiltered) top-k stay exact."""
    rng = np.random.default_rng(11)
    n = 300
    vecs = (rng.normal(size=(n, DIM)) + 1000.0).astype(np.float32)
    threshold = {"exact": 2048, "hnsw": 100}[kind]
    with tenantvec.Store(tmp_path / "s", dim=DIM, metric="l2", durability="process",
                         hnsw_threshold=threshold) as store:
        t = store.create_tenant("x")
        t.add(vecs, ids=[f"r{i}" for i in range(n)], metadata=[{"g": i % 3} for i in range(n)])
        assert t.info().index_kind == kind
        for _ in range(5):
            q = (rng.normal(size=DIM) + 1000.0).astype(np.float32)
            d = distances("l2", vecs, q)
            hits = t.query(q, k=10, where={"g": 1})
            want = nearest(d, 10, allowed=np.arange(n) % 3 == 1)
            np.testing.assert_allclose([h.distance for h in hits], d[want], rtol=1e-4)
            assert {h.id for h in hits} == {f"r{i}" for i in want}


def test_filtered_query_hnsw_filtered_strategy(tmp_path):
    """More than 4096 matching records: the filter runs inside the HNSW search."""
    rng = np.random.default_rng(8)
    n = 5000
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    metas = [{"g": i % 10} for i in range(n)]
    with tenantvec.Store(tmp_path / "s", dim=DIM, durability="process", hnsw_threshold=100,
                         hnsw=tenantvec.HnswParams(m=8, ef_construction=48, ef=32)) as store:
        t = store.create_tenant("big")
        t.add(vecs, ids=[f"r{i}" for i in range(n)], metadata=metas)
        matching = {f"r{i}" for i in range(n) if i % 10 != 3}
        where = {"g": {"$ne": 3}}
        found = total = 0
        for q in rng.normal(size=(10, DIM)).astype(np.float32):
            hits, plan = t.query(q, k=20, where=where, explain=True)
            assert plan.matching == len(matching)
            assert plan.strategy.startswith("hnsw")  # the path this test is for
            assert len(hits) == 20
            assert {h.id for h in hits} <= matching
            d = distances("cosine", vecs, q)
            truth = {f"r{i}" for i in nearest(d, 20, allowed=np.arange(n) % 10 != 3)}
            found += len(truth & {h.id for h in hits})
            total += 20
            for h in hits:
                assert h.distance == pytest.approx(d[int(h.id[1:])], abs=1e-4)
        assert found / total >= 0.9
        # k beyond the matching count
        hits = t.query(vecs[0], k=n, where=where)
        assert len(hits) == len(matching)
        assert {h.id for h in hits} == matching


# ------------------------------------------------------------------ pinned semantics
SEMANTIC_RECORDS = {
    "int1": {"v": 1},
    "float1": {"v": 1.0},
    "true": {"v": True},
    "false": {"v": False},
    "zero": {"v": 0},
    "str1": {"v": "1"},
    "none": {"v": None},
    "missing": {"other": 1},
    "list": {"v": [1, "a", True]},
    "date_a": {"v": "2024-01-15"},
    "date_b": {"v": "2024-06-30"},
    "big": {"v": 2.5},
}

SEMANTIC_CASES = [
    ({"v": 1}, {"int1", "float1"}),
    ({"v": 1.0}, {"int1", "float1"}),
    ({"v": True}, {"true"}),
    ({"v": False}, {"false"}),
    ({"v": 0}, {"zero"}),
    ({"v": "1"}, {"str1"}),
    ({"v": None}, {"none"}),
    ({"v": {"$eq": 1}}, {"int1", "float1"}),
    ({"v": {"$ne": 1}}, set(SEMANTIC_RECORDS) - {"int1", "float1"}),
    ({"v": {"$gt": 0}}, {"int1", "float1", "big"}),
    ({"v": {"$gte": 1}}, {"int1", "float1", "big"}),
    ({"v": {"$lt": 1}}, {"zero"}),
    ({"v": {"$lte": 1}}, {"int1", "float1", "zero"}),
    ({"v": {"$gt": 0.5, "$lt": 2}}, {"int1", "float1"}),
    ({"v": {"$gte": "2024-01-01"}}, {"date_a", "date_b"}),
    ({"v": {"$gte": "2024-02-01", "$lte": "2024-12-31"}}, {"date_b"}),
    ({"v": {"$gte": "1"}}, {"str1", "date_a", "date_b"}),
    ({"v": {"$in": [1, "a"]}}, {"int1", "float1"}),
    ({"v": {"$in": [True, None]}}, {"true", "none"}),
    ({"v": {"$in": []}}, set()),
    ({"v": {"$nin": [1, True]}}, set(SEMANTIC_RECORDS) - {"int1", "float1", "true"}),
    ({"v": {"$nin": []}}, set(SEMANTIC_RECORDS)),
    ({"v": {"$exists": True}}, set(SEMANTIC_RECORDS) - {"missing"}),
    ({"v": {"$exists": False}}, {"missing"}),
    ({"v": {"$contains": 1}}, {"list"}),
    ({"v": {"$contains": 1.0}}, {"list"}),
    ({"v": {"$contains": "a"}}, {"list"}),
    ({"v": {"$contains": True}}, {"list"}),
    ({"v": {"$contains": False}}, set()),
    ({"v": {"$contains": "1"}}, set()),
    ({"$not": {"v": 1}}, set(SEMANTIC_RECORDS) - {"int1", "float1"}),
    ({"$not": {"v": {"$gt": 0}}}, set(SEMANTIC_RECORDS) - {"int1", "float1", "big"}),
    ({"$or": [{"v": True}, {"other": 1}]}, {"true", "missing"}),
    ({"$and": [{"v": {"$exists": True}}, {"v": {"$ne": None}}, {"v": {"$lt": 100}}]}, {"int1", "float1", "zero", "big"}),
    ({"other": {"$gt": 0}}, {"missing"}),
    ({"v": 1, "other": 1}, set()),
    ({}, set(SEMANTIC_RECORDS)),
]


HUGE = {"v": 2**60}  # an int float64 cannot hold exactly


@pytest.fixture(scope="module", params=["plain", "with-huge-int"])
def semantic(request, tmp_path_factory):
    """The SEMANTIC_RECORDS tenant; "with-huge-int" adds a record whose ``v`` is 2**60,
    which takes filters on ``v`` off any float64 column and onto another code path."""
    with tenantvec.Store(tmp_path_factory.mktemp("sem"), dim=DIM, durability="process") as s:
        t = s.create_tenant("sem")
        records = dict(SEMANTIC_RECORDS)
        if request.param == "with-huge-int":
            records["huge"] = HUGE
        ids = list(records)
        t.add(VECS[: len(ids)], ids=ids, metadata=[records[i] for i in ids])
        yield t, request.param


@pytest.mark.parametrize(("where", "expected"), SEMANTIC_CASES, ids=lambda v: repr(v)[:60])
def test_pinned_semantics(semantic, where, expected):
    t, variant = semantic
    # the reference agrees with the pinned expectation
    assert {i for i, m in SEMANTIC_RECORDS.items() if ref_match(where, m)} == expected
    if variant == "with-huge-int" and ref_match(where, HUGE):
        expected = expected | {"huge"}
    assert {r.id for r in t.get(where=where)} == expected
    assert t.count(where=where) == len(expected)
    assert {h.id for h in t.query(VECS[0], k=50, where=where)} == expected
    asked = sorted(expected | {"int1", "missing", "list"})
    assert [r.id for r in t.get(ids=asked, where=where)] == [i for i in asked if i in expected]


@pytest.mark.parametrize(
    ("where", "expected"),
    [({"v": 2**60}, {"huge"}), ({"v": 2**60 + 1}, set()), ({"v": {"$gt": 2**59}}, {"huge"}),
     ({"v": {"$in": [2**60, True]}}, {"huge", "true"}), ({"v": float(2**60)}, {"huge"})],
    ids=repr,
)
def test_huge_ints(tmp_path, where, expected):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("h")
        ids = [*SEMANTIC_RECORDS, "huge"]
        t.add(VECS[: len(ids)], ids=ids, metadata=[*SEMANTIC_RECORDS.values(), HUGE])
        assert {r.id for r in t.get(where=where)} == expected
        assert {i for i in ids if ref_match(where, {**SEMANTIC_RECORDS, "huge": HUGE}[i])} == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"v": {"$ne": 1}}, True),
        ({"v": {"$nin": [1, 2]}}, True),
        ({"v": {"$exists": False}}, True),
        ({"$not": {"v": 1}}, True),
        ({"$not": {"v": {"$gte": 0}}}, True),
        ({"v": 1}, False),
        ({"v": None}, False),
        ({"v": {"$eq": None}}, False),
        ({"v": {"$in": [None]}}, False),
        ({"v": {"$gt": 0}}, False),
        ({"v": {"$lt": 0}}, False),
        ({"v": {"$gte": ""}}, False),
        ({"v": {"$contains": 1}}, False),
        ({"v": {"$exists": True}}, False),
    ],
    ids=repr,
)
def test_missing_field_semantics(tmp_path, where, expected):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("m")
        t.add(VECS[:1], ids=["x"], metadata=[{"w": 1}])
        assert t.count(where=where) == int(expected)
        assert len(t.query(VECS[0], k=3, where=where)) == int(expected)


# ------------------------------------------------------------------ system fields
def test_system_fields_are_filterable(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("sys")
        t.add(VECS[:2], ids=["a", "b"], metadata=[{"k": 1}, {"k": 2}])
        t0 = max(r.created_at for r in t.get(where={}))
        time.sleep(0.02)
        t.add(VECS[2:3], ids=["c"])
        assert [r.id for r in t.get(where={"created_at": {"$gt": t0}})] == ["c"]
        assert {r.id for r in t.get(where={"created_at": {"$lte": t0}})} == {"a", "b"}
        assert t.count(where={"created_at": {"$exists": True}}) == 3
        assert t.count(where={"updated_at": {"$exists": False}}) == 0
        t1 = max(r.updated_at for r in t.get(where={}))
        time.sleep(0.02)
        t.upsert(VECS[3:4], ids=["a"], metadata=[{"k": 9}])
        assert [r.id for r in t.get(where={"updated_at": {"$gt": t1}})] == ["a"]
        assert t.count(where={"created_at": {"$gt": t0}}) == 1  # upsert kept created_at
        assert [h.id for h in t.query(VECS[0], k=5, where={"updated_at": {"$gt": t1}})] == ["a"]
        assert t.delete(where={"created_at": {"$lte": t0}, "k": 9}) == 1
        assert {r.id for r in t.get(where={})} == {"b", "c"}


# ------------------------------------------------------------------ malformed filters
BAD_FILTERS = [
    ("not a dict", "where", []),
    (["a"], "where", []),
    (5, "where", []),
    ({"$foo": 1}, "where", ["$foo"]),
    ({"x": {"$foo": 1}}, "where.x", ["$foo"]),
    ({"x": {"$regex": "a.*"}}, "where.x", ["$regex"]),
    ({"$and": []}, "where.$and", []),
    ({"$or": []}, "where.$or", []),
    ({"$and": {"x": 1}}, "where.$and", []),
    ({"$or": "x"}, "where.$or", []),
    ({"$not": [{"x": 1}]}, "where.$not", []),
    ({"$not": 5}, "where.$not", []),
    ({"x": {"$in": "abc"}}, "where.x", ["$in"]),
    ({"x": {"$nin": 5}}, "where.x", ["$nin"]),
    ({"x": {"$in": [1, [2]]}}, "where.x.$in[1]", []),
    ({"x": {"$in": [1, {"a": 1}]}}, "where.x.$in[1]", []),
    ({"$and": [{"x": 1}, {"ts": {"$gte": [1, 2]}}]}, "where.$and[1].ts", ["$gte needs a number or string, got list"]),
    ({"ts": {"$gt": True}}, "where.ts", ["$gt", "bool"]),
    ({"ts": {"$lt": None}}, "where.ts", ["$lt"]),
    ({"ts": {"$lte": {"a": 1}}}, "where.ts", ["$lte"]),
    ({"x": {"a": 1}}, "where.x", []),
    ({"x": {"$eq": 1, "b": 2}}, "where.x", []),
    ({"x": [1, 2]}, "where.x", ["list"]),
    ({"x": {"$eq": [1]}}, "where.x", ["$eq"]),
    ({"x": {"$ne": {"a": 1}}}, "where.x", ["$ne"]),
    ({"x": {"$contains": [1]}}, "where.x", ["$contains"]),
    ({"": 1}, "where", ["empty field name"]),
    ({1: "a"}, "where", ["1"]),
    ({"x": {"$exists": 1}}, "where.x", ["$exists"]),
    ({"x": {"$exists": "yes"}}, "where.x", ["$exists"]),
    ({"x": float("nan")}, "where.x", ["NaN"]),
    ({"x": {"$eq": float("nan")}}, "where.x", ["NaN"]),
    ({"x": {"$gt": float("nan")}}, "where.x", ["NaN"]),
    ({"x": {"$in": [1, float("nan")]}}, "where.x.$in[1]", ["NaN"]),
    ({"x": {}}, "where.x", []),
    ({"x": object()}, "where.x", []),
    ({"x": b"bytes"}, "where.x", []),
    ({"x": (1, 2)}, "where.x", []),
    ({"$or": [{"x": 1}, "bad"]}, "where.$or[1]", []),
    ({"$not": {"$and": [{"$or": [{"y": {"$lt": {}}}]}]}}, "where.$not.$and[0].$or[0].y", ["$lt"]),
    ({"a": 1, "$and": [{"b": 1}, {"c": {"$in": 3}}]}, "where.$and[1].c", ["$in"]),
]


@pytest.fixture
def victim(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("victim")
        t.add(VECS[:5], ids=[f"r{i}" for i in range(5)], metadata=[{"x": i, "ts": i} for i in range(5)])
        yield t


def _check_bad(exc_info, path, fragments):
    msg = str(exc_info.value)
    assert isinstance(exc_info.value, TenantVecError)
    assert msg.startswith(path + ":") or msg.startswith(path + " "), msg
    for frag in fragments:
        assert frag in msg, msg


@pytest.mark.parametrize(("where", "path", "fragments"), BAD_FILTERS, ids=lambda v: repr(v)[:50])
def test_malformed_filter_raises_before_any_change(victim, where, path, fragments):
    snap = [(r.id, r.metadata) for r in victim.get(where={})]
    seq = victim.info().seq
    for call in (
        lambda: victim.get(where=where),
        lambda: victim.count(where=where),
        lambda: victim.query(VECS[0], k=3, where=where),
        lambda: victim.delete(where=where),
        lambda: victim.delete(ids=["r0", "r1"], where=where),
        lambda: victim.get(ids=["r0"], where=where),
    ):
        with pytest.raises(InvalidFilter) as ei:
            call()
        _check_bad(ei, path, fragments)
    assert [(r.id, r.metadata) for r in victim.get(where={})] == snap
    assert victim.count() == 5
    assert victim.info().seq == seq


def test_exact_message_example(victim):
    with pytest.raises(InvalidFilter) as ei:
        victim.get(where={"$and": [{"kind": "fact"}, {"ts": {"$gte": [1]}}]})
    assert str(ei.value) == "where.$and[1].ts: $gte needs a number or string, got list"


def test_malformed_filter_on_empty_tenant(tmp_path):
    # validation does not depend on there being records to filter
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("empty")
        for call in (t.get, t.count, t.delete):
            with pytest.raises(InvalidFilter):
                call(where={"x": {"$bogus": 1}})
        with pytest.raises(InvalidFilter):
            t.query(VECS[0], where={"$or": []})


def test_infinite_filter_values_are_ordinary_numbers(victim):
    assert victim.count(where={"ts": {"$lt": math.inf}}) == 5
    assert victim.count(where={"ts": {"$gt": -math.inf, "$lt": 2}}) == 2

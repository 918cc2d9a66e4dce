"""Stateful property tests: random add / upsert / delete / query / evict / reopen on two
tenants at once, checked against a plain-Python model and the exact numpy search of
tests/oracles.py.

Distances follow hnswlib for both backends: cosine = 1 - cosine similarity,
l2 = squared Euclidean, ip = 1 - dot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from oracles import ref_match, search

import tenantvec

THRESHOLD = 12  # small, so tenants cross from exact search to HNSW within a run
HNSW = tenantvec.HnswParams(m=16, ef_construction=200, ef=96)
DIMS = {"alpha": 8, "beta": 12}
TENANTS = tuple(DIMS)
ID_POOL = [f"r{i}" for i in range(48)]  # shared by both tenants: isolation must not rely on ids
GROUPS = 4
RTOL = ATOL = 2e-4


# ---------------------------------------------------------------------------- model
class TenantModel:
    """What one tenant should hold: id -> (vector, metadata, document), insertion order."""

    def __init__(self, tenant_id: str, dim: int, metric: str) -> None:
        self.tenant_id = tenant_id
        self.dim = dim
        self.metric = metric
        self.records: dict[str, tuple[np.ndarray, dict, str | None]] = {}
        self.hnsw = False  # once above the threshold the tenant uses HNSW for good

    def note_put(self, n: int) -> None:
        if len(self.records) + n > THRESHOLD:
            self.hnsw = True

    def add(self, ids, vecs, metas, docs) -> None:
        for rid, v, m, d in zip(ids, vecs, metas, docs):
            assert rid not in self.records
            self.records[rid] = (np.array(v, dtype=np.float32), m, d)

    def upsert(self, ids, vecs, metas, docs) -> None:
        for rid, v, m, d in zip(ids, vecs, metas, docs):
            self.records.pop(rid, None)  # an upsert moves the record to the end
            self.records[rid] = (np.array(v, dtype=np.float32), m, d)

    def delete_ids(self, ids) -> int:
        n = 0
        for rid in dict.fromkeys(ids):
            if self.records.pop(rid, None) is not None:
                n += 1
        return n

    def delete_group(self, g: int) -> int:
        gone = self.matching({"g": g})
        for rid in gone:
            del self.records[rid]
        return len(gone)

    def matching(self, where: dict | None) -> list[str]:
        return [rid for rid, (_, m, _) in self.records.items() if ref_match(where or {}, m)]

    def check_hits(self, hits, q: np.ndarray, k: int, where: dict | None, exact: bool) -> float | None:
        """Check one query's hits; returns the recall for approximate searches."""
        ids = self.matching(where)
        assert len(hits) == min(k, len(ids)), (len(hits), k, len(ids))
        hit_ids = [h.id for h in hits]
        assert len(set(hit_ids)) == len(hit_ids), f"duplicate hits {hit_ids}"
        if not ids:
            return None
        order, dist = search(self.metric, {rid: self.records[rid][0] for rid in ids}, q, len(ids))
        by_id = dict(zip(order, dist.tolist()))
        for h in hits:
            assert h.metadata.get("tenant") == self.tenant_id, f"foreign record {h} in {self.tenant_id}"
            assert h.id in by_id, f"hit {h.id!r} is not a live matching record of {self.tenant_id!r}"
            _, meta, doc = self.records[h.id]
            assert h.metadata == meta
            assert h.document == doc
            assert np.isclose(h.distance, by_id[h.id], rtol=RTOL, atol=ATOL), (h, by_id[h.id])
        got = np.array([h.distance for h in hits])
        assert np.all(np.diff(got) >= -ATOL), f"hits not sorted nearest first: {got}"
        want = dist[: len(hits)]
        if exact:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
            return None
        # Distance-based recall: ties at the k-th distance count as found.
        kth = want[-1]
        return float(np.mean(got <= kth + ATOL + RTOL * abs(kth)))

    def check_records(self, recs, asked: list[str]) -> None:
        want = [rid for rid in asked if rid in self.records]
        assert [r.id for r in recs] == want
        for r in recs:
            vec, meta, doc = self.records[r.id]
            assert r.metadata == meta
            assert r.document == doc
            assert r.vector is not None
            assert r.vector.dtype == np.float32
            assert np.array_equal(r.vector, vec)


# ---------------------------------------------------------------------------- machine
class StoreMachine(RuleBasedStateMachine):
    base_dir: Path  # set by the test before running
    runs = 0

    def __init__(self) -> None:
        super().__init__()
        StoreMachine.runs += 1
        self.path = self.base_dir / f"run{StoreMachine.runs}"
        self.store: tenantvec.Store | None = None
        self.models: dict[str, TenantModel] = {}
        self.handles: dict[str, tenantvec.Tenant] = {}
        self.counter = 0
        self.recalls: list[float] = []
        self.probe = 0

    # -- helpers ----------------------------------------------------------------------
    def _open(self) -> None:
        self.store = tenantvec.Store(
            self.path, max_hot=self.max_hot, hnsw_threshold=THRESHOLD, hnsw=HNSW
        )
        self.handles = {tid: self.store.tenant(tid) for tid in TENANTS}

    def _vectors(self, tid: str, n: int, seed: int, dup: bool) -> np.ndarray:
        model = self.models[tid]
        vecs = np.random.default_rng(seed).normal(size=(n, model.dim)).astype(np.float32)
        if dup and model.records:  # exact copies of a stored vector make distance ties
            vecs[0] = next(iter(model.records.values()))[0]
        return vecs

    def _payload(self, tid: str, n: int, g: int, with_docs: bool):
        metas, docs = [], []
        for i in range(n):
            self.counter += 1
            metas.append({"tenant": tid, "g": (g + i) % GROUPS, "n": self.counter})
            docs.append(f"{tid} doc {self.counter}" if with_docs else None)
        return metas, docs

    # -- rules ------------------------------------------------------------------------
    @initialize(
        metrics=st.tuples(*(st.sampled_from(["cosine", "l2", "ip"]) for _ in TENANTS)),
        max_hot=st.sampled_from([1, 2, 8]),
    )
    def setup(self, metrics, max_hot) -> None:
        self.max_hot = max_hot
        store = tenantvec.Store(self.path, dim=4, metric="l2", max_hot=max_hot, hnsw_threshold=THRESHOLD, hnsw=HNSW)
        for tid, metric in zip(TENANTS, metrics):
            store.create_tenant(tid, dim=DIMS[tid], metric=metric)
            self.models[tid] = TenantModel(tid, DIMS[tid], metric)
        store.close()
        self._open()

    @rule(
        tid=st.sampled_from(TENANTS),
        n=st.integers(1, 10),
        seed=st.integers(0, 2**32 - 1),
        g=st.integers(0, GROUPS - 1),
        generated_ids=st.booleans(),
        with_docs=st.booleans(),
        dup=st.booleans(),
        data=st.data(),
    )
    def add(self, tid, n, seed, g, generated_ids, with_docs, dup, data) -> None:
        model = self.models[tid]
        vecs = self._vectors(tid, n, seed, dup)
        metas, docs = self._payload(tid, n, g, with_docs)
        if generated_ids:
            ids = None
        else:
            free = [rid for rid in ID_POOL if rid not in model.records]
            if len(free) < n:
                return
            ids = data.draw(st.permutations(free))[:n]
        model.note_put(n)
        got = self.handles[tid].add(vecs, ids=ids, documents=docs, metadata=metas)
        assert len(got) == n
        assert len(set(got)) == n
        if ids is not None:
            assert got == ids
        model.add(got, vecs, metas, docs)

    @rule(tid=st.sampled_from(TENANTS), n=st.integers(10, 40), seed=st.integers(0, 2**32 - 1))
    def add_bulk(self, tid, n, seed) -> None:
        """Grow a tenant past the HNSW threshold (generated ids)."""
        model = self.models[tid]
        vecs = self._vectors(tid, n, seed, False)
        metas, docs = self._payload(tid, n, seed % GROUPS, True)
        model.note_put(n)
        got = self.handles[tid].add(vecs, documents=docs, metadata=metas)
        model.add(got, vecs, metas, docs)

    @precondition(lambda self: any(self.models[t].records for t in TENANTS))
    @rule(tid=st.sampled_from(TENANTS), seed=st.integers(0, 2**32 - 1), data=st.data())
    def add_duplicate_is_rejected(self, tid, seed, data) -> None:
        model = self.models[tid]
        if not model.records:
            return
        existing = data.draw(st.sampled_from(list(model.records)))
        free = [rid for rid in ID_POOL if rid not in model.records][:1]
        ids = [*free, existing]
        vecs = self._vectors(tid, len(ids), seed, False)
        metas, docs = self._payload(tid, len(ids), 0, True)
        with pytest.raises(tenantvec.DuplicateId):
            self.handles[tid].add(vecs, ids=ids, documents=docs, metadata=metas)
        # Nothing of the rejected batch may have been written (checked by the invariants).

    @rule(
        tid=st.sampled_from(TENANTS),
        seed=st.integers(0, 2**32 - 1),
        g=st.integers(0, GROUPS - 1),
        with_docs=st.booleans(),
        data=st.data(),
    )
    def upsert(self, tid, seed, g, with_docs, data) -> None:
        model = self.models[tid]
        ids = data.draw(st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=6, unique=True))
        vecs = self._vectors(tid, len(ids), seed, False)
        metas, docs = self._payload(tid, len(ids), g, with_docs)
        handle = self.handles[tid]
        before = {r.id: r.created_at for r in handle.get(ids=ids)}
        model.note_put(len(ids))
        assert handle.upsert(vecs, ids=ids, documents=docs, metadata=metas) == ids
        model.upsert(ids, vecs, metas, docs)
        after = {r.id: r for r in handle.get(ids=ids)}
        for rid, created in before.items():
            assert after[rid].created_at == created, "upsert must keep created_at"
            assert after[rid].updated_at >= created

    @rule(tid=st.sampled_from(TENANTS), data=st.data())
    def delete_ids(self, tid, data) -> None:
        model = self.models[tid]
        pool = [*model.records, "r-unknown", *ID_POOL[:4]]
        ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
        want = model.delete_ids(ids)
        assert self.handles[tid].delete(ids=ids) == want

    @rule(tid=st.sampled_from(TENANTS), g=st.integers(0, GROUPS - 1))
    def delete_where(self, tid, g) -> None:
        want = self.models[tid].delete_group(g)
        assert self.handles[tid].delete(where={"g": g}) == want

    @rule(
        tid=st.sampled_from(TENANTS),
        seed=st.integers(0, 2**32 - 1),
        k=st.integers(1, 12),
        filtered=st.booleans(),
        g=st.integers(0, GROUPS - 1),
        near_existing=st.booleans(),
        batch=st.booleans(),
    )
    def query(self, tid, seed, k, filtered, g, near_existing, batch) -> None:
        model = self.models[tid]
        rng = np.random.default_rng(seed)
        qs = rng.normal(size=(2 if batch else 1, model.dim)).astype(np.float32)
        if near_existing and model.records:
            vecs = list(model.records.values())
            qs[0] = vecs[int(rng.integers(len(vecs)))][0] + 0.01 * qs[0]
        where = {"g": g} if filtered else None
        handle = self.handles[tid]
        info = handle.info()
        exact = info.index_kind == "exact"
        if batch:
            rows = handle.query(qs, k=k, where=where)
            assert isinstance(rows, list)
            assert len(rows) == len(qs)
        else:
            rows = [handle.query(qs[0], k=k, where=where)]
        for q, hits in zip(qs, rows):
            recall = model.check_hits(hits, q, k, where, exact)
            if recall is not None:
                self.recalls.append(recall)

    @rule(tid=st.sampled_from(TENANTS), data=st.data())
    def get_ids(self, tid, data) -> None:
        model = self.models[tid]
        pool = [*model.records, "r-unknown", *ID_POOL[:3]]
        asked = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=8))
        recs = self.handles[tid].get(ids=asked, include_vectors=True)
        model.check_records(recs, asked)

    @rule(tid=st.sampled_from(TENANTS))
    def evict(self, tid) -> None:
        self.store._manager.evict(tid)
        assert not self.store._manager.is_hot(tid)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self._open()

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def counts_match(self) -> None:
        if self.store is None:
            return
        for tid, model in self.models.items():
            handle = self.handles[tid]
            assert handle.count() == len(model.records)
            info = handle.info()
            assert info.count == len(model.records)
            assert (info.dim, info.metric) == (model.dim, model.metric)
            if model.hnsw:
                assert info.index_kind == "hnsw", f"{tid} holds {len(model.records)} records above {THRESHOLD}"

    @invariant()
    def full_listing_matches(self) -> None:
        if self.store is None:
            return
        for tid, model in self.models.items():
            recs = self.handles[tid].get(include_vectors=True)
            # Insertion order; an upsert moves the record to the end.
            model.check_records(recs, list(model.records))
            for g in range(GROUPS):
                assert self.handles[tid].count(where={"g": g}) == len(model.matching({"g": g}))

    @invariant()
    def isolation(self) -> None:
        """Both tenants use the same record ids; each must only ever see its own records."""
        if self.store is None:
            return
        for tid, model in self.models.items():
            if not model.records:
                continue
            q = np.ones(model.dim, dtype=np.float32)
            hits = self.handles[tid].query(q, k=len(model.records))
            assert sorted(h.id for h in hits) == sorted(model.records), "index and LMDB disagree"
            assert all(h.metadata["tenant"] == tid for h in hits)

    @invariant()
    def memory_is_counted_exactly(self) -> None:
        """Each hot shard's in-memory records are counted as what they hold, and the
        manager's total is the sum over the hot shards (nothing drifts, whatever ran)."""
        if self.store is None:
            return
        hot = self.store._manager.hot()
        for shard in hot.values():
            assert shard._hot.nbytes == sum(entry[3] for entry in shard._hot._recs.values())
        assert self.store.stats().memory_bytes == sum(s.memory_bytes for s in hot.values())

    @invariant()
    def top_k_matches_brute_force(self) -> None:
        if self.store is None:
            return
        self.probe += 1
        rng = np.random.default_rng(self.probe)
        for tid, model in self.models.items():
            handle = self.handles[tid]
            exact = handle.info().index_kind == "exact"
            q = rng.normal(size=model.dim).astype(np.float32)
            recall = model.check_hits(handle.query(q, k=5), q, 5, None, exact)
            if recall is not None:
                self.recalls.append(recall)

    def teardown(self) -> None:
        try:
            if self.recalls:
                mean = float(np.mean(self.recalls))
                assert mean >= 0.9, f"HNSW recall {mean:.3f} over {len(self.recalls)} queries"
        finally:
            if self.store is not None:
                self.store.close()
            shutil.rmtree(self.path, ignore_errors=True)


def test_state_machine(tmp_path):
    StoreMachine.base_dir = tmp_path
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ---------------------------------------------------------------------------- subprocess reopen
DUMP_SCRIPT = r"""
import json, sys
import numpy as np
import tenantvec

root, queries_path = sys.argv[1], sys.argv[2]
queries = np.load(queries_path, allow_pickle=False)
out = {}
with tenantvec.Store(root) as store:
    for tid in store.tenants():
        t = store.tenant(tid)
        info = t.info()
        qs = queries[tid]
        hits = lambda hs: [[h.id, h.distance, h.metadata, h.document] for h in hs]
        out[tid] = {
            "count": t.count(),
            "info_count": info.count,
            "kind": info.index_kind,
            "dim": info.dim,
            "metric": info.metric,
            "records": [[r.id, r.metadata, r.document, r.vector.tolist()]
                        for r in t.get(include_vectors=True)],
            "queries": [hits(t.query(q, k=7)) for q in qs],
            "filtered": [hits(t.query(q, k=4, where={"g": 1})) for q in qs],
            "batch": [hits(row) for row in t.query(qs[:2], k=3)],
        }
json.dump(out, sys.stdout)
"""


def _drive_random_ops(store: tenantvec.Store, models: dict[str, TenantModel], seed: int) -> None:
    rng = np.random.default_rng(seed)
    counter = 0
    for step in range(60):
        tid = list(models)[int(rng.integers(len(models)))]
        model, t = models[tid], store.tenant(tid)
        op = rng.choice(["add", "add", "upsert", "delete", "delete_where", "evict"])
        if op in ("add", "upsert"):
            n = int(rng.integers(1, 9))
            vecs = rng.normal(size=(n, model.dim)).astype(np.float32)
            metas = [{"tenant": tid, "g": int(rng.integers(GROUPS)), "n": counter + i} for i in range(n)]
            docs = [None if i % 3 == 0 else f"doc {counter + i}" for i in range(n)]
            counter += n
            model.note_put(n)
            if op == "add":
                ids = [f"s{step}-{i}" for i in range(n)]
                t.add(vecs, ids=ids, documents=docs, metadata=metas)
                model.add(ids, vecs, metas, docs)
            else:
                ids = [str(x) for x in rng.choice(ID_POOL, size=n, replace=False)]
                t.upsert(vecs, ids=ids, documents=docs, metadata=metas)
                model.upsert(ids, vecs, metas, docs)
        elif op == "delete" and model.records:
            ids = [str(x) for x in rng.choice(list(model.records), size=min(3, len(model.records)), replace=False)]
            assert t.delete(ids=ids) == model.delete_ids(ids)
        elif op == "delete_where" and step % 4 == 0:
            g = int(rng.integers(GROUPS))
            assert t.delete(where={"g": g}) == model.delete_group(g)
        elif op == "evict":
            store._manager.evict(tid)


@pytest.mark.parametrize("seed", [0, 1])
def test_reopen_in_subprocess(tmp_path, subprocess_env, seed):
    """Write with this process, close, and read everything back in a fresh interpreter."""
    root = tmp_path / "store"
    models = {
        "cos": TenantModel("cos", 8, "cosine"),
        "l2": TenantModel("l2", 12, "l2"),
        "ip": TenantModel("ip", 8, "ip"),
        "small": TenantModel("small", 16, "cosine"),
    }
    with tenantvec.Store(root, dim=8, max_hot=2, hnsw_threshold=THRESHOLD, hnsw=HNSW) as store:
        for tid, m in models.items():
            store.create_tenant(tid, dim=m.dim, metric=m.metric)
        _drive_random_ops(store, {k: v for k, v in models.items() if k != "small"}, seed)
        small = store.tenant("small")
        vecs = np.random.default_rng(seed + 100).normal(size=(5, 16)).astype(np.float32)
        metas = [{"tenant": "small", "g": i % GROUPS} for i in range(5)]
        small.add(vecs, ids=[f"x{i}" for i in range(5)], metadata=metas)
        models["small"].add([f"x{i}" for i in range(5)], vecs, metas, [None] * 5)
    assert any(m.hnsw for m in models.values()), "the scenario must exercise an HNSW tenant"

    rng = np.random.default_rng(seed + 7)
    queries = {}
    for tid, m in models.items():
        qs = rng.normal(size=(4, m.dim)).astype(np.float32)
        if m.records:  # one query right on a stored vector
            qs[0] = next(iter(m.records.values()))[0]
        queries[tid] = qs
    qpath = tmp_path / "queries.npz"
    np.savez(qpath, **queries)

    proc = subprocess.run(
        [sys.executable, "-c", DUMP_SCRIPT, str(root), str(qpath)],
        capture_output=True, text=True, env=subprocess_env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    dump = json.loads(proc.stdout)
    assert sorted(dump) == sorted(models)

    recalls = []
    for tid, m in models.items():
        d = dump[tid]
        assert d["count"] == d["info_count"] == len(m.records)
        assert (d["dim"], d["metric"]) == (m.dim, m.metric)
        assert d["kind"] == ("hnsw" if m.hnsw else "exact")
        recs = [
            tenantvec.Record(rid, meta, doc, 0.0, 0.0, np.asarray(vec, dtype=np.float32))
            for rid, meta, doc, vec in d["records"]
        ]
        m.check_records(recs, list(m.records))
        exact = d["kind"] == "exact"

        def as_hits(rows):
            return [tenantvec.Hit(rid, dist, meta, doc) for rid, dist, meta, doc in rows]

        for q, rows in zip(queries[tid], d["queries"]):
            r = m.check_hits(as_hits(rows), q, 7, None, exact)
            if r is not None:
                recalls.append(r)
        for q, rows in zip(queries[tid], d["filtered"]):
            r = m.check_hits(as_hits(rows), q, 4, {"g": 1}, exact)
            if r is not None:
                recalls.append(r)
        for q, rows in zip(queries[tid][:2], d["batch"]):
            r = m.check_hits(as_hits(rows), q, 3, None, exact)
            if r is not None:
                recalls.append(r)
    if recalls:
        assert float(np.mean(recalls)) >= 0.9

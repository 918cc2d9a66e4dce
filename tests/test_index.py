"""Contract tests shared by the two vector index backends (tenantvec._engine.index).

``IndexContract`` holds every test; ``TestExactIndex`` and ``TestHnswIndex`` run it
against one backend each through the ``make(dim, metric)`` fixture. Distances are checked
against the exact numpy search of tests/oracles.py (hnswlib's definitions: cosine = 1 - cosine
similarity, l2 = squared Euclidean, ip = 1 - dot).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import distances, nearest

from tenantvec._engine.index import ExactIndex, HnswIndex

METRICS = ("cosine", "l2", "ip")
DIM = 8
HYP = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.differing_executors],
)


def random_vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32)


def labels_of(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int64)


def mask_of(allowed, size: int) -> np.ndarray:
    """The ``allowed`` argument of ``search``: a boolean mask indexed by label, longer than
    every label (the shard passes its payload capacity, which may exceed next_label)."""
    mask = np.zeros(size + 7, dtype=bool)
    mask[np.asarray(list(allowed), dtype=np.int64)] = True
    return mask


class IndexContract:
    """Every backend must pass these; subclasses provide ``make`` and ``exact``."""

    exact: bool  # answers must equal brute force exactly (else: high recall)

    @pytest.fixture
    def make(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def expected_deleted(self, removed: int) -> int:
        raise NotImplementedError

    def search_allowed(self, idx, queries, k, allowed, size):
        """Search restricted to the labels in ``allowed`` (labels are all < ``size``)."""
        return idx.search(queries, k, mask_of(allowed, size))

    # ------------------------------------------------------------------ helpers
    def check_results(self, metric, vec_of, q, labels, dists, k, pool):
        """Labels/distances of one query row against the brute force over ``pool``."""
        pool = np.asarray(sorted(pool), dtype=np.int64)
        want_n = min(k, len(pool))
        assert len(labels) == want_n
        assert len(dists) == want_n
        assert len(set(labels.tolist())) == want_n, "a label returned twice"
        assert set(labels.tolist()) <= set(pool.tolist()), "result outside the live/allowed set"
        if not want_n:
            return set()
        # reported distances are hnswlib's distances of the returned labels
        got = distances(metric, np.stack([vec_of[int(lab)] for lab in labels]), q)
        np.testing.assert_allclose(dists, got, rtol=1e-4, atol=1e-4)
        assert np.all(np.diff(np.asarray(dists, dtype=np.float64)) >= -1e-5), "not nearest first"
        truth_d = distances(metric, np.stack([vec_of[int(lab)] for lab in pool]), q)
        order = nearest(truth_d, want_n)
        if self.exact:
            np.testing.assert_allclose(np.sort(dists), truth_d[order], rtol=1e-4, atol=1e-4)
        return set(pool[order].tolist())

    def recall(self, found: list[set], truth: list[set]) -> float:
        hit = sum(len(f & t) for f, t in zip(found, truth))
        total = sum(len(t) for t in truth)
        return hit / total if total else 1.0

    # ------------------------------------------------------------------ basics
    @pytest.mark.parametrize("metric", METRICS)
    def test_empty_index(self, make, metric):
        idx = make(DIM, metric)
        assert len(idx) == 0
        assert idx.deleted == 0
        assert len(idx.labels()) == 0
        res = idx.search(random_vectors(3, seed=1), k=5)
        assert len(res) == 3
        for labels, dists in res:
            assert len(labels) == 0
            assert len(dists) == 0

    @pytest.mark.parametrize("metric", METRICS)
    def test_add_len_labels_get_vectors(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(50, seed=2)
        labs = labels_of(50, start=1000)
        idx.add(labs, vecs)
        assert len(idx) == 50
        assert sorted(idx.labels().tolist()) == labs.tolist()
        ask = labs[[7, 3, 49, 0]]
        got = idx.get_vectors(ask)
        want = vecs[[7, 3, 49, 0]].astype(np.float64)
        if metric == "cosine":  # held normalised
            want = want / np.linalg.norm(want, axis=1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert idx.memory_bytes > 0

    @pytest.mark.parametrize("metric", METRICS)
    def test_remove(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(40, seed=3)
        idx.add(labels_of(40), vecs)
        gone = np.array([0, 5, 39, 17], dtype=np.int64)
        idx.remove(gone)
        assert len(idx) == 36
        assert idx.deleted == self.expected_deleted(4)
        assert set(idx.labels().tolist()) == set(range(40)) - set(gone.tolist())
        # unknown and already-removed labels are ignored
        idx.remove(np.array([5, 1234, 0], dtype=np.int64))
        assert len(idx) == 36
        assert idx.deleted == self.expected_deleted(4)
        # survivors keep their own vectors
        keep = np.array([1, 38, 16, 18], dtype=np.int64)
        want = vecs[keep].astype(np.float64)
        if metric == "cosine":
            want = want / np.linalg.norm(want, axis=1, keepdims=True)
        np.testing.assert_allclose(idx.get_vectors(keep), want, rtol=1e-5, atol=1e-6)
        for labels, _ in idx.search(vecs, k=40):
            assert not set(labels.tolist()) & set(gone.tolist())
            assert len(labels) == 36

    # ------------------------------------------------------------------ distances
    @pytest.mark.parametrize("metric", METRICS)
    def test_distances_match_brute_force(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(200, seed=4)
        if metric == "ip":
            vecs *= 0.3  # keep dots of both signs and magnitudes around 1
        idx.add(labels_of(200), vecs)
        vec_of = dict(enumerate(vecs))
        qs = random_vectors(20, seed=5)
        found, truth = [], []
        for q, (labels, dists) in zip(qs, idx.search(qs, k=10)):
            truth.append(self.check_results(metric, vec_of, q, labels, dists, 10, range(200)))
            found.append(set(labels.tolist()))
        if self.exact:
            assert found == truth
        else:
            assert self.recall(found, truth) >= 0.9

    @pytest.mark.parametrize("metric", METRICS)
    def test_self_query_distance(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(30, seed=6)
        idx.add(labels_of(30), vecs)
        (labels, dists), = idx.search(vecs[11:12], k=1)
        if metric == "ip":
            assert dists[0] == pytest.approx(1.0 - float(vecs[11] @ vecs[11]), rel=1e-4, abs=1e-4)
        else:
            assert labels.tolist() == [11]
            assert dists[0] == pytest.approx(0.0, abs=1e-4)

    @pytest.mark.parametrize("offset", [10.0, 1000.0])
    def test_l2_far_from_origin(self, make, offset):
        """Squared L2 distances must stay accurate for vectors far from the origin
        (hnswlib computes sum((a - b)**2); |a|^2 - 2ab + |b|^2 in float32 cancels)."""
        idx = make(DIM, "l2")
        vecs = random_vectors(200, seed=30) + np.float32(offset)
        idx.add(labels_of(200), vecs)
        vec_of = dict(enumerate(vecs))
        qs = random_vectors(5, seed=31) + np.float32(offset)
        found, truth = [], []
        for q, (labels, dists) in zip(qs, idx.search(qs, k=10)):
            truth.append(self.check_results("l2", vec_of, q, labels, dists, 10, range(200)))
            found.append(set(labels.tolist()))
        if self.exact:
            assert found == truth
        else:
            assert self.recall(found, truth) >= 0.9

    def test_l2_far_from_origin_after_a_first_batch_elsewhere(self, make):
        """As above, but the first batch sits at the origin and the rest far away (a
        tenant whose data drifts, or whose first record is an outlier)."""
        idx = make(DIM, "l2")
        idx.add(labels_of(1, start=10_000), np.zeros((1, DIM), dtype=np.float32))
        vecs = random_vectors(200, seed=32) + np.float32(1000.0)
        idx.add(labels_of(200), vecs)
        vec_of = dict(enumerate(vecs)) | {10_000: np.zeros(DIM, dtype=np.float32)}
        qs = random_vectors(5, seed=33) + np.float32(1000.0)
        found, truth = [], []
        for q, (labels, dists) in zip(qs, idx.search(qs, k=10)):
            truth.append(self.check_results("l2", vec_of, q, labels, dists, 10, vec_of.keys()))
            found.append(set(labels.tolist()))
        if self.exact:
            assert found == truth
        else:
            assert self.recall(found, truth) >= 0.9

    def test_cosine_is_scale_invariant(self, make):
        idx = make(DIM, "cosine")
        vecs = random_vectors(20, seed=7)
        idx.add(labels_of(20), vecs)
        (l1, d1), = idx.search(vecs[:1], k=5)
        (l2, d2), = idx.search(vecs[:1] * 1000.0, k=5)
        assert l1.tolist() == l2.tolist()
        np.testing.assert_allclose(d1, d2, rtol=1e-4, atol=1e-5)

    # ------------------------------------------------------------------ k and deletes
    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("k", [1, 5, 10, 11, 50])
    def test_k_larger_than_live(self, make, metric, k):
        idx = make(DIM, metric)
        vecs = random_vectors(10, seed=8)
        idx.add(labels_of(10), vecs)
        vec_of = dict(enumerate(vecs))
        qs = random_vectors(4, seed=9)
        res = idx.search(qs, k=k)
        assert len(res) == 4
        for q, (labels, dists) in zip(qs, res):
            self.check_results(metric, vec_of, q, labels, dists, k, range(10))

    @pytest.mark.parametrize("metric", METRICS)
    def test_search_after_many_deletes(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(300, seed=10)
        idx.add(labels_of(300), vecs)
        vec_of = dict(enumerate(vecs))
        rng = np.random.default_rng(11)
        alive = set(range(300))
        for batch in np.array_split(rng.permutation(300)[:297], 9):
            idx.remove(batch.astype(np.int64))
            alive -= set(batch.tolist())
            assert len(idx) == len(alive)
            for q, (labels, dists) in zip(vecs[:3], idx.search(vecs[:3], k=10)):
                self.check_results(metric, vec_of, q, labels, dists, 10, alive)
        assert len(alive) == 3
        idx.remove(np.array(sorted(alive), dtype=np.int64))
        assert len(idx) == 0
        for labels, dists in idx.search(vecs[:2], k=10):
            assert len(labels) == 0
            assert len(dists) == 0

    # ------------------------------------------------------------------ allowed labels
    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("n_allowed", [0, 1, 3, 10, 60, 250])
    def test_allowed_filtering(self, make, metric, n_allowed):
        idx = make(DIM, metric)
        vecs = random_vectors(250, seed=12)
        idx.add(labels_of(250), vecs)
        vec_of = dict(enumerate(vecs))
        rng = np.random.default_rng(n_allowed)
        allowed = np.sort(rng.choice(250, size=n_allowed, replace=False)).astype(np.int64)
        qs = random_vectors(8, seed=13)
        found, truth = [], []
        for k in (1, 5, 20):
            for q, (labels, dists) in zip(qs, self.search_allowed(idx, qs, k, allowed, 250)):
                truth.append(self.check_results(metric, vec_of, q, labels, dists, k, allowed.tolist()))
                found.append(set(labels.tolist()))
        if self.exact:
            assert found == truth
        else:
            assert self.recall(found, truth) >= 0.9

    @pytest.mark.parametrize("metric", METRICS)
    def test_allowed_with_tombstones(self, make, metric):
        idx = make(DIM, metric)
        vecs = random_vectors(120, seed=14)
        idx.add(labels_of(120), vecs)
        idx.remove(labels_of(100))  # most of the graph is tombstoned
        vec_of = dict(enumerate(vecs))
        allowed = np.array([100, 105, 119], dtype=np.int64)
        for q, (labels, dists) in zip(vecs[:5], self.search_allowed(idx, vecs[:5], 10, allowed, 120)):
            self.check_results(metric, vec_of, q, labels, dists, 10, allowed.tolist())

    # ------------------------------------------------------------------ model-based
    @pytest.mark.parametrize("metric", METRICS)
    @HYP
    @given(data=st.data())
    def test_random_operations_match_model(self, make, metric, data):
        idx = make(DIM, metric)
        model: dict[int, np.ndarray] = {}
        next_label = 0
        seed = data.draw(st.integers(0, 2**16), label="seed")
        rng = np.random.default_rng(seed)
        ops = data.draw(
            st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(1, 40)), min_size=1, max_size=8),
            label="ops",
        )
        for op, n in ops:
            if op == "add":
                vecs = rng.normal(size=(n, DIM)).astype(np.float32)
                labs = labels_of(n, start=next_label)
                next_label += n
                idx.add(labs, vecs)
                model.update(zip(labs.tolist(), vecs))
            elif model:
                gone = rng.choice(sorted(model), size=min(n, len(model)), replace=False)
                idx.remove(gone.astype(np.int64))
                for lab in gone.tolist():
                    del model[lab]
            assert len(idx) == len(model)
            assert sorted(idx.labels().tolist()) == sorted(model)
            k = data.draw(st.integers(1, 15), label="k")
            q = rng.normal(size=(1, DIM)).astype(np.float32)
            (labels, dists), = idx.search(q, k=k)
            self.check_results(metric, model, q[0], labels, dists, k, model.keys())


class TestExactIndex(IndexContract):
    exact = True

    @pytest.fixture
    def make(self):
        return lambda dim, metric: ExactIndex(dim, metric, capacity=1)

    def expected_deleted(self, removed: int) -> int:  # noqa: ARG002 (an exact index forgets deleted rows at once)
        return 0

    def test_grows_past_initial_capacity(self):
        idx = ExactIndex(DIM, "l2", capacity=2)
        vecs = random_vectors(100, seed=20)
        for start in range(0, 100, 7):
            idx.add(labels_of(len(vecs[start : start + 7]), start), vecs[start : start + 7])
        assert len(idx) == 100
        labels, _ = idx.search(vecs, k=1)[57]
        assert labels.tolist() == [57]


def _hnsw(dim: int, metric: str, *, capacity: int = 16, m: int = 16, ef_construction: int = 200, ef: int = 96):
    return HnswIndex(dim, metric, m=m, ef_construction=ef_construction, ef=ef, capacity=capacity)


class TestHnswIndex(IndexContract):
    exact = False

    @pytest.fixture
    def make(self):
        return lambda dim, metric: _hnsw(dim, metric)

    def expected_deleted(self, removed: int) -> int:
        return removed

    def test_grows_past_initial_capacity(self):
        idx = _hnsw(DIM, "l2", capacity=16)
        vecs = random_vectors(500, seed=21)
        for start in range(0, 500, 33):
            chunk = vecs[start : start + 33]
            idx.add(labels_of(len(chunk), start), chunk)
        assert len(idx) == 500
        assert idx.element_count == 500
        assert sorted(idx.labels().tolist()) == list(range(500))
        hits = sum(labels.tolist() == [i] for i, (labels, _) in enumerate(idx.search(vecs, k=1)))
        assert hits >= 495

    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("k", [1, 7, 40, 200])
    def test_weak_graph_never_raises(self, metric, k):
        """A tiny M/ef and heavy tombstoning make hnswlib raise "contiguous 2D array"
        internally; callers must still get exactly min(k, live) results."""
        idx = _hnsw(DIM, metric, m=2, ef_construction=8, ef=1)
        vecs = random_vectors(400, seed=22)
        idx.add(labels_of(400), vecs)
        rng = np.random.default_rng(23)
        alive = set(rng.choice(400, size=25, replace=False).tolist())
        idx.remove(np.array(sorted(set(range(400)) - alive), dtype=np.int64))
        vec_of = dict(enumerate(vecs))
        qs = random_vectors(6, seed=24)
        for q, (labels, dists) in zip(qs, idx.search(qs, k=k)):
            self.check_results(metric, vec_of, q, labels, dists, k, alive)
        allowed = np.array(sorted(alive)[:9], dtype=np.int64)
        for q, (labels, dists) in zip(qs, self.search_allowed(idx, qs, k, allowed, 400)):
            self.check_results(metric, vec_of, q, labels, dists, k, allowed.tolist())
        assert idx.ef == 1  # a widened beam is restored after the search

    def test_weak_graph_fallback_far_from_origin(self):
        """The exact fallback of a struggling HNSW search must be exact under l2 even for
        vectors with a large common offset."""
        idx = _hnsw(DIM, "l2", m=2, ef_construction=8, ef=1)
        vecs = random_vectors(400, seed=34) + np.float32(1000.0)
        idx.add(labels_of(400), vecs)
        alive = set(range(0, 400, 16))
        idx.remove(np.array(sorted(set(range(400)) - alive), dtype=np.int64))
        self.exact = True  # fallback answers are exact scans
        qs = random_vectors(4, seed=35) + np.float32(1000.0)
        for q, (labels, dists) in zip(qs, idx.search(qs, k=len(alive))):
            truth = self.check_results("l2", dict(enumerate(vecs)), q, labels, dists, len(alive), alive)
            assert set(labels.tolist()) == truth

    @HYP
    @given(
        n=st.integers(1, 200),
        frac=st.floats(0.0, 1.0),
        k=st.integers(1, 60),
        seed=st.integers(0, 2**16),
        filtered=st.booleans(),
    )
    def test_search_never_raises(self, n, frac, k, seed, filtered):
        idx = _hnsw(DIM, "cosine", m=4, ef_construction=16, ef=2, capacity=16)
        vecs = random_vectors(n, seed=seed)
        idx.add(labels_of(n), vecs)
        rng = np.random.default_rng(seed)
        gone = rng.choice(n, size=int(frac * n), replace=False)
        idx.remove(gone.astype(np.int64))
        alive = sorted(set(range(n)) - set(gone.tolist()))
        pool = alive
        allowed = None
        if filtered and alive:
            pool = sorted(rng.choice(alive, size=max(1, len(alive) // 5), replace=False).tolist())
            allowed = np.array(pool, dtype=np.int64)
        q = random_vectors(2, seed=seed + 1)
        res = idx.search(q, k) if allowed is None else self.search_allowed(idx, q, k, allowed, n)
        assert len(res) == 2
        for qq, (labels, dists) in zip(q, res):
            self.check_results("cosine", dict(enumerate(vecs)), qq, labels, dists, k, pool)

    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("matching_share", [0.01, 0.3, 0.9])
    def test_far_allowed_labels(self, metric, matching_share):
        """Adversarial filter: the allowed labels are the ones farthest from the query,
        so an unfiltered beam (or an oversampled one) holds none of them."""
        idx = _hnsw(DIM, metric, m=8, ef_construction=32, ef=8)
        vecs = random_vectors(600, seed=40)
        idx.add(labels_of(600), vecs)
        q = vecs[0]
        d = distances(metric, vecs, q)
        allowed = np.argsort(-d)[: int(600 * matching_share)]
        vec_of = dict(enumerate(vecs))
        for k in (1, 10, 50):
            (labels, dists), = self.search_allowed(idx, q[None, :], k, allowed, 600)
            self.check_results(metric, vec_of, q, labels, dists, k, allowed.tolist())

    @pytest.mark.parametrize("metric", METRICS)
    def test_save_load_round_trip_keeps_tombstones(self, tmp_path, metric):
        idx = _hnsw(DIM, metric, capacity=16)
        vecs = random_vectors(150, seed=25)
        idx.add(labels_of(150), vecs)
        gone = np.arange(0, 150, 3, dtype=np.int64)
        idx.remove(gone)
        path = str(tmp_path / "index.hnsw")
        idx.save(path)
        loaded = HnswIndex.load(
            path, DIM, metric, m=16, ef_construction=200, ef=96, deleted=idx.deleted_labels()
        )
        assert len(loaded) == len(idx) == 100
        assert loaded.deleted == idx.deleted == 50
        assert loaded.deleted_labels().tolist() == gone.tolist()
        assert loaded.labels().tolist() == idx.labels().tolist()
        qs = random_vectors(10, seed=26)
        for (la, da), (lb, db) in zip(idx.search(qs, k=200), loaded.search(qs, k=200)):
            assert len(la) == len(lb) == 100
            assert set(la.tolist()) == set(lb.tolist())
            assert not set(lb.tolist()) & set(gone.tolist())
            np.testing.assert_allclose(np.sort(da), np.sort(db), rtol=1e-5, atol=1e-6)
        # the loaded index keeps working: growth, removal, search
        more = random_vectors(100, seed=27)
        loaded.add(labels_of(100, start=150), more)
        loaded.remove(np.array([1, 151], dtype=np.int64))
        assert len(loaded) == 198
        assert loaded.deleted == 52
        vec_of = dict(enumerate(vecs)) | {150 + i: v for i, v in enumerate(more)}
        live = set(range(250)) - set(gone.tolist()) - {1, 151}
        for q, (labels, dists) in zip(qs, loaded.search(qs, k=10)):
            self.check_results(metric, vec_of, q, labels, dists, 10, live)


class TestHnswIndexOversampled(TestHnswIndex):
    """The same contract through the post-filter path (``oversample=True``)."""

    def search_allowed(self, idx, queries, k, allowed, size):
        mask = mask_of(allowed, size)
        return idx.search(queries, k, mask, matching=int(mask.sum()), oversample=True)


# ------------------------------------------------------------------ unreachable nodes
def _graph_with_deletes(metric: str, seed: int, m: int):
    """300 records, 100 of them then deleted. With a small ``m`` pruning leaves some live
    nodes with no link leading to them. (Nothing is added after the deletes: an add among
    tombstones can crash hnswlib 0.8.0 when m is this small, see HnswParams.)"""
    idx = _hnsw(DIM, metric, m=m, ef_construction=8 if m < 16 else 200, ef=8)
    vecs = random_vectors(300, seed=seed)
    idx.add(labels_of(300), vecs)
    gone = np.random.default_rng(seed).choice(300, size=100, replace=False)
    idx.remove(gone)
    return idx, vecs, np.setdiff1d(np.arange(300), gone)


def _found_by_own_vector(idx: HnswIndex, vecs: np.ndarray, live: np.ndarray) -> set[int]:
    """Live labels that a search for their own vector returns, the beam covering the graph."""
    idx._index.set_ef(idx.element_count)
    try:
        labels, _ = idx._index.knn_query(vecs[live], k=1)
    finally:
        idx._index.set_ef(idx.ef)
    return set(live[labels[:, 0] == live].tolist())


WEAK = [("l2", 3, seed) for seed in range(40, 46)] + [("cosine", 2, seed) for seed in range(40, 43)]


def test_unreachable_records_are_never_found():
    total = 0
    for metric, m, seed in WEAK:
        idx, vecs, live = _graph_with_deletes(metric, seed, m)
        lost = set(idx.unreachable().tolist())
        assert lost <= set(live.tolist())  # live records only, never tombstones
        assert not lost & _found_by_own_vector(idx, vecs, live), (metric, m, seed)
        total += len(lost)
    assert total >= 5  # these weak graphs do have them (measured: 53)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_a_sound_graph_has_no_unreachable_records(metric):
    idx, vecs, live = _graph_with_deletes(metric, 40, 16)
    assert idx.unreachable().tolist() == []
    if metric != "ip":  # under ip a vector need not be its own nearest
        assert _found_by_own_vector(idx, vecs, live) == set(live.tolist())


def test_link_unreachable_links_them_and_changes_nothing_else():
    before_total = after_total = 0
    for metric, m, seed in WEAK:
        idx, vecs, live = _graph_with_deletes(metric, seed, m)
        lost = idx.unreachable()
        labels, held = idx.labels(), idx.get_vectors(live)
        left = idx.link_unreachable(live, vecs[live])
        assert left.tolist() == idx.unreachable().tolist()
        assert len(left) <= len(lost)
        before_total, after_total = before_total + len(lost), after_total + len(left)
        # re-linking changes no label, tombstone or vector
        assert idx.labels().tolist() == labels.tolist()
        assert len(idx) == len(live)
        np.testing.assert_array_equal(idx.get_vectors(live), held)
    assert after_total < before_total / 4  # measured: 53 -> 4


def test_unreachable_of_small_indexes():
    idx = _hnsw(DIM, "l2")
    assert idx.unreachable().tolist() == []
    idx.add(labels_of(1), random_vectors(1, seed=41))
    assert idx.unreachable().tolist() == []
    idx.remove(labels_of(1))  # a tombstone is never reported
    assert idx.unreachable().tolist() == []

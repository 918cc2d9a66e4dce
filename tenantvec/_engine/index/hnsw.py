"""hnswlib HNSW index with tombstones, growth by resizing, and queries that never raise
hnswlib's "contiguous 2D array" error at callers."""

from __future__ import annotations

import errno
import logging
import os
import tempfile

import hnswlib
import numpy as np

from ..._fs import free_bytes
from .exact import direct_distances, prepare_query, top_k
from .graph import unreachable_labels

log = logging.getLogger("tenantvec")

# hnswlib allocates 65,536 label-operation mutexes per index (~2.5 MiB), plus one
# mutex, one level byte-count, one link-list pointer and a hash-map slot per element.
HNSW_FIXED_BYTES = 65536 * 40
_PER_ELEMENT_OVERHEAD = 40 + 4 + 8 + 48 + 2
# Unfiltered neighbours fetched per wanted hit, relative to the filter's selectivity.
_OVERSAMPLE = 2.0


def hnsw_memory_estimate(dim: int, m: int, capacity: int) -> int:
    """Resident bytes of an hnswlib index with ``capacity`` slots (measured layout)."""
    level0 = (2 * m) * 4 + 4 + dim * 4 + 8
    upper = ((m * 4 + 4) * capacity) // max(m - 1, 1)
    return HNSW_FIXED_BYTES + capacity * (level0 + _PER_ELEMENT_OVERHEAD) + upper


class HnswIndex:
    """hnswlib index plus the bookkeeping hnswlib does not expose (tombstone labels)."""

    kind = "hnsw"

    def __init__(
        self,
        dim: int,
        metric: str,
        *,
        m: int,
        ef_construction: int,
        ef: int,
        capacity: int = 1024,
    ) -> None:
        self.dim = dim
        self.metric = metric
        self.m = m
        self.ef_construction = ef_construction
        self.ef = ef
        self._index = hnswlib.Index(space=metric, dim=dim)
        self._index.init_index(
            max_elements=max(capacity, 16), ef_construction=ef_construction, M=m, random_seed=100
        )
        self._index.set_ef(ef)
        self._deleted: set[int] = set()

    # -- persistence ------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str,
        dim: int,
        metric: str,
        *,
        m: int,
        ef_construction: int,
        ef: int,
        deleted: np.ndarray,
    ) -> HnswIndex:
        """Load a snapshot written by :meth:`save` (the caller has checked its checksum)."""
        self = cls.__new__(cls)
        self.dim, self.metric, self.m = dim, metric, m
        self.ef_construction, self.ef = ef_construction, ef
        self._index = hnswlib.Index(space=metric, dim=dim)
        self._index.load_index(path)
        self._index.set_ef(ef)
        self._deleted = set(np.asarray(deleted, dtype=np.int64).tolist())
        return self

    def save(self, path: str) -> None:
        """Write the index to ``path`` (the caller makes it atomic).

        hnswlib ignores write errors (a full disk leaves a short file behind), so the
        room is checked first and the file's size after.

        :raises OSError: ``ENOSPC`` when the file does not fit or came out short.
        """
        size = self._index.index_file_size()
        directory = os.path.dirname(path) or "."
        if free_bytes(directory) < size:
            raise OSError(errno.ENOSPC, f"no room for a {size}-byte index snapshot", path)
        self._index.save_index(path)
        written = os.path.getsize(path)
        if written != size:
            raise OSError(errno.ENOSPC, f"index snapshot came out {written} of {size} bytes", path)

    def unreachable(self) -> np.ndarray:
        """Labels of live records that no search can return: nodes no link leads to
        (written to a temporary file and read back, as hnswlib exposes no links)."""
        with tempfile.TemporaryDirectory(prefix="tenantvec-graph-") as tmp:
            path = os.path.join(tmp, "index.hnsw")
            self.save(path)
            return unreachable_labels(path)

    def link_unreachable(self, labels: np.ndarray, vectors: np.ndarray, rounds: int = 3) -> np.ndarray:
        """Re-insert the records that no search can reach, taking their vectors from
        ``vectors`` (rows of ``labels``): hnswlib links a re-added label anew. Returns the
        labels still unreachable after ``rounds`` passes."""
        lost = self.unreachable()
        for _ in range(rounds):
            rows = np.flatnonzero(np.isin(labels, lost))
            if not len(rows):
                break
            self._index.add_items(vectors[rows], labels[rows], num_threads=1)
            lost = self.unreachable()
        return lost

    def deleted_labels(self) -> np.ndarray:
        return np.fromiter(sorted(self._deleted), dtype=np.int64, count=len(self._deleted))

    @property
    def element_count(self) -> int:
        return int(self._index.element_count)

    # -- interface --------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.element_count) - len(self._deleted)

    @property
    def deleted(self) -> int:
        return len(self._deleted)

    @property
    def memory_bytes(self) -> int:
        return hnsw_memory_estimate(self.dim, self.m, int(self._index.max_elements)) + 64 * len(
            self._deleted
        )

    def add(self, labels: np.ndarray, vectors: np.ndarray, num_threads: int = 1) -> None:
        need = int(self._index.element_count) + len(labels)
        cap = int(self._index.max_elements)
        if need > cap:
            self._index.resize_index(max(need, cap * 2))
        self._index.add_items(vectors, labels, num_threads=num_threads)

    def remove(self, labels: np.ndarray) -> None:
        for lab in np.asarray(labels).tolist():
            if lab in self._deleted:
                continue
            try:
                self._index.mark_deleted(lab)
            except RuntimeError:  # unknown label: nothing to remove
                continue
            self._deleted.add(lab)

    def labels(self) -> np.ndarray:
        ids = np.asarray(self._index.get_ids_list(), dtype=np.int64)
        if self._deleted:
            ids = ids[~np.isin(ids, self.deleted_labels())]
        return np.sort(ids)

    def get_vectors(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.get_items(labels.tolist(), return_type="numpy"), dtype=np.float32)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        matching: int | None = None,
        oversample: bool = False,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` (labels, distances) per query, nearest first; never short.

        ``allowed`` is a boolean mask indexed by label with ``matching`` set bits. By
        default hnswlib tests it inside the search; with ``oversample`` the search runs
        unfiltered for enough neighbours that ``k`` matching ones survive, and queries
        that come up short are re-run with the in-search filter.
        """
        live = len(self)
        if allowed is not None:
            live = int(allowed.sum()) if matching is None else matching
        k = min(k, live)
        if k <= 0:
            empty = (np.empty(0, np.int64), np.empty(0, np.float32))
            return [empty for _ in range(len(queries))]
        if allowed is not None and oversample:
            out = self._post_filtered(queries, k, allowed, live)
            short = [i for i, (labels, _) in enumerate(out) if len(labels) < k]
            if short:
                redo = self._knn(queries[short], k, allowed, live)
                for i, res in zip(short, redo):
                    out[i] = res
            return out
        return self._knn(queries, k, allowed, live)

    def nearest(self, query: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        """Top-``k`` labels and distances of one unfiltered query, as Python lists: one
        hnswlib call in the common case (few Python steps after a cache-cold graph walk)."""
        k = min(k, len(self))  # hnswlib allocates k results up front (and leaks them on error)
        if k <= 0:
            return [], []
        try:
            labels, dists = self._index.knn_query(query, k, 1)  # positional: k, num_threads
            return labels.tolist()[0], dists.tolist()[0]
        except RuntimeError:  # fewer than k reachable (tombstones, k > live): widen or scan
            labels, dists = self.search(query[None, :], k)[0]
            return labels.tolist(), dists.tolist()

    def _post_filtered(
        self, queries: np.ndarray, k: int, allowed: np.ndarray, matching: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        total = len(self)
        want = min(total, int(np.ceil(k * total / matching * _OVERSAMPLE)))
        res = self._knn(queries, want, None, total)
        out = []
        for labels, dists in res:
            keep = np.flatnonzero(allowed[labels])[:k]
            out.append((labels[keep], dists[keep]))
        return out

    def _knn(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, live: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        filt = None if allowed is None else allowed.__getitem__
        ef = max(self.ef, k)
        while True:
            try:
                if ef != self.ef:
                    self._index.set_ef(ef)
                labels, dists = self._index.knn_query(queries, k=k, num_threads=1, filter=filt)
                return list(zip(labels, dists))
            except RuntimeError:
                # Fewer than k reachable hits (tombstones or a selective filter): widen
                # the beam; past the live count, exact search is both right and cheaper.
                if ef >= live:
                    break
                ef = min(ef * 4, max(live, k))
            finally:
                if ef != self.ef:
                    self._index.set_ef(self.ef)
        log.debug("hnsw search fell back to exact scan (k=%d, live=%d)", k, live)
        cand = self.labels() if allowed is None else np.flatnonzero(allowed)
        vecs = self.get_vectors(cand)
        out = []
        for q in prepare_query(self.metric, queries):
            idx, d = top_k(direct_distances(self.metric, vecs, q), k)
            out.append((cand[idx], d))
        return out

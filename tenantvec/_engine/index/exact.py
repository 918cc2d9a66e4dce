"""Exact (brute-force) search over a dense numpy matrix."""

from __future__ import annotations

import math

import numpy as np

_INITIAL_CAPACITY = 64


def prepare_query(metric: str, queries: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Normalise query rows for cosine; other metrics use them as given. With ``out``,
    the result is written there (and returned)."""
    if metric == "cosine":
        norms = np.sqrt(np.einsum("ij,ij->i", queries, queries))
        return np.divide(queries, norms[:, None], out=out)
    if out is not None:
        out[...] = queries
        return out
    return queries


def distances(metric: str, mat: np.ndarray, queries: np.ndarray, sq: np.ndarray | None) -> np.ndarray:
    """(m, n) hnswlib-style distances between prepared ``queries`` and stored rows ``mat``.

    ``sq`` holds the squared norms of ``mat`` rows for l2 (ignored otherwise).
    """
    dots = (mat @ queries[0])[None, :] if len(queries) == 1 else queries @ mat.T
    if metric == "l2":
        assert sq is not None, "l2 distances need the squared norms"
        qsq = np.einsum("ij,ij->i", queries, queries)
        d = (sq[None, :] - 2.0 * dots) + qsq[:, None]
        np.maximum(d, 0.0, out=d)
        return d
    return 1.0 - dots


def direct_distances(metric: str, mat: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Distances of prepared rows to one prepared query, l2 summed directly (no expansion):
    slower, but exact for few rows whatever their offset."""
    if metric == "l2":
        diff = mat - query
        return np.einsum("ij,ij->i", diff, diff)
    return 1.0 - mat @ query


def top_k(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` smallest entries of a 1-D array, ascending."""
    n = dist.shape[0]
    if k < n:
        part = np.argpartition(dist, k - 1)[:k]
    else:
        part = np.arange(n)
    order = part[np.argsort(dist[part], kind="stable")]
    return order, dist[order]


class ExactIndex:
    """Dense float32 matrix with swap-remove deletes; answers are exact.

    Under l2, rows are stored relative to an origin near their mean, so that the
    ``|v|^2 - 2 v.q + |q|^2`` expansion keeps float32 precision for vectors with a large
    common offset (l2 distance does not depend on the origin). When the data drifts so
    that the offset from the origin dominates the spread, the rows are re-centred.
    """

    kind = "exact"

    def __init__(self, dim: int, metric: str, capacity: int = _INITIAL_CAPACITY) -> None:
        self.dim = dim
        self.metric = metric
        cap = max(capacity, 1)
        self._mat = np.empty((cap, dim), dtype=np.float32)
        self._labels = np.empty(cap, dtype=np.int64)
        self._sq = np.empty(cap, dtype=np.float32) if metric == "l2" else None
        self._origin: np.ndarray | None = None
        self._row_sum = np.zeros(dim, dtype=np.float64)  # l2: running sums for drift checks
        self._sq_sum = 0.0
        self._row: dict[int, int] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def deleted(self) -> int:
        return 0

    @property
    def memory_bytes(self) -> int:
        per_row = self._mat.itemsize * self.dim + 8 + (4 if self._sq is not None else 0)
        return self._mat.shape[0] * per_row + 100 * len(self._row)

    def _grow(self, need: int) -> None:
        cap = self._mat.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        mat = np.empty((new_cap, self.dim), dtype=np.float32)
        mat[: self._n] = self._mat[: self._n]
        labels = np.empty(new_cap, dtype=np.int64)
        labels[: self._n] = self._labels[: self._n]
        self._mat, self._labels = mat, labels
        if self._sq is not None:
            sq = np.empty(new_cap, dtype=np.float32)
            sq[: self._n] = self._sq[: self._n]
            self._sq = sq

    def add(self, labels: np.ndarray, vectors: np.ndarray, num_threads: int = 1) -> None:  # noqa: ARG002 (protocol; exact adds are one copy)
        n = len(labels)
        self._grow(self._n + n)
        s = slice(self._n, self._n + n)
        rows = self._to_rows(vectors, out=self._mat[s])
        self._labels[s] = labels
        if self._sq is not None:
            self._sq[s] = np.einsum("ij,ij->i", rows, rows)
            self._row_sum += rows.sum(axis=0, dtype=np.float64)
            self._sq_sum += float(self._sq[s].sum(dtype=np.float64))
        row = self._row
        for i, lab in enumerate(labels.tolist(), start=self._n):
            row[lab] = i
        self._n += n
        if self._sq is not None:
            self._recentre_if_drifted()

    def _recentre_if_drifted(self) -> None:
        assert self._sq is not None  # l2 only
        assert self._origin is not None  # set by the first add
        n = self._n
        mean = self._row_sum / n
        if float(mean @ mean) <= self._sq_sum / n / 4:
            return
        shift = mean.astype(np.float32)
        self._mat[:n] -= shift
        self._origin = self._origin + shift
        self._sq[:n] = np.einsum("ij,ij->i", self._mat[:n], self._mat[:n])
        self._row_sum = self._mat[:n].sum(axis=0, dtype=np.float64)
        self._sq_sum = float(self._sq[:n].sum(dtype=np.float64))

    def remove(self, labels: np.ndarray) -> None:
        row = self._row
        for lab in np.asarray(labels).tolist():
            i = row.pop(lab, None)
            if i is None:
                continue
            last = self._n - 1
            if self._sq is not None:
                self._row_sum -= self._mat[i]
                self._sq_sum -= float(self._sq[i])
            if i != last:
                moved = int(self._labels[last])
                self._mat[i] = self._mat[last]
                self._labels[i] = moved
                if self._sq is not None:
                    self._sq[i] = self._sq[last]
                row[moved] = i
            self._n = last

    def nearest(self, query: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        """Top-``k`` labels and distances of one unfiltered query, as Python lists.

        The common query, with as few numpy calls as possible: cosine and ip rank by the
        raw dot product; one partition selects the ``k`` largest and only those are
        sorted and turned into distances. (A partition with ``k`` kth points, which would
        also sort them, costs about a pass per point on real queries: 6 µs against 3 at
        500 rows, 10 against 4 at 1,000.)
        """
        n = self._n
        if self.metric == "l2" or not n:
            labels, dists = self.search(query[None, :], k)[0]
            return labels.tolist(), dists.tolist()
        dots = self._mat[:n].dot(query)
        if k < n:
            top = dots.argpartition(n - k)[n - k :]
            sims = dots[top]
            best = sims.argsort()[::-1]
            order, sims = top[best], sims[best]
        else:
            order = dots.argsort()[::-1]
            sims = dots[order]
        if self.metric == "cosine":
            sims *= 1.0 / math.sqrt(float(query.dot(query)))
        # float32 arithmetic, like the batch path and hnswlib (ip: equal to the batch path)
        return self._labels[order].tolist(), (1.0 - sims).tolist()

    def _to_rows(self, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Vectors as this index stores rows (normalised, or re-centred for l2), written
        to ``out`` when given."""
        if self.metric != "l2":
            return prepare_query(self.metric, vectors, out)
        if self._origin is None:
            self._origin = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        return np.subtract(vectors, self._origin, out=out)

    def labels(self) -> np.ndarray:
        return self._labels[: self._n].copy()

    def get_vectors(self, labels: np.ndarray) -> np.ndarray:
        row = self._row
        rows = np.fromiter((row[lab] for lab in np.asarray(labels).tolist()), dtype=np.int64)
        mat = self._mat[rows]
        return mat + self._origin if self._origin is not None else mat

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact top-``k``; ``allowed`` is a boolean mask indexed by label."""
        n = self._n
        mat, labels = self._mat[:n], self._labels[:n]
        sq = self._sq[:n] if self._sq is not None else None
        if allowed is not None:
            rows = np.flatnonzero(allowed[labels])
            mat, labels = mat[rows], labels[rows]
            sq = sq[rows] if sq is not None else None
        if len(labels) == 0:
            empty = (np.empty(0, np.int64), np.empty(0, np.float32))
            return [empty for _ in range(len(queries))]
        dist = distances(self.metric, mat, self._to_rows(queries), sq)
        k = min(k, len(labels))
        out = []
        for row_d in dist:
            idx, d = top_k(row_d, k)
            out.append((labels[idx], d))
        return out

"""Vector index backends: exact numpy search for small tenants, hnswlib HNSW above.

Both backends share one small interface (:class:`VectorIndex`) and one distance
definition (hnswlib's): cosine = 1 - cosine similarity, ip = 1 - dot, l2 = squared
Euclidean. Labels are the shard's int64 record labels; ids live above this layer.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from .exact import ExactIndex, distances, prepare_query
from .hnsw import HnswIndex

__all__ = ["VectorIndex", "ExactIndex", "HnswIndex", "build_index", "distances", "prepare_query"]

log = logging.getLogger("tenantvec")


def build_index(kind: str, dim: int, metric: str, labels: np.ndarray, mat: np.ndarray, *, m: int,
                ef_construction: int, ef: int, tenant: str) -> ExactIndex | HnswIndex:
    """A new index of ``kind`` ("exact" or "hnsw") holding the rows ``mat`` under
    ``labels``, every core adding them. A new HNSW graph gets the records it left
    unreachable re-inserted (see :mod:`.graph`); those that stay so are logged, naming
    ``tenant``."""
    index: ExactIndex | HnswIndex
    if kind == "hnsw":
        index = HnswIndex(dim, metric, m=m, ef_construction=ef_construction, ef=ef, capacity=max(len(labels), 1024))
    else:
        index = ExactIndex(dim, metric, capacity=max(len(labels), 64))
    if len(labels):
        index.add(labels, mat, num_threads=-1)
        if isinstance(index, HnswIndex):
            _link_unreachable(index, labels, mat, tenant)
    return index


def _link_unreachable(index: HnswIndex, labels: np.ndarray, mat: np.ndarray, tenant: str) -> None:
    """Re-insert the records a new graph left unreachable."""
    try:
        lost = index.link_unreachable(labels, mat)
    except OSError as exc:  # the links are read from a temporary copy of the index
        log.warning("tenant %r: could not check the new HNSW graph for unreachable records: %s", tenant, exc)
        return
    if len(lost):
        log.warning(
            "tenant %r: %d records stay unreachable in the new HNSW graph (labels %s): only "
            "get() and queries with k >= the record count return them",
            tenant, len(lost), lost[:5].tolist(),
        )


class VectorIndex(Protocol):
    """What a shard needs from a vector index."""

    kind: str

    def __len__(self) -> int:
        """Live (searchable) vectors."""

    @property
    def deleted(self) -> int:
        """Tombstones still held (0 for backends that remove in place)."""

    @property
    def memory_bytes(self) -> int:
        """Estimated resident bytes of the index."""

    def add(self, labels: np.ndarray, vectors: np.ndarray, num_threads: int = 1) -> None:
        """Add vectors under new labels (never re-used), with up to ``num_threads``
        threads where the backend can use them (-1: every core)."""

    def remove(self, labels: np.ndarray) -> None:
        """Remove labels; unknown labels are ignored."""

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` (labels, distances) per query row, nearest first."""

    def nearest(self, query: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        """Top-``k`` (labels, distances) of one unfiltered 1-D query as Python lists,
        nearest first: the fast path of the common single-vector query."""

    def get_vectors(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of live labels, as the index holds them (normalised for cosine)."""

    def labels(self) -> np.ndarray:
        """All live labels."""

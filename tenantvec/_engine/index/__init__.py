"""Vector index backends: exact numpy search for small tenants, hnswlib HNSW above.

Both backends share one small interface (:class:`VectorIndex`) and one distance
definition (hnswlib's): cosine = 1 - cosine similarity, ip = 1 - dot, l2 = squared
Euclidean. Labels are the shard's int64 record labels; ids live above this layer.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .exact import ExactIndex, distances, prepare_query
from .hnsw import HnswIndex

__all__ = ["VectorIndex", "ExactIndex", "HnswIndex", "distances", "prepare_query"]


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

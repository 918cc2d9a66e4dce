"""Frozen result types returned by the public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Hit:
    """One query result: smaller ``distance`` is closer (hnswlib's distances)."""

    id: str
    distance: float
    metadata: dict[str, Any]
    document: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """One stored record; ``vector`` is ``None`` unless ``include_vectors=True``."""

    id: str
    metadata: dict[str, Any]
    document: str | None
    created_at: float
    updated_at: float
    vector: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What a tenant holds and how it is stored (``Tenant.info()``)."""

    tenant: str
    count: int
    dim: int
    metric: str
    state: str  # "hot", "cold" or "inactive"
    index_kind: str  # "exact" or "hnsw"
    deleted: int  # tombstones in the index (removed by compaction)
    bytes_on_disk: int
    memory_bytes: int
    seq: int  # last committed operation sequence number
    checkpoint_seq: int  # operation the index snapshot reflects
    last_write: float | None
    index_params: dict[str, Any] = field(default_factory=dict)

    @property
    def deleted_fraction(self) -> float:
        """Tombstones as a fraction of index entries (live plus deleted)."""
        total = self.count + self.deleted
        return self.deleted / total if total else 0.0


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """How a query was answered (``Tenant.query(..., explain=True)``)."""

    strategy: str  # "exact", "hnsw", "exact-filtered", "hnsw-post", "empty"
    matching: int | None  # records matching the filter (None: no filter)
    live: int
    ef: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """This process's view of a store (``Store.stats()``): tenants by hot/cold, the
    hot-shard LRU's counters and hot memory against the budget."""

    tenants: int  # tenants in the store
    hot: int  # loaded in this process
    cold: int  # files only
    loads: int  # tenants loaded since the store was opened
    evictions: int  # hot tenants closed to stay within max_hot and memory_budget
    hits: int  # calls that found their tenant hot
    misses: int  # calls that had to load it
    hit_rate: float  # hits / (hits + misses), 0.0 before the first call
    memory_bytes: int  # hot tenants' memory (indexes, in-memory records, filter columns)
    memory_budget: int
    max_hot: int  # effective limit (lowered to fit the open-file limit)

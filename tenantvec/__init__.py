"""tenantvec: embedded per-tenant vector memory for multi-tenant AI agents.

Every tenant gets a physically separate LMDB environment and vector index; an LRU
shard manager keeps the recently used tenants hot under a memory budget.

>>> import tenantvec                                         # doctest: +SKIP
>>> with tenantvec.Store("/tmp/mem", dim=384) as store:
...     acme = store.tenant("acme", create=True)
...     acme.add(vectors, documents=texts, metadata=[{"kind": "fact"}] * len(texts))
...     hits = acme.query(query_vector, k=5, where={"kind": "fact"})
"""

from __future__ import annotations

from ._options import HnswParams
from ._store import Store, Tenant, open
from ._types import Hit, QueryPlan, Record, TenantInfo
from .errors import (
    CorruptExport,
    CorruptShard,
    DimensionMismatch,
    DuplicateId,
    InvalidArgument,
    InvalidFilter,
    InvalidTenantId,
    InvalidVector,
    ReadOnlyStore,
    StorageError,
    StorageFull,
    StoreClosed,
    StoreLocked,
    TenantExists,
    TenantInactive,
    TenantNotFound,
    TenantVecError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Store",
    "Tenant",
    "open",
    "Hit",
    "Record",
    "TenantInfo",
    "QueryPlan",
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
    "ReadOnlyStore",
    "CorruptShard",
    "CorruptExport",
    "StorageError",
    "StorageFull",
    "TenantInactive",
    "StoreClosed",
]

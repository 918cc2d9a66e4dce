"""tenantvec: embedded per-tenant vector memory for multi-tenant AI agents.

Every tenant gets a physically separate LMDB environment and vector index; an LRU
shard manager keeps the recently used tenants hot under a memory budget.

>>> import tenantvec                                         # doctest: +SKIP
>>> with tenantvec.Store("/tmp/mem", dim=384) as store:
...     acme = store.tenant("acme", create=True)
...     acme.add(vectors, documents=texts, metadata=[{"kind": "fact"}] * len(texts))
...     hits = acme.query(query_vector, k=5, where={"kind": "fact"})

``import tenantvec`` is cheap (it loads this module and :mod:`tenantvec.errors`): every
other public name is imported when first used (:func:`__getattr__`, PEP 562), and the
storage engine (lmdb, hnswlib) only when a store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ConsolidationError,
    CorruptExport,
    CorruptShard,
    DimensionMismatch,
    DuplicateId,
    EmbedderError,
    EmbedderMismatch,
    InvalidArgument,
    InvalidFilter,
    InvalidTenantId,
    InvalidVector,
    MemoryNotFound,
    ReadOnlyStore,
    SessionExpired,
    SessionNotFound,
    StorageError,
    StorageFull,
    StoreClosed,
    StoreLocked,
    StoreNotFound,
    TenantExists,
    TenantInactive,
    TenantMismatch,
    TenantNotFound,
    TenantVecError,
)

if TYPE_CHECKING:
    from ._engine.compact import CompactReport
    from ._engine.listing import TenantSummary
    from ._engine.transfer import ExportReport
    from ._engine.verify import VerifyReport
    from ._options import HnswParams
    from ._store import Store, open
    from ._tenant import Tenant
    from ._types import Hit, QueryPlan, Record, StoreStats, TenantInfo

__all__ = [
    "__version__",
    "Store",
    "Tenant",
    "open",
    "Hit",
    "Record",
    "TenantInfo",
    "QueryPlan",
    "StoreStats",
    "TenantSummary",
    "VerifyReport",
    "CompactReport",
    "ExportReport",
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
    "StoreNotFound",
    "ReadOnlyStore",
    "CorruptShard",
    "CorruptExport",
    "StorageError",
    "StorageFull",
    "TenantInactive",
    "StoreClosed",
    "EmbedderError",
    "EmbedderMismatch",
    "TenantMismatch",
    "MemoryNotFound",
    "SessionNotFound",
    "SessionExpired",
    "ConsolidationError",
]


#: Public names imported on first use, by the module (relative to this package) defining them.
_LAZY = {
    "Store": "_store", "open": "_store", "Tenant": "_tenant", "HnswParams": "_options",
    "Hit": "_types", "Record": "_types", "TenantInfo": "_types", "QueryPlan": "_types", "StoreStats": "_types",
    "TenantSummary": "_engine.listing", "VerifyReport": "_engine.verify", "CompactReport": "_engine.compact",
    "ExportReport": "_engine.transfer",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562) and keep it here, so
    that later lookups are plain attribute reads."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tenantvec' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""Capacity planning from tenantvec's own measured per-record costs (``tenantvec plan``).

The constants below were measured with ``tools/measure_costs.py`` (tenantvec 0.1.0,
Linux x86-64, LMDB 0.9.x via py-lmdb 3.0, 4 KiB pages, hnswlib 0.8.0): one tenant filled
with 20,000 memory-shaped records (id ``mem-00000000``, a 4-key metadata dict, an
~85-character document: 165 bytes of msgpack) at dim 16, 64, 384 and 768, reading the
file sizes and the indexes' own memory accounting. The model reproduces the measured
``data.mdb`` bytes per record within 0.5% at every dimension (315, 525, 2288, 4352 B).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from .._options import (
    DEFAULT_HNSW_M,
    DEFAULT_HNSW_THRESHOLD,
    DEFAULT_METRIC,
    DEFAULT_PLAN_FIELDS,
    DEFAULT_PLAN_HOT_FRACTION,
    check_dim,
    check_metric,
)
from ..errors import InvalidArgument
from .index.hnsw import HNSW_FIXED_BYTES, hnsw_memory_estimate
from .layout import packb, unpackb

# --- LMDB (measured; see tools/measure_costs.py) ------------------------------------------
#: LMDB page size on the measured system.
LMDB_PAGE_BYTES = 4096
#: Usable bytes of a page (page minus its 16-byte header).
LMDB_PAGE_USABLE = 4080
#: Bytes a key/value pair costs in a leaf page besides key and value (8-byte node header
#: plus the 2-byte slot); labels are 8-byte keys.
LMDB_NODE_OVERHEAD = 10
#: Largest inline node; larger values go to overflow pages (measured: a 2016-byte vector
#: is inline, a 2032-byte one overflows).
LMDB_MAX_INLINE_NODE = 2038
#: Records, vectors and the op log are keyed by increasing labels and written with
#: MDB_APPEND: measured, leaf pages fill completely (two 384-d vectors per page).
LMDB_APPEND_SLACK_NODES = 0
#: The id map is keyed by the caller's ids (uuid4 hex by default: random order): measured
#: leaf fill 0.67 (52 B/entry for 32-byte ids appended in order, 75.6 B in random order).
LMDB_RANDOM_FILL = 0.67
#: Pages freed by copy-on-write and the pruned op log that stay in data.mdb until
#: compaction (measured residual: 14-16 B per record at every dimension).
LMDB_CHURN_BYTES_PER_RECORD = 15
#: An empty tenant (data.mdb with its 6 named databases + lock.mdb for 126 readers).
EMPTY_TENANT_DISK_BYTES = 45_056
#: msgpack bytes of one record [id, metadata, document, created_at, updated_at] in the
#: measured shape; pass your own (``--record-bytes``) when documents are longer.
DEFAULT_RECORD_BYTES = 165
#: Default id length: uuid4 hex.
DEFAULT_ID_BYTES = 32

# --- indexes -------------------------------------------------------------------------------
#: index.hnsw bytes per element = 4*dim + 8*m + 16 + (4*m + 4)/(m - 1) (level-0 links,
#: vector, label, link-list size, expected upper levels); measured 149 + 4*dim at m=16.
HNSW_FILE_HEADER_BYTES = 100
#: Exact index memory per record: float32 row + int64 label (+ float32 norm for l2)
#: + ~100 bytes for the label->row dict entry (ExactIndex.memory_bytes).
EXACT_DICT_BYTES = 100
#: Payload (filter) columns per record and metadata field: float64 + int32 + flag byte;
#: HNSW tenants add an int8 copy of each vector plus two float32s (scale, squared norm).
#: Built on a tenant's first filtered call.
FILTER_BYTES_PER_FIELD = 13
#: A hot shard keeps records decoded in memory (tenantvec._engine.hotrecs), counted by this
#: estimate from their msgpack bytes (and ``tenantvec plan`` uses it too): those bytes,
#: the metadata dict itself, this much per record (string headers, entry tuple, slot, less
#: the packed timestamps) and PLAN_DECODED_FIELD_BYTES per metadata field (key and value
#: object headers beyond their packed bytes). Fitted to the counted size of the measured
#: record shape with 0-4 fields (within 3%).
PLAN_DECODED_RECORD_BYTES = 231
PLAN_DECODED_FIELD_BYTES = 88
#: Fds per hot shard (data.mdb, lock.mdb, a snapshot being read or written).
FDS_PER_HOT_TENANT = 3


def leaf_bytes(key: int, value: int, *, appended: bool) -> float:
    """Bytes of LMDB leaf space one key/value pair costs, amortised (with overflow pages)."""
    node = key + value + LMDB_NODE_OVERHEAD
    if node > LMDB_MAX_INLINE_NODE:  # value in its own overflow pages, a small node in the leaf
        pages = math.ceil((value + 16) / LMDB_PAGE_BYTES)
        small = key + 8 + LMDB_NODE_OVERHEAD
        return pages * LMDB_PAGE_BYTES + LMDB_PAGE_BYTES / (LMDB_PAGE_USABLE // small - LMDB_APPEND_SLACK_NODES)
    per_page = LMDB_PAGE_USABLE // node
    if appended:
        return LMDB_PAGE_BYTES / max(per_page - LMDB_APPEND_SLACK_NODES, 1)
    return LMDB_PAGE_BYTES / max(per_page * LMDB_RANDOM_FILL, 1.0)


def lmdb_bytes_per_record(dim: int, *, record_bytes: int = DEFAULT_RECORD_BYTES,
                          id_bytes: int = DEFAULT_ID_BYTES, ids_in_order: bool = False) -> float:
    """data.mdb bytes one record costs: its vector, its record and its id map entry
    (``ids_in_order``: ids arrive sorted, e.g. ``mem-00000001``; uuid4 ids do not)."""
    return (  # each value ends in its CRC32 (4 bytes, see tenantvec._engine.checksum)
        leaf_bytes(8, 4 * dim + 4, appended=True)
        + leaf_bytes(8, record_bytes + 4, appended=True)
        + leaf_bytes(id_bytes, 8 + 4, appended=ids_in_order)
        + LMDB_CHURN_BYTES_PER_RECORD
    )


def hnsw_file_bytes(dim: int, m: int, n: int) -> int:
    """Bytes of an index.hnsw snapshot holding ``n`` elements."""
    per = 4 * dim + 8 * m + 16 + (4 * m + 4) / max(m - 1, 1)
    return int(HNSW_FILE_HEADER_BYTES + n * per)


def index_memory_bytes(kind: str, dim: int, m: int, n: int, metric: str = "cosine") -> int:
    """Accounted memory of a freshly built index of ``n`` vectors (what counts against
    ``memory_budget``; growth by doubling can add up to the same again)."""
    if kind == "hnsw":
        return hnsw_memory_estimate(dim, m, max(n, 1024))
    return max(n, 64) * (4 * dim + 8 + (4 if metric == "l2" else 0)) + EXACT_DICT_BYTES * n


def hot_records_bytes(n: int, record_bytes: int, fields: int) -> int:
    """Estimated in-memory records of a hot tenant of ``n`` records."""
    meta_dict = sys.getsizeof(unpackb(packb({str(i): 0 for i in range(fields)})))  # as msgpack sizes it
    return n * (record_bytes + PLAN_DECODED_RECORD_BYTES + meta_dict + PLAN_DECODED_FIELD_BYTES * fields)


def filter_columns_bytes(kind: str, dim: int, n: int, fields: int) -> int:
    """Payload columns of a hot tenant after its first filtered query."""
    per = 1 + FILTER_BYTES_PER_FIELD * (fields + 2) + (dim + 8 if kind == "hnsw" else 0)
    return per * n


@dataclass(frozen=True)
class CapacityPlan:
    """Disk for all tenants and memory for the hot ones (``tenantvec plan``)."""

    tenants: int
    records_per_tenant: int
    dim: int
    hot_fraction: float
    index_kind: str
    hot_tenants: int
    lmdb_bytes_per_record: float
    disk_per_tenant: int
    disk_total: int
    index_memory_per_tenant: int
    records_memory_per_tenant: int
    filter_memory_per_tenant: int
    memory_hot: int
    suggested_memory_budget: int
    suggested_max_hot: int
    open_files: int
    constants: dict[str, Any] = field(default_factory=dict)


def plan_capacity(
    tenants: int,
    records_per_tenant: int,
    dim: int,
    hot_fraction: float = DEFAULT_PLAN_HOT_FRACTION,
    *,
    metric: str = DEFAULT_METRIC,
    m: int = DEFAULT_HNSW_M,
    hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD,
    record_bytes: int = DEFAULT_RECORD_BYTES,
    id_bytes: int = DEFAULT_ID_BYTES,
    fields: int = DEFAULT_PLAN_FIELDS,
) -> CapacityPlan:
    """Estimate disk and memory for ``tenants`` tenants of ``records_per_tenant`` records.

    Disk counts every tenant (data.mdb, lock.mdb, index.hnsw after compaction); memory
    counts the hot tenants' indexes, in-memory records and filter columns, which is what
    ``memory_budget`` bounds. LMDB pages live in the OS page cache, outside the budget.
    """
    check_dim(dim)
    check_metric(metric)
    for name, v in (("tenants", tenants), ("records_per_tenant", records_per_tenant)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidArgument(f"{name} must be a non-negative integer, got {v!r}")
    if not 0 <= hot_fraction <= 1:
        raise InvalidArgument(f"hot_fraction must be between 0 and 1, got {hot_fraction!r}")
    n = records_per_tenant
    kind = "hnsw" if n > hnsw_threshold else "exact"
    per_record = lmdb_bytes_per_record(dim, record_bytes=record_bytes, id_bytes=id_bytes)
    disk_tenant = int(EMPTY_TENANT_DISK_BYTES + n * per_record + (hnsw_file_bytes(dim, m, n) if kind == "hnsw" else 0))
    hot = math.ceil(tenants * hot_fraction)
    mem_index = index_memory_bytes(kind, dim, m, n, metric)
    mem_records = hot_records_bytes(n, record_bytes, fields)
    mem_filter = filter_columns_bytes(kind, dim, n, fields)
    memory_hot = hot * (mem_index + mem_records + mem_filter)
    constants = {
        "LMDB_PAGE_BYTES": LMDB_PAGE_BYTES,
        "LMDB_NODE_OVERHEAD": LMDB_NODE_OVERHEAD,
        "LMDB_MAX_INLINE_NODE": LMDB_MAX_INLINE_NODE,
        "LMDB_APPEND_SLACK_NODES": LMDB_APPEND_SLACK_NODES,
        "LMDB_RANDOM_FILL": LMDB_RANDOM_FILL,
        "LMDB_CHURN_BYTES_PER_RECORD": LMDB_CHURN_BYTES_PER_RECORD,
        "EMPTY_TENANT_DISK_BYTES": EMPTY_TENANT_DISK_BYTES,
        "record_bytes": record_bytes,
        "id_bytes": id_bytes,
        "HNSW_FIXED_BYTES": HNSW_FIXED_BYTES,
        "hnsw_bytes_per_element": round(hnsw_memory_estimate(dim, m, 1_000_000) / 1_000_000 - HNSW_FIXED_BYTES / 1e6, 1),
        "exact_bytes_per_record": 4 * dim + 8 + (4 if metric == "l2" else 0) + EXACT_DICT_BYTES,
        "FILTER_BYTES_PER_FIELD": FILTER_BYTES_PER_FIELD,
        "PLAN_DECODED_RECORD_BYTES": PLAN_DECODED_RECORD_BYTES,
        "PLAN_DECODED_FIELD_BYTES": PLAN_DECODED_FIELD_BYTES,
        "m": m,
        "hnsw_threshold": hnsw_threshold,
        "metadata_fields": fields,
        "measured_by": "tools/measure_costs.py",
    }
    return CapacityPlan(
        tenants=tenants, records_per_tenant=n, dim=dim, hot_fraction=hot_fraction, index_kind=kind,
        hot_tenants=hot, lmdb_bytes_per_record=round(per_record, 1), disk_per_tenant=disk_tenant,
        disk_total=disk_tenant * tenants, index_memory_per_tenant=mem_index,
        records_memory_per_tenant=mem_records, filter_memory_per_tenant=mem_filter, memory_hot=memory_hot,
        suggested_memory_budget=int(memory_hot * 1.25) + (1 << 20),
        suggested_max_hot=max(hot, 1), open_files=FDS_PER_HOT_TENANT * max(hot, 1) + 48,
        constants=constants,
    )

"""Validated, frozen store options (one object, checked once at construction)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Final

from .errors import InvalidArgument

METRICS = ("cosine", "l2", "ip")
DURABILITY = ("full", "process")

# ---------------------------------------------------------------------------- defaults
# The one table of store defaults: Store's signature, StoreOptions, HnswParams, the CLI's
# options and ``tenantvec plan`` read them from here.
#: Dimension and metric of a new store (then persisted in ``tenantvec.json``) and its tenants.
DEFAULT_DIM: Final = 384
DEFAULT_METRIC: Final = "cosine"
#: Hot-tenant memory (indexes, in-memory records, filter columns): 1 GiB.
DEFAULT_MEMORY_BUDGET: Final = 1024**3
#: Most tenants hot at once (also capped by the open-file limit).
DEFAULT_MAX_HOT: Final = 256
DEFAULT_DURABILITY: Final = "full"
#: A tenant switches from exact search to HNSW above this many records.
DEFAULT_HNSW_THRESHOLD: Final = 2048
#: hnswlib's ``M``, ``ef_construction`` and ``ef`` for new HNSW indexes.
DEFAULT_HNSW_M: Final = 16
DEFAULT_HNSW_EF_CONSTRUCTION: Final = 200
DEFAULT_HNSW_EF: Final = 96
#: Fraction of a tenant's index entries that are tombstones when it compacts by itself.
DEFAULT_COMPACT_THRESHOLD: Final = 0.5
#: Seconds between background writes of dirty index snapshots (0: never in the background).
DEFAULT_FLUSH_INTERVAL: Final = 30.0
#: Initial LMDB map of a writer's environment: 1 GiB of address space (see StoreOptions).
DEFAULT_MAP_SIZE: Final = 1024**3
#: ``tenantvec plan``'s workload assumptions: fraction of tenants hot at once, and
#: metadata keys per record.
DEFAULT_PLAN_HOT_FRACTION: Final = 0.1
DEFAULT_PLAN_FIELDS: Final = 4

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
#: Largest byte size (memory_budget, map_size) and count (max_hot, hnsw_threshold)
#: accepted: 2**62 (4 EiB), far above any real machine and safely inside C's int64.
MAX_SIZE = 2**62
#: Largest ``HnswParams.ef``/``ef_construction`` (a C int): hnswlib fails on larger ones.
MAX_HNSW_EF = 2**31 - 1


def _show(value: object) -> str:
    """``repr(value)``, but an integer too long to print (Python refuses past 4300 digits)
    is described by its size."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def parse_size(value: int | str, name: str = "memory_budget") -> int:
    """Parse ``"1GiB"``, ``"512MB"``, ``"2.5 GiB"`` or a byte count into bytes.

    :raises InvalidArgument: for anything else, or more than :data:`MAX_SIZE`, naming the value.
    """
    if isinstance(value, bool):
        raise InvalidArgument(f"{name}: expected bytes or a size like '1GiB', got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise InvalidArgument(f"{name}: must be positive, got {_show(value)}")
        if value > MAX_SIZE:
            raise InvalidArgument(f"{name}: {_show(value)} is more than the largest size accepted (2**62 bytes)")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        unit = m.group(2).lower() if m else None
        if m and unit in _UNITS:
            size = float(m.group(1)) * _UNITS[unit]  # inf for absurdly long digit strings
            if size > MAX_SIZE:
                raise InvalidArgument(f"{name}: {value!r:.80} is more than the largest size accepted (2**62 bytes)")
            if size >= 1:
                return int(size)
    raise InvalidArgument(
        f"{name}: expected bytes or a size like '1GiB' or '512MB', got {value!r}"
    )


def check_dim(dim: object) -> int:
    """Validate a vector dimension."""
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536:
        raise InvalidArgument(f"dim must be an integer between 1 and 65536, got {_show(dim)}")
    return dim


def check_metric(metric: object) -> str:
    """Validate a metric name."""
    if metric not in METRICS:
        raise InvalidArgument(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (
        hi is not None and value > hi
    ):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise InvalidArgument(f"{name} must be an integer {bound}, got {_show(value)}")
    return value


#: Smallest and largest HnswParams.m accepted (see HnswParams).
MIN_HNSW_M = 4
MAX_HNSW_M = 256


@dataclass(frozen=True)
class HnswParams:
    """HNSW construction and search parameters (hnswlib's ``M``, ``ef_construction``, ``ef``).

    ``m`` is at least 4: with ``m=2`` hnswlib 0.8.0 crashed the process (SIGSEGV) in 9 of
    30 runs here that added records among deleted ones (nmslib/hnswlib#189: an insert
    whose search meets only tombstones reads past an empty neighbour list); ``m`` of 3,
    4, 8 and 16 never did in 30 runs each, and 4 leaves a margin. Raises
    :class:`InvalidArgument` otherwise.
    """

    m: int = DEFAULT_HNSW_M
    ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION
    ef: int = DEFAULT_HNSW_EF

    def __post_init__(self) -> None:
        _check_int("hnsw m", self.m, MIN_HNSW_M, MAX_HNSW_M)
        _check_int("hnsw ef_construction", self.ef_construction, 8, MAX_HNSW_EF)
        _check_int("hnsw ef", self.ef, 1, MAX_HNSW_EF)


@dataclass(frozen=True)
class StoreOptions:
    """Everything a :class:`~tenantvec.Store` is configured with, validated once.

    ``dim``/``metric`` are ``None`` when the caller did not pass them explicitly; the
    store then uses the persisted defaults (or :data:`DEFAULT_DIM`/:data:`DEFAULT_METRIC`
    for a new store).
    """

    dim: int | None = None
    metric: str | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    max_hot: int = DEFAULT_MAX_HOT
    readonly: bool = False
    durability: str = DEFAULT_DURABILITY
    hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD
    hnsw: HnswParams = HnswParams()
    compact_threshold: float = DEFAULT_COMPACT_THRESHOLD
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    #: Initial LMDB map of a writer's environment: address space only (the file grows
    #: as pages are written), so it is generous; growing it must wait for exports and
    #: compactions reading the tenant, which a large map makes rare.
    map_size: int = DEFAULT_MAP_SIZE

    def __post_init__(self) -> None:
        if self.dim is not None:
            check_dim(self.dim)
        if self.metric is not None:
            check_metric(self.metric)
        object.__setattr__(self, "memory_budget", parse_size(self.memory_budget))
        _check_int("max_hot", self.max_hot, 1, MAX_SIZE)
        if not isinstance(self.readonly, bool):
            raise InvalidArgument(f"readonly must be a bool, got {self.readonly!r}")
        if self.durability not in DURABILITY:
            raise InvalidArgument(
                f"durability must be one of {', '.join(DURABILITY)}; got {self.durability!r}"
            )
        _check_int("hnsw_threshold", self.hnsw_threshold, 0, MAX_SIZE)
        if not isinstance(self.hnsw, HnswParams):
            raise InvalidArgument(f"hnsw must be a HnswParams, got {self.hnsw!r}")
        ct = self.compact_threshold
        if isinstance(ct, bool) or not isinstance(ct, (int, float)) or not 0 < ct <= 1:
            raise InvalidArgument(f"compact_threshold must be in (0, 1], got {_show(ct)}")
        fi = self.flush_interval
        if isinstance(fi, bool) or not isinstance(fi, (int, float)) or not 0 <= fi <= threading.TIMEOUT_MAX:
            raise InvalidArgument(
                f"flush_interval must be a number of seconds from 0 to {threading.TIMEOUT_MAX:.0f}, got {_show(fi)}"
            )
        object.__setattr__(self, "map_size", parse_size(self.map_size, "map_size"))

"""The on-disk layout of one shard: file names, LMDB databases, metadata keys, the format
version, the row codec, and the one check of a shard's metadata.

A tenant's directory holds ``data.mdb`` and ``lock.mdb`` (the LMDB environment, the
source of truth), ``index.hnsw`` (the HNSW snapshot, derived) and ``wm.log`` (the
working memory journal: writes to ``wm`` not yet folded into LMDB, see
:mod:`tenantvec._engine.wmlog`). Named databases inside ``data.mdb``::

    meta   b"format" b"tenant" b"uuid" b"dim" b"metric" b"kind" b"seq" b"next_label"
           b"ckpt" b"active" b"created" b"last_write" b"hnsw"
           b"wm_folded" (the last journal generation folded)       -> msgpack values
    ids    record id (utf-8)            -> label (8-byte big-endian) + CRC32
    recs   label                        -> msgpack [id, metadata, document, created, updated] + CRC32
    vecs   label                        -> float32 vector bytes (as given, not normalised) + CRC32
    oplog  seq (8-byte big-endian)      -> msgpack [op, labels]  (HNSW shards only)
    wm     working memory (side table)  -> bytes + CRC32   (see tenantvec.memory)
    audit  audit log (side table)       -> bytes + CRC32   (see tenantvec.memory)

Side tables (``SIDE_DBS``) are written through a transaction (:mod:`~.txn`) by the layers
above; ``audit`` came after format 2 and is created by the first writer that opens an
older shard (a read-only opener sees it as empty). Values of ``ids``, ``recs`` and
``vecs`` end in their CRC32 (format 2, see
:mod:`tenantvec._engine.checksum`); format 1 stored them without, and a writer opening
such a shard seals them all. Labels are never re-used; an upsert gives the record a new
label and tombstones the old one. ``meta[b"ckpt"]`` describes the HNSW snapshot (see
:mod:`tenantvec._engine.snapshot`).
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import lmdb
import msgpack
import numpy as np

from .._options import HnswParams, check_dim, check_metric
from ..errors import CorruptShard, InvalidArgument

DATA_FILE = "data.mdb"
LOCK_FILE = "lock.mdb"
INDEX_FILE = "index.hnsw"
JOURNAL_FILE = "wm.log"
#: Work directories of compactions (tenantvec._engine.compact) inside a shard's directory.
COMPACT_PREFIX = ".compact-"
FORMAT_VERSION = 2
#: Format 1 stored records, vectors and id map entries without their CRC32.
FORMAT_UNSEALED = 1
DB_NAMES = ("meta", "ids", "recs", "vecs", "oplog", "wm", "audit")
#: The named side tables a write transaction offers (``WriteTxn.side``), in DB_NAMES.
SIDE_DBS = ("wm", "audit")
#: Databases a shard may lack (created by a writer's open, empty for a reader).
_ADDED_LATER = frozenset({"audit"})
#: Metadata key of the working memory journal's last folded generation (:mod:`~.wmlog`).
WM_FOLDED = b"wm_folded"
#: Metadata every shard has, and metadata that may be absent (with its default).
REQUIRED_META = (b"format", b"tenant", b"uuid", b"dim", b"metric", b"kind", b"seq", b"next_label", b"hnsw")
OPTIONAL_META = {b"active": True, b"last_write": None, b"ckpt": None, b"created": None, WM_FOLDED: 0}

# ---------------------------------------------------------------------------- row codec
_U64 = struct.Struct(">Q")
#: Raised for stored bytes that do not decode: a ValueError, and a msgpack unpack error
#: that the storage boundary (:mod:`tenantvec._engine.storage`) turns into CorruptShard.
_Damaged = msgpack.exceptions.FormatError
pack_label = _U64.pack


def unpack_label(b: bytes) -> int:
    """The label of an 8-byte big-endian key. :raises FormatError: ``b`` is not 8 bytes."""
    try:
        return int(_U64.unpack(b)[0])
    except struct.error as exc:  # a damaged key or value (the facade says CorruptShard)
        raise _Damaged(f"stored label {b[:16]!r} is not 8 bytes") from exc


def packb(obj: Any) -> bytes:
    """``obj`` as stored: msgpack with bytes kept binary."""
    return msgpack.packb(obj, use_bin_type=True)


def unpackb(b: bytes) -> Any:
    """A stored msgpack value. :raises FormatError: it does not decode (or is missing)."""
    try:
        return msgpack.unpackb(b, raw=False, strict_map_key=False)
    except (ValueError, TypeError) as exc:  # incomplete, bad UTF-8, missing (None): damage (CorruptShard)
        if isinstance(exc, msgpack.UnpackException):
            raise
        raise _Damaged(f"stored value does not decode: {exc}" if b is not None else "a stored value is missing") from exc


def labels_to_bytes(labels: np.ndarray) -> bytes:
    """Labels as stored in the op log and the checkpoint: 8-byte big-endian each."""
    return np.asarray(labels, dtype=">u8").tobytes()


def labels_from_bytes(b: bytes) -> np.ndarray:
    """Stored labels as int64. :raises FormatError: the length is not a multiple of 8."""
    if len(b) % 8:
        raise _Damaged(f"stored labels of {len(b)} bytes are not 8-byte labels")
    return np.frombuffer(b, dtype=">u8").astype(np.int64)


# ---------------------------------------------------------------------------- databases
class Databases(NamedTuple):
    """The named databases of one open environment (see the module docstring)."""

    meta: lmdb._Database
    ids: lmdb._Database
    recs: lmdb._Database
    vecs: lmdb._Database
    oplog: lmdb._Database
    wm: lmdb._Database
    audit: lmdb._Database | None  # None: an older shard opened read-only (see _ADDED_LATER)

    def side(self) -> dict[str, lmdb._Database]:
        """The side tables this environment has, by name."""
        return {name: db for name in SIDE_DBS if (db := getattr(self, name)) is not None}


def open_databases(env: lmdb.Environment, tenant_id: str, path: str) -> Databases:
    """The databases of a shard's existing environment; a writable ``env`` gets the
    databases that came after its shard was created.

    :raises CorruptShard: one of them is missing.
    """
    writable = not env.flags()["readonly"]
    dbs: list[lmdb._Database | None] = []
    for name in DB_NAMES:
        try:
            dbs.append(env.open_db(name.encode(), create=False))
        except lmdb.NotFoundError as exc:
            if name not in _ADDED_LATER:
                raise CorruptShard(f"tenant {tenant_id!r}: LMDB database {name!r} is missing in {path}") from exc
            dbs.append(env.open_db(name.encode()) if writable else None)
        except lmdb.Error as exc:
            raise CorruptShard(f"tenant {tenant_id!r}: LMDB database {name!r} is missing in {path}") from exc
    return Databases._make(dbs)  # only the _ADDED_LATER ones may be None


# ---------------------------------------------------------------------------- metadata
def initial_meta(tenant_id: str, dim: int, metric: str, hnsw: HnswParams) -> dict[bytes, Any]:
    """The metadata of a new, empty shard (a new incarnation: a fresh uuid)."""
    return {
        b"format": FORMAT_VERSION,
        b"tenant": tenant_id,
        b"uuid": uuid.uuid4().hex,
        b"dim": dim,
        b"metric": metric,
        b"kind": "exact",
        b"seq": 0,
        b"next_label": 0,
        b"active": True,
        b"created": time.time(),
        b"last_write": None,
        b"hnsw": {"m": hnsw.m, "ef_construction": hnsw.ef_construction},
    }


@dataclass(frozen=True)
class ShardMeta:
    """A shard's metadata, read and checked by :func:`examine_meta`."""

    uuid: str
    dim: int
    metric: str
    kind: str
    seq: int
    next_label: int
    hnsw_m: int
    hnsw_ef_construction: int
    active: bool
    last_write: float | None
    checkpoint: dict[str, Any] | None


def _is_int(v: object, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _read_values(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> tuple[dict[bytes, Any], list[str]]:
    """Every known metadata value present, decoded; and the ones that do not decode."""
    values: dict[bytes, Any] = {}
    problems = []
    for key in (*REQUIRED_META, *OPTIONAL_META):
        raw = txn.get(key, db=db)
        if raw is None:
            continue
        try:
            values[key] = unpackb(raw)
        except ValueError as exc:
            problems.append(f"shard metadata {key.decode()!r} does not decode ({exc})")
    return values, problems


def _identity_problems(values: dict[bytes, Any], tenant_id: str, path: str) -> list[str]:
    """Format and stored tenant id, in the order an open refuses them."""
    fmt, stored = values[b"format"], values[b"tenant"]
    problems = []
    if fmt not in (FORMAT_VERSION, FORMAT_UNSEALED):
        problems.append(f"shard format {fmt!r} is not supported (this tenantvec reads {FORMAT_VERSION})")
    if stored != tenant_id:
        problems.append(
            f"stored tenant id {stored!r}: the shard in {path} belongs to tenant {stored!r}, not to the tenant of "
            "its directory; refusing to serve it (restore the right files or drop the tenant)"
        )
    elif fmt == FORMAT_UNSEALED:  # only read-only openers and verify see it: a writer upgrades first
        problems.append(
            f"shard format {FORMAT_UNSEALED} (written by an older tenantvec) has no record checksums; open the store "
            "once without readonly=True (or run `tenantvec verify --fix`) to upgrade it"
        )
    return problems


def _shape_problems(values: dict[bytes, Any]) -> list[str]:
    """Values the shard cannot be served with: dim, metric, index kind, counters, HNSW parameters."""
    problems = []
    dim, metric, kind, hp = values[b"dim"], values[b"metric"], values[b"kind"], values[b"hnsw"]
    try:
        check_dim(dim)
        check_metric(metric)
    except InvalidArgument:
        problems.append(f"shard metadata has dim {dim!r} and metric {metric!r}")
    if kind not in ("exact", "hnsw"):
        problems.append(f"shard metadata has index kind {kind!r}")
    if not (_is_int(values[b"seq"], 0) and _is_int(values[b"next_label"], 0)):
        problems.append(f"shard metadata has seq {values[b'seq']!r} and next_label {values[b'next_label']!r}")
    if not (isinstance(hp, dict) and _is_int(hp.get("m"), 2) and _is_int(hp.get("ef_construction"), 1)):
        problems.append(f"shard metadata has HNSW parameters {hp!r}")
    if not isinstance(values[b"uuid"], str):
        problems.append(f"shard metadata has uuid {values[b'uuid']!r}")
    return problems


def examine_meta(
    txn: lmdb.Transaction[bytes], db: lmdb._Database, tenant_id: str, path: str
) -> tuple[ShardMeta | None, list[str]]:
    """Read and check a shard's metadata: the one check that both opening a shard and
    ``verify`` apply. Returns ``(meta, [])``, or ``(None, problems)`` naming what is
    missing, undecodable, of another tenant, of an unsupported or unsealed format, or of
    the wrong shape (``path`` is named in messages).
    """
    values, problems = _read_values(txn, db)
    if problems:
        return None, problems
    missing = [k.decode() for k in REQUIRED_META if values.get(k) is None]
    if missing:
        return None, [f"shard metadata is missing {', '.join(missing)}"]
    problems = _identity_problems(values, tenant_id, path) + _shape_problems(values)
    if problems:
        return None, problems
    get = values.get
    hp = values[b"hnsw"]
    return ShardMeta(
        uuid=values[b"uuid"], dim=values[b"dim"], metric=values[b"metric"], kind=values[b"kind"],
        seq=values[b"seq"], next_label=values[b"next_label"], hnsw_m=int(hp["m"]),
        hnsw_ef_construction=int(hp["ef_construction"]), active=bool(get(b"active", True)),
        last_write=get(b"last_write"), checkpoint=get(b"ckpt"),
    ), []


#: ``meta_value``'s default: the value must be there.
REQUIRED: Any = object()


def meta_value(txn: lmdb.Transaction[bytes], db: lmdb._Database, key: bytes, default: Any = REQUIRED, *,
               tenant_id: str = "", path: str = "") -> Any:
    """Metadata value ``key`` as ``txn`` sees it, decoded; ``default`` when absent.

    :raises CorruptShard: absent, and no default was given.
    """
    raw = txn.get(key, db=db)
    if raw is None:
        if default is REQUIRED:
            raise CorruptShard(f"tenant {tenant_id!r}: shard metadata {key.decode()!r} is missing in {path}")
        return default
    return unpackb(raw)


def read_meta(txn: lmdb.Transaction[bytes], db: lmdb._Database, tenant_id: str, path: str) -> ShardMeta:
    """A shard's checked metadata (see :func:`examine_meta`).

    :raises CorruptShard: naming the first problem.
    """
    meta, problems = examine_meta(txn, db, tenant_id, path)
    if meta is None:
        raise CorruptShard(f"tenant {tenant_id!r}: {problems[0]}")
    return meta

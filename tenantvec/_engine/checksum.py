"""Per-value CRC32 checksums of a shard's records, vectors and id map (shard format 2).

LMDB keeps no checksums of its own, so every value of the ``recs``, ``vecs`` and ``ids``
databases is stored *sealed*: its bytes followed by their ``zlib.crc32``, 4 bytes
little-endian. The CRC32 of a sealed value is a constant (:data:`RESIDUE`, the CRC's
residue), so checking a stored value is one ``zlib.crc32`` call on the bytes LMDB
returns, and checking a batch of them is one C-level ``map`` over the list.

Format 1 stored the same values unsealed; a writer opening such a shard seals them all in
one transaction (:func:`seal_database`, used by ``Shard``). A value that fails its check
is never served: reads raise :class:`~tenantvec.errors.CorruptShard` naming the tenant,
the record and the value (:func:`damaged`), and ``Store.verify(fix=True)`` drops it.
"""

from __future__ import annotations

import struct
from itertools import islice
from typing import Any
from zlib import crc32

import lmdb
import numpy as np

from ..errors import CorruptShard
from .layout import unpackb

CRC_BYTES = 4
#: ``zlib.crc32(value + crc32(value) as 4 little-endian bytes)`` for every value.
RESIDUE = 0x2144DF1C
_CRC = struct.Struct("<I")
_SEAL_BATCH = 4096

#: Names of the sealed values in messages.
RECORD = "record: id, metadata, document, timestamps"
VECTOR = "vector"
ID_MAP = "id map entry"


def seal(value: bytes) -> bytes:
    """``value`` followed by its CRC32, as it is stored."""
    return value + _CRC.pack(crc32(value))


def intact(raw: bytes | None) -> bool:
    """Whether a stored value is present and passes its CRC32."""
    return raw is not None and len(raw) >= CRC_BYTES and crc32(raw) == RESIDUE


def first_damaged(raws: list[bytes]) -> int:
    """Index of the first value in ``raws`` that fails its CRC32, or -1."""
    crcs = list(map(crc32, raws))
    if crcs.count(RESIDUE) == len(crcs):
        return -1
    return next(i for i, c in enumerate(crcs) if c != RESIDUE)


def seal_rows(mat: np.ndarray) -> np.ndarray:
    """The stored values of the rows of a C-contiguous float32 matrix: an ``(n, 4*dim + 4)``
    byte matrix, each row the vector's bytes followed by their CRC32."""
    n, width = mat.shape[0], mat.shape[1] * 4
    flat = mat.data.cast("B")  # row slices of a memoryview: no copies, no array objects
    crcs = np.fromiter(map(crc32, [flat[i * width : (i + 1) * width] for i in range(n)]), dtype="<u4", count=n)
    out = np.empty((n, width + CRC_BYTES), dtype=np.uint8)
    out[:, :width] = mat.view(np.uint8).reshape(n, width)
    out[:, width:] = crcs.view(np.uint8).reshape(n, CRC_BYTES)
    return out


def rows_view(blob: bytes, n: int, dim: int) -> np.ndarray:
    """``(n, dim)`` float32 view of ``n`` joined sealed vectors (their CRC column skipped)."""
    width = dim * 4
    return np.frombuffer(blob, dtype=np.uint8).reshape(n, width + CRC_BYTES)[:, :width].view(np.float32)


def record_name(label: int | None, rid: str | None = None) -> str:
    """``record 'u13' (label 115)``, with what is known of it."""
    if rid is None:
        return f"record label {label}"
    return f"record {rid!r}" + (f" (label {label})" if label is not None else "")


def damaged(tenant: str, label: int | None, rid: str | None, what: str) -> CorruptShard:
    """The error for a stored value that fails its CRC32 (or is missing)."""
    return CorruptShard(
        f"tenant {tenant!r}: {record_name(label, rid)} fails its checksum ({what}); "
        "Store.verify(tenant, fix=True) removes what cannot be trusted"
    )


def open_record(raw: bytes | None, tenant: str, label: int, rid: str | None = None) -> list:
    """A stored record ``[id, metadata, document, created, updated]``, checked."""
    if raw is None or crc32(raw) != RESIDUE:
        raise damaged(tenant, label, rid, RECORD)
    return unpackb(raw[:-CRC_BYTES])


def open_vector(raw: bytes | None, tenant: str, label: int, dim: int, rid: str | None = None) -> bytes:
    """A stored vector's float32 bytes, checked (CRC32 and length)."""
    if raw is None or crc32(raw) != RESIDUE:
        raise damaged(tenant, label, rid, VECTOR)
    if len(raw) != dim * 4 + CRC_BYTES:
        raise CorruptShard(f"tenant {tenant!r}: {record_name(label, rid)} has a vector of "
                           f"{(len(raw) - CRC_BYTES) // 4} dimensions, expected {dim}")
    return raw[:-CRC_BYTES]


def open_label(raw: bytes | None, tenant: str, rid: str) -> bytes | None:
    """The label (8 bytes) an id map value holds, checked; ``None`` for no value."""
    if raw is None:
        return None
    if len(raw) != 8 + CRC_BYTES or crc32(raw) != RESIDUE:
        raise damaged(tenant, None, rid, ID_MAP)
    return raw[:8]


def open_side(raw: bytes, tenant: str, table: str, key: bytes) -> bytes:
    """A side table value (working memory, audit) without its CRC32, checked.

    :raises CorruptShard: the value fails its CRC32.
    """
    if len(raw) < CRC_BYTES or crc32(raw) != RESIDUE:
        raise CorruptShard(f"tenant {tenant!r}: {table} entry {key!r} is damaged (checksum mismatch)")
    return raw[:-CRC_BYTES]


def stored_id(raw: bytes | None) -> str | None:
    """The id in a stored record value when it is intact and decodes, else ``None``
    (to name a record in an error)."""
    if not intact(raw):
        return None
    assert raw is not None
    try:
        rec: Any = unpackb(raw[:-CRC_BYTES])
    except Exception:
        return None
    return rec[0] if isinstance(rec, list) and rec and isinstance(rec[0], str) else None


def seal_database(txn: lmdb.Transaction[bytes], db: Any) -> int:
    """Seal every value of ``db`` in ``txn`` (format 1 to 2), in batches; returns how many."""
    cur = txn.cursor(db=db)
    more = cur.first()
    done = 0
    while more:
        batch = list(islice(cur.iternext(), _SEAL_BATCH))
        txn.cursor(db=db).putmulti([(k, seal(v)) for k, v in batch])
        done += len(batch)
        # re-position after the writes (which may split pages): just past the last key
        more = cur.set_range(batch[-1][0]) and cur.next()
    return done

"""The records of a hot shard, decoded in memory by label, for building hits.

A query turns index labels into hits. Reading each hit's record from LMDB costs a B-tree
lookup per hit, and decoding its msgpack costs as much again: on a 500-record tenant the
ten hits took ~9 µs of a ~40 µs query from LMDB, against ~4 µs from decoded records. A
hot shard therefore keeps decoded :data:`Entry` s ``(id, document, metadata, size)`` by
label, counted in ``memory_bytes``:

* every record a write commits while the shard is hot, built from the objects the write
  already holds (no decoding, no LMDB read): the first query after a write finds its
  records in memory, as the thousandth does;
* every record a query returns that was not in memory yet (loaded cold, or written
  before the load): read from LMDB in the query's own read transaction, checked against
  its CRC32 (one that fails raises ``CorruptShard`` instead of becoming a hit) and kept.

Nothing is read ahead: a tenant loaded for one query reads the ten records it returns.

An entry is counted by arithmetic on its stored size (:func:`entry_bytes`), not by
measuring its objects (``sys.getsizeof`` per string and metadata value cost more than the
decoding): the packed bytes, the fixed cost of the strings, tuple, slot and label key, and
a per-field cost of the metadata dict, fitted to CPython's sizes for ASCII text (within a
few percent, ``tests/test_hotrecs.py``). Text outside Latin-1 is counted at its UTF-8
size, which CPython may hold in up to twice as many bytes (four for text with astral
characters); the budget is an estimate, as every Python memory figure is.

Ids and documents are immutable strings that every hit may share. Metadata must be fresh
for every hit (callers may mutate it): a dict of immutable scalars is kept as a dict and
each hit gets a shallow copy, which is a full copy; metadata that nests lists or maps is
kept as msgpack bytes and each hit decodes its own.

A shard over its share of the memory budget (``max_tenant_memory``) stops keeping records
(:meth:`HotRecords.release`): its queries read their hits from LMDB every time.

Callers hold the shard's read lock (queries) or write lock (writes); concurrent readers
serialise on this object's lock when they store decoded records (two may decode the same
record; one keeps it, counted once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from sys import getsizeof
from typing import Any

import lmdb

from .._types import Hit
from .capacity import PLAN_DECODED_FIELD_BYTES, PLAN_DECODED_RECORD_BYTES
from .checksum import CRC_BYTES, RECORD, damaged, intact
from .layout import pack_label, packb, unpackb

#: ``(id, document, metadata, counted bytes)``: metadata as a dict of immutable scalars,
#: or as the msgpack bytes of a metadata dict that nests containers.
Entry = tuple[str, str | None, dict[str, Any] | bytes, int]

_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
#: CPython's size of a dict of ``n`` keys as msgpack builds it (one insert per key).
_DICT_BYTES = [getsizeof(unpackb(packb({str(i): 0 for i in range(n)}))) for n in range(64)]
_BYTES_HEADER = getsizeof(b"")


def entry_bytes(packed: int, fields: int) -> int:
    """Counted bytes of a decoded record whose stored value is ``packed`` bytes (CRC32
    included) with a dict of ``fields`` scalar metadata values: ``tenantvec plan``'s
    estimate, one formula."""
    dict_bytes = _DICT_BYTES[fields] if fields < len(_DICT_BYTES) else _DICT_BYTES[-1] + 40 * (fields - 63)
    return packed + PLAN_DECODED_RECORD_BYTES + dict_bytes + PLAN_DECODED_FIELD_BYTES * fields


def entry(rid: str, meta: dict[str, Any], doc: str | None, packed: int) -> Entry:
    """The entry of a record with these fields, stored as ``packed`` bytes."""
    for v in meta.values():
        if type(v) not in _SCALARS:  # kept packed: its bytes are about the record's share
            return rid, doc, packb(meta), packed + PLAN_DECODED_RECORD_BYTES + _BYTES_HEADER
    return rid, doc, meta, entry_bytes(packed, len(meta))


def decode(raw: bytes) -> Entry:
    """The entry of one stored record ``[id, metadata, document, ...]`` + CRC32 (checked
    by the caller)."""
    rec = unpackb(raw[:-CRC_BYTES])
    return entry(rec[0], rec[1], rec[2], len(raw))


_new = object.__new__
_set_hit = tuple(Hit.__dict__[name].__set__ for name in ("id", "distance", "metadata", "document"))


#: Begins a read transaction on a database (the shard's ``read_txn``: it clears the
#: reader slots of dead processes when the table is full).
Begin = Callable[..., "lmdb.Transaction[bytes]"]


class HotRecords:
    """Decoded records by label (a subset of LMDB's: what writes and queries brought in)."""

    def __init__(self, tenant: str, *, keep: bool = True) -> None:
        self.tenant = tenant  # names the tenant in errors
        self._recs: dict[int, Entry] = {}
        self._lock = threading.Lock()
        self.keep = keep  # False: over the tenant's memory share, nothing is kept
        self.nbytes = 0  # accounted resident bytes

    def __len__(self) -> int:
        return len(self._recs)

    def hits(self, begin: Begin, db: lmdb._Database, labels: list[int], dists: list[float]) -> list[Hit]:
        """Hits for ``labels`` at ``dists``: from memory, or read from LMDB database ``db``
        (and kept) for labels not in memory. Labels LMDB does not have either are skipped
        (a read-only view whose index is older than the records it reads).

        The query hot path: one Python frame per result row, and each ``Hit`` is filled
        through its slots instead of the frozen ``__init__`` (four ``object.__setattr__``
        calls), which halves its cost.

        :raises CorruptShard: a record read from LMDB fails its checksum.
        """
        get = self._recs.get
        for lab in labels:
            if get(lab) is None:
                get = self._fetch(begin, db, labels).get
                break
        new = _new
        set_id, set_distance, set_metadata, set_document = _set_hit
        row = []
        for lab, d in zip(labels, dists):
            entry = get(lab)
            if entry is None:
                continue
            meta = entry[2]
            hit = new(Hit)
            set_id(hit, entry[0])
            set_distance(hit, d)
            # packed metadata otherwise; mypy narrows `type(x) is` only one way, and isinstance
            # would cost ~40 ns per hit here
            set_metadata(hit, meta.copy() if type(meta) is dict else unpackb(meta))  # type: ignore[arg-type]
            set_document(hit, entry[1])
            row.append(hit)
        return row

    def _fetch(self, begin: Begin, db: lmdb._Database, labels: list[int]) -> dict[int, Entry]:
        """The entries of ``labels``: those in memory, the others read from LMDB in one
        read transaction and kept (unless :attr:`keep` is off)."""
        recs = self._recs
        out: dict[int, Entry] = {}
        read: dict[int, Entry] = {}
        with begin(db=db) as txn:
            for lab in labels:
                item = recs.get(lab)
                if item is None:
                    raw = txn.get(pack_label(lab))
                    if raw is None:
                        continue
                    if not intact(raw):
                        raise damaged(self.tenant, lab, None, RECORD)
                    item = read[lab] = decode(raw)
                out[lab] = item
        if read and self.keep:
            with self._lock:
                size = 0
                for lab, item in read.items():
                    if lab not in recs:  # another reader may have kept it meanwhile
                        recs[lab] = item
                        size += item[3]
                self.nbytes += size
        return out

    def remember(self, labels: list[int], records: list[list], packed: list[bytes]) -> None:
        """Committed new records (``[id, metadata, document, ...]`` rows, stored as ``packed``)."""
        if not self.keep:
            return
        recs = self._recs
        size = 0
        for lab, rec, raw in zip(labels, records, packed):
            item = recs[lab] = entry(rec[0], rec[1], rec[2], len(raw))
            size += item[3]
        self.nbytes += size

    def forget(self, labels: list[int]) -> None:
        """Deleted (or replaced) records."""
        recs = self._recs
        size = 0
        for label in labels:
            item = recs.pop(label, None)
            if item is not None:
                size += item[3]
        self.nbytes -= size

    def release(self) -> None:
        """Drop every kept record and keep none from now on (the shard passed its share of
        the memory budget)."""
        with self._lock:
            self.keep = False
            self._recs = {}
            self.nbytes = 0

"""The records of a hot shard, in memory by label, for building hits.

A query turns index labels into hits. Reading each hit's record from LMDB costs a B-tree
lookup per hit, and decoding its msgpack costs as much again: on a 500-record tenant the
ten hits took ~9 µs of a ~40 µs query from packed records, against ~4 µs from decoded
ones. A hot shard therefore keeps its records in a dict by label, counted in
``memory_bytes``: first as the packed bytes LMDB holds (cheap to read: a tenant loaded
for one query pays little), and each record a query returns is replaced by its decoded
:data:`Entry` ``(id, document, metadata, size)``, so the records a tenant keeps being
asked for are decoded once.

Ids and documents are immutable strings that every hit may share. Metadata must be
fresh for every hit (callers may mutate it): a dict of immutable scalars is kept as a
dict and each hit gets a shallow copy, which is a full copy; metadata that nests lists or
maps is kept as msgpack bytes and each hit decodes its own. ``size`` is what the entry
was counted as when decoded: its strings can grow later (CPython caches a UTF-8 copy on a
non-ASCII string once something encodes it, such as packing a hit's document again), and
an entry must be uncounted by exactly what it was counted.

The copy is read from LMDB in chunks of ``CHUNK`` records in label order, one chunk per
query, so that the first query after a cold load pays at most ~1 ms, whatever the
tenant's size (a 100k-record tenant is in memory after ~100 queries). Until then labels
past the chunks read so far are looked up in LMDB. Writes keep the copy current: labels
only grow, so a new record is past the chunks read (the next chunk reads it) unless the
copy is complete, in which case it is added directly.

The packed bytes are the stored values, CRC32 included (see ``tenantvec._engine.checksum``):
a record is checked when it is decoded, once, and one that fails its checksum raises
``CorruptShard`` instead of becoming a hit.

Callers hold the shard's read lock (queries) or write lock (writes), so LMDB does not
change while a chunk is read; concurrent readers serialise on this object's lock when
they read a chunk or store a decoded record (two may decode the same record; one keeps it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from itertools import islice
from sys import getsizeof
from typing import Any

import lmdb

from .._types import Hit
from .capacity import HOT_SLOT_BYTES
from .checksum import CRC_BYTES, RECORD, damaged, intact
from .layout import labels_from_bytes, pack_label, packb, unpackb

CHUNK = 1024

#: ``(id, document, metadata, counted bytes)``: metadata as a dict of immutable scalars,
#: or as the msgpack bytes of a metadata dict that nests containers.
Entry = tuple[str, str | None, dict[str, Any] | bytes, int]
#: What the dict holds for a label: its packed record until a query returns it.
Stored = bytes | Entry

_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
_ENTRY_FIXED = HOT_SLOT_BYTES + getsizeof(("", None, b"", 0)) + getsizeof(1 << 20)  # tuple, size int


def decode(raw: bytes) -> Entry:
    """The entry of one stored record ``[id, metadata, document, ...]`` + CRC32 (checked
    by the caller), with its size:
    its objects plus the tuple, the dict slot and the label key. Metadata keys are counted
    per record, though msgpack interns them (records that share a key share one string):
    an upper bound, right for keys unique to each record."""
    rec = unpackb(raw[:-CRC_BYTES])
    rid, meta, doc = rec[0], rec[1], rec[2]
    size = _ENTRY_FIXED + getsizeof(rid) + (getsizeof(doc) if doc is not None else 0)
    if all(type(v) in _SCALARS for v in meta.values()):
        size += getsizeof(meta) + sum(map(getsizeof, meta)) + sum(map(getsizeof, meta.values()))
    else:
        meta = packb(meta)
        size += getsizeof(meta)
    return rid, doc, meta, size


def stored_bytes(item: Stored) -> int:
    """Counted bytes of one stored record (packed: its bytes object, the dict slot and
    the label key; decoded: as counted by :func:`decode`)."""
    if type(item) is bytes:
        return HOT_SLOT_BYTES + getsizeof(item)
    return item[3]


_new = object.__new__
_set_hit = tuple(Hit.__dict__[name].__set__ for name in ("id", "distance", "metadata", "document"))


#: Begins a read transaction on a database (the shard's ``read_txn``: it clears the
#: reader slots of dead processes when the table is full).
Begin = Callable[..., "lmdb.Transaction[bytes]"]


class HotRecords:
    """Records by label: complete, or read up to (excluding) label ``next``."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant  # names the tenant in errors
        self._recs: dict[int, Stored] = {}
        self._next: int | None = 0  # first label not read yet; None once complete
        self._lock = threading.Lock()
        self.nbytes = 0  # accounted resident bytes

    @property
    def complete(self) -> bool:
        return self._next is None

    def __len__(self) -> int:
        return len(self._recs)

    def getter(self, begin: Begin, db: lmdb._Database) -> Callable[[int], Stored | None]:
        """A lookup ``label -> stored record or None`` for one query's :meth:`hits`.

        While the copy is incomplete, reads one more chunk first, and the lookup falls back
        to LMDB for labels past what has been read. ``None`` means LMDB has no such record
        (a read-only view whose index is older than the records it reads).
        """
        if self._next is None:
            return self._recs.get
        with self._lock:
            if self._next is not None:
                self._read_chunk(begin, db)
            nxt = self._next
        recs = self._recs
        if nxt is None:
            return recs.get

        def get(label: int) -> Stored | None:
            item = recs.get(label)
            if item is None and label >= nxt:
                with begin(db=db) as txn:
                    item = txn.get(pack_label(label))
            return item

        return get

    def hits(self, get: Callable[[int], Stored | None], labels: list[int], dists: list[float]) -> list[Hit]:
        """Hits for ``labels`` at ``dists`` from the records ``get(label)``; labels ``get``
        does not know are skipped. Decodes (and keeps decoded) the packed ones.

        The query hot path: one Python frame per result row, and each ``Hit`` is filled
        through its slots instead of the frozen ``__init__`` (four ``object.__setattr__``
        calls), which halves its cost.
        """
        new = _new
        set_id, set_distance, set_metadata, set_document = _set_hit
        row = []
        for lab, d in zip(labels, dists):
            entry = get(lab)
            if entry is None:
                continue
            if type(entry) is bytes:
                entry = self._decode(lab, entry)
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

    def _decode(self, label: int, raw: bytes) -> Entry:
        """Decode a packed record and keep the entry, unless another reader did so first
        or the record is not one this copy holds (an LMDB fallback).

        :raises CorruptShard: the record fails its checksum.
        """
        if not intact(raw):
            raise damaged(self.tenant, label, None, RECORD)
        entry = decode(raw)
        with self._lock:
            if self._recs.get(label) is raw:
                self._recs[label] = entry
                self.nbytes += stored_bytes(entry) - stored_bytes(raw)
        return entry

    def _read_chunk(self, begin: Begin, db: lmdb._Database) -> None:
        assert self._next is not None
        start = pack_label(self._next)
        keys: list[bytes] = []
        values: list[bytes] = []
        with begin(db=db) as txn:
            cur = txn.cursor()
            if cur.set_range(start):  # two passes, each a C-level iteration
                keys = list(islice(cur.iternext(keys=True, values=False), CHUNK))
                cur.set_range(start)
                values = list(islice(cur.iternext(keys=False, values=True), CHUNK))
        labels = labels_from_bytes(b"".join(keys)).tolist()
        self._add(zip(labels, values))
        self._next = labels[-1] + 1 if len(labels) == CHUNK else None

    def _add(self, records: Iterable[tuple[int, bytes]]) -> None:
        recs = self._recs
        size = 0
        for label, raw in records:
            old = recs.get(label)  # read-only views can meet a record twice
            recs[label] = raw
            size += HOT_SLOT_BYTES + getsizeof(raw)  # stored_bytes(raw), inline
            if old is not None:
                size -= stored_bytes(old)
        self.nbytes += size

    def remember(self, labels: list[int], packed: list[bytes]) -> None:
        """Committed records (new labels); those past the chunks read are left to them."""
        nxt = self._next
        self._add((lab, raw) for lab, raw in zip(labels, packed) if nxt is None or lab < nxt)

    def forget(self, labels: list[int]) -> None:
        """Deleted (or replaced) records."""
        recs = self._recs
        for label in labels:
            item = recs.pop(label, None)
            if item is not None:
                self.nbytes -= stored_bytes(item)

"""The packed records of a hot shard, in memory by label.

A query turns index labels into hits. Reading each hit's record from LMDB costs a B-tree
lookup per hit, and after an HNSW graph walk has evicted the CPU caches ten lookups take
~15 µs of a ~240 µs query (20k records). A hot shard therefore keeps its packed ``recs``
values in a dict by label, counted in ``memory_bytes``.

The copy is read from LMDB in chunks of ``CHUNK`` records in label order, one chunk per
query, so that the first query after a cold load pays at most ~1 ms, whatever the
tenant's size (a 100k-record tenant is in memory after ~100 queries). Until then labels
past the chunks read so far are looked up in LMDB. Writes keep the copy current: labels
only grow, so a new record is past the chunks read (the next chunk reads it) unless the
copy is complete, in which case it is added directly.

Callers hold the shard's read lock (queries) or write lock (writes), so LMDB does not
change while a chunk is read; concurrent readers serialise on this object's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import lmdb

from ._capacity import HOT_RECORD_OVERHEAD
from ._codec import labels_from_bytes, pack_label

CHUNK = 2048


class HotRecords:
    """Packed records by label: complete, or read up to (excluding) label ``next``."""

    def __init__(self) -> None:
        self._recs: dict[int, bytes] = {}
        self._next: int | None = 0  # first label not read yet; None once complete
        self._lock = threading.Lock()
        self.nbytes = 0  # accounted resident bytes

    @property
    def complete(self) -> bool:
        return self._next is None

    def __len__(self) -> int:
        return len(self._recs)

    def getter(self, env: lmdb.Environment, db: lmdb._Database) -> Callable[[int], bytes | None]:
        """A lookup ``label -> packed record or None`` for one query.

        While the copy is incomplete, reads one more chunk first, and the lookup falls back
        to LMDB for labels past what has been read. ``None`` means LMDB has no such record
        (a read-only view whose index is older than the records it reads).
        """
        if self._next is None:
            return self._recs.get
        with self._lock:
            if self._next is not None:
                self._read_chunk(env, db)
            nxt = self._next
        recs = self._recs
        if nxt is None:
            return recs.get

        def get(label: int) -> bytes | None:
            raw = recs.get(label)
            if raw is None and label >= nxt:
                with env.begin(db=db) as txn:
                    raw = txn.get(pack_label(label))
            return raw

        return get

    def _read_chunk(self, env: lmdb.Environment, db: lmdb._Database) -> None:
        assert self._next is not None
        keys, values = [], []
        with env.begin(db=db) as txn:
            cur = txn.cursor()
            if cur.set_range(pack_label(self._next)):
                for key, value in cur:
                    keys.append(key)
                    values.append(value)
                    if len(keys) == CHUNK:
                        break
        labels = labels_from_bytes(b"".join(keys)).tolist()
        self._add(zip(labels, values))
        self._next = labels[-1] + 1 if len(labels) == CHUNK else None

    def _add(self, records: Iterable[tuple[int, bytes]]) -> None:
        recs = self._recs
        size = 0
        for label, raw in records:
            old = recs.get(label)  # read-only views can meet a record twice
            recs[label] = raw
            size += len(raw) - (len(old) if old is not None else -HOT_RECORD_OVERHEAD)
        self.nbytes += size

    def remember(self, labels: list[int], packed: list[bytes]) -> None:
        """Committed records (new labels); those past the chunks read are left to them."""
        nxt = self._next
        self._add((lab, raw) for lab, raw in zip(labels, packed) if nxt is None or lab < nxt)

    def forget(self, labels: list[int]) -> None:
        """Deleted (or replaced) records."""
        recs = self._recs
        for label in labels:
            raw = recs.pop(label, None)
            if raw is not None:
                self.nbytes -= len(raw) + HOT_RECORD_OVERHEAD

"""A shard's records and vectors as LMDB holds them, read and checked: scans and lookups
of record rows, ``where`` filters compiled against stored rows, vector matrices, what
changed since a sequence number (a read-only shard's catch-up), and the payload columns
built from the rows, on which filters are evaluated (:class:`Filters`).

Every value read is checked against its CRC32 (:mod:`tenantvec._engine.checksum`); a
value that fails is never served (``CorruptShard``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import lmdb
import numpy as np

from .._filters import MISSING, Node, compile_predicate, parse_filter
from .._types import Record
from ..errors import CorruptShard
from .checksum import CRC_BYTES, VECTOR, damaged, first_damaged, open_label, open_record, open_vector, rows_view, stored_id
from .index import ExactIndex, HnswIndex
from .layout import Databases, labels_from_bytes, pack_label, unpack_label
from .payload import PayloadIndex
from .snapshot import Op, oplog_after

log = logging.getLogger("tenantvec")

#: A record row ``[id, metadata, document, created_at, updated_at]`` -> whether it matches.
Predicate = Callable[[list], bool]
#: A validated filter and its predicate (see :func:`compile_where`).
Compiled = tuple[Node, Predicate]


def _field(rec: list, field: str) -> Any:
    if field == "created_at":
        return rec[3]
    if field == "updated_at":
        return rec[4]
    return rec[1].get(field, MISSING)


def compile_where(where: object) -> Compiled | None:
    """Validate a ``where`` filter and compile it against stored record rows (None: no filter).

    :raises InvalidFilter: naming the offending path.
    """
    if where is None:
        return None
    node = parse_filter(where)
    return node, compile_predicate(node, _field)


def scan(txn: lmdb.Transaction[bytes], recs: lmdb._Database, tenant: str,
         pred: Predicate | None) -> Iterator[tuple[bytes, list]]:
    """(label bytes, record row) of every record (matching ``pred``), in label order."""
    for lb, raw in txn.cursor(db=recs):
        rec = open_record(raw, tenant, unpack_label(lb))
        if pred is None or pred(rec):
            yield lb, rec


def label_changes(txn: lmdb.Transaction[bytes], dbs: Databases, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels in ``held`` that LMDB no longer has, and labels LMDB has that ``held``
    lacks (labels are never re-used, so this is every delete and every add since)."""
    now = labels_from_bytes(b"".join(txn.cursor(db=dbs.vecs).iternext(keys=True, values=False)))
    return np.setdiff1d(held, now, assume_unique=True), np.setdiff1d(now, held, assume_unique=True)


def ops_since(txn: lmdb.Transaction[bytes], dbs: Databases, kind: str, index: ExactIndex | HnswIndex, after: int,
              seq: int) -> list[Op] | None:
    """What to replay into ``index``, loaded at sequence ``after``, to bring it to ``seq``
    on a shard whose index kind is now ``kind``: the op log (HNSW), a diff of labels
    (exact: no op log), or None when the kinds differ (the index must be rebuilt)."""
    if kind == index.kind == "hnsw":
        return oplog_after(txn, dbs.oplog, after, seq)
    if kind == index.kind == "exact":
        gone, new = label_changes(txn, dbs, index.labels())
        return [("d", gone), ("a", new)]
    return None


def label_of(txn: lmdb.Transaction[bytes], ids: lmdb._Database, tenant: str, rid: str) -> bytes | None:
    """The label (8 bytes) the id map ``ids`` holds for ``rid``, checked; None when absent."""
    return open_label(txn.get(rid.encode("utf-8"), db=ids), tenant, rid)


def by_ids(txn: lmdb.Transaction[bytes], dbs: Databases, tenant: str, ids: Iterable[str],
           pred: Predicate | None = None) -> Iterator[tuple[bytes, list]]:
    """(label bytes, record row) of each id in ``ids`` (matching ``pred``), in the order
    given; unknown ids are skipped."""
    for rid in ids:
        lb = label_of(txn, dbs.ids, tenant, rid)
        if lb is not None:
            rec = open_record(txn.get(lb, db=dbs.recs), tenant, unpack_label(lb), rid)
            if pred is None or pred(rec):
                yield lb, rec


def to_record(txn: lmdb.Transaction[bytes], vecs: lmdb._Database, lb: bytes, rec: list, tenant: str, dim: int,
              include_vectors: bool) -> Record:
    """The :class:`~tenantvec.Record` of row ``rec`` (label ``lb``), with its vector if asked."""
    vec = None
    if include_vectors:
        raw = open_vector(txn.get(lb, db=vecs), tenant, unpack_label(lb), dim, rec[0])
        vec = np.frombuffer(raw, dtype=np.float32).copy()
    return Record(rec[0], rec[1], rec[2], rec[3], rec[4], vec)


def stored_vectors(txn: lmdb.Transaction[bytes], recs: lmdb._Database, tenant: str, dim: int,
                   labels: np.ndarray | list[int], raws: list[bytes]) -> np.ndarray:
    """Stored vector values ``raws`` of ``labels`` as an ``(n, dim)`` float32 view: every
    CRC32 in one C-level pass, one join, no copy per row.

    :raises CorruptShard: a vector fails its checksum or has another dimension (the
        record is named from ``recs`` where it can be).
    """
    bad = first_damaged(raws)
    if bad >= 0:
        lab = int(labels[bad])
        raise damaged(tenant, lab, stored_id(txn.get(pack_label(lab), db=recs)), VECTOR)
    blob = b"".join(raws)
    if len(blob) != len(raws) * (dim * 4 + CRC_BYTES):
        raise CorruptShard(f"tenant {tenant!r}: stored vectors do not have dimension {dim}")
    return rows_view(blob, len(raws), dim)


def all_vectors(txn: lmdb.Transaction[bytes], dbs: Databases, tenant: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every stored vector: labels and an ``(n, dim)`` float32 view, each checked."""
    cur = txn.cursor(db=dbs.vecs)
    labels = labels_from_bytes(b"".join(cur.iternext(keys=True, values=False)))
    return labels, stored_vectors(txn, dbs.recs, tenant, dim, labels, list(cur.iternext(keys=False, values=True)))


def build_payload(txn: lmdb.Transaction[bytes], dbs: Databases, tenant: str, dim: int, metric: str,
                  with_vectors: bool, next_label: int) -> PayloadIndex:
    """Payload columns of every record (and, ``with_vectors``, int8 copies of the vectors).

    :raises CorruptShard: a label at or past ``next_label`` (columns are sized by label:
        a damaged one would ask for any amount of memory).
    """
    payload = PayloadIndex(dim, metric, with_vectors=with_vectors, capacity=next_label + 1)
    for lb, raw in txn.cursor(db=dbs.recs):
        lab = unpack_label(lb)
        if lab >= next_label:
            raise CorruptShard(f"tenant {tenant!r}: record label {lab} is past next_label {next_label} "
                               "(damaged; Store.verify repairs it)")
        payload.add(lab, open_record(raw, tenant, lab))
    if with_vectors:
        labels, mat = all_vectors(txn, dbs, tenant, dim)
        if len(labels) and int(labels.max()) >= next_label:
            raise CorruptShard(f"tenant {tenant!r}: vector label {int(labels.max())} is past next_label "
                               f"{next_label} (damaged; Store.verify repairs it)")
        payload.set_vectors(labels, mat)
    return payload


class Filters:
    """One shard's payload columns (:class:`~.payload.PayloadIndex`), on which its filters
    are evaluated (:meth:`mask`, :meth:`matching`): built from LMDB on the first filtered
    call after a load (:meth:`build`), kept current by every committed write
    (:meth:`update`), and dropped when the index is rebuilt or replaced (:meth:`drop`).

    Callers hold the shard's lock: shared to build (builders serialise on this object's
    lock, taken after the shard's), alone to update or drop.
    """

    __slots__ = ("_lock", "columns", "tenant")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.columns: PayloadIndex | None = None  # None until built
        self._lock = threading.Lock()

    def build(self, txn: lmdb.Transaction[bytes], dbs: Databases, dim: int, metric: str, with_vectors: bool,
              next_label: int) -> PayloadIndex:
        """The columns, built from ``txn`` unless another caller built them meanwhile
        (arguments as for :func:`build_payload`).

        :raises CorruptShard: see :func:`build_payload`.
        """
        with self._lock:
            if self.columns is None:
                self.columns = build_payload(txn, dbs, self.tenant, dim, metric, with_vectors, next_label)
                log.debug("tenant %r: built payload columns (%d bytes)", self.tenant, self.columns.nbytes)
            return self.columns

    def update(self, labels: np.ndarray, vecs: np.ndarray, recs: list[list], removed: list[int],
               upgrade: bool) -> None:
        """Mirror a committed write (records ``recs`` with their ``vecs`` under ``labels``
        added, labels ``removed`` deleted); a switch to an HNSW index (``upgrade``) drops
        the columns instead: they are rebuilt with vector copies on the next filtered call."""
        columns = self.columns
        if columns is None:
            return
        if upgrade:
            self.columns = None
            return
        for lab in removed:
            columns.remove(lab)
        for lab, rec in zip(labels.tolist(), recs):
            columns.add(lab, rec)
        columns.set_vectors(labels, vecs)

    def drop(self) -> None:
        """Forget the columns (the next filtered call builds them anew)."""
        self.columns = None

    def mask(self, txn: lmdb.Transaction[bytes], recs: lmdb._Database, columns: PayloadIndex, compiled: Compiled,
             size: int) -> np.ndarray:
        """Boolean mask over labels of the live records matching ``compiled``, evaluated on
        ``columns`` (these columns, as :meth:`build` returned them) or, for a value the
        columns cannot hold exactly, on the records in ``recs``; at least ``size`` long
        (pass a length past every label)."""
        node, pred = compiled
        mask = columns.mask(node)
        if mask is None:
            mask = np.zeros(columns.cap, dtype=bool)
            for lb, _ in scan(txn, recs, self.tenant, pred):
                mask[unpack_label(lb)] = True
        if len(mask) < size:
            mask = np.concatenate([mask, np.zeros(size - len(mask), dtype=bool)])
        return mask

    def matching(self, txn: lmdb.Transaction[bytes], recs: lmdb._Database,
                 mask: np.ndarray | None) -> Iterator[tuple[bytes, list]]:
        """(label bytes, record row) of every record in ``recs`` whose label ``mask`` sets
        (every record when ``mask`` is None), in label order."""
        if mask is None:
            yield from scan(txn, recs, self.tenant, None)
            return
        for lab in np.flatnonzero(mask).tolist():
            lb = pack_label(lab)
            raw = txn.get(lb, db=recs)
            if raw is not None:
                yield lb, open_record(raw, self.tenant, lab)

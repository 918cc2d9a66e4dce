"""The write path in steps, as functions over explicit arguments: validate a put or a delete
before any transaction (``prepare_*``), then write it in an LMDB write transaction
(``stage_*``), recording in the transaction's :class:`Staged` state what to mirror into the
shard's memory once it commits (``Shard.publish``).

Used by ``Shard.put``, ``Shard.delete`` and :class:`~tenantvec._engine.txn.WriteTxn`. A
``stage_*`` step is a pure function of the transaction and the state it is given: a
:class:`~tenantvec._engine.txn.GrowingTxn` replays it on a fresh state after growing the
map. What is written where (id map, rows, vectors, op log, metadata) is
:mod:`tenantvec._engine.layout`. Also here: a writer's one-time upgrade of a format-1
shard (:func:`upgrade_format`), and a shard's lifecycle writes (:func:`stage_lifecycle`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import lmdb
import numpy as np

from .._ids import check_record_ids, new_record_id
from .._types import Record
from .._validate import check_documents, check_metadata, check_vectors
from ..errors import CorruptShard, DuplicateId, InvalidArgument
from .auditlog import append_lifecycle
from .checksum import open_label, open_record, seal, seal_database, seal_rows
from .layout import FORMAT_UNSEALED, FORMAT_VERSION, Databases, labels_to_bytes, pack_label, packb, unpack_label, unpackb
from .records import Compiled, by_ids, compile_where, label_of, to_record

log = logging.getLogger("tenantvec")


@dataclass(slots=True)
class PutBatch:
    """A validated put (:func:`prepare_put`): what :func:`stage_put` writes."""

    vecs: np.ndarray
    ids: list[str]
    docs: list[str | None]
    metas: list[dict[str, Any]]
    stored_vecs: np.ndarray  # the vectors' bytes with their CRC32, as stored
    upsert: bool


@dataclass(slots=True)
class DeleteTarget:
    """A validated delete (:func:`prepare_delete`): ids and/or a compiled filter."""

    ids: list[str] | None
    compiled: Compiled | None


#: One committed record change to mirror into a shard's memory: (new labels, their
#: vectors, their records, the records packed as stored, labels removed).
Change = tuple[np.ndarray, np.ndarray, list[list], list[bytes], list[int]]

#: ``matching(txn, compiled)``: (label bytes, record row) of every record matching a
#: compiled filter (every record for None), in label order (``Shard.matching``).
Matcher = Callable[["lmdb.Transaction[bytes]", "Compiled | None"], Iterator[tuple[bytes, list]]]


@dataclass(slots=True)
class Staged:
    """A shard's state as one write transaction builds it (``Shard.staging``), and the
    record changes to mirror into memory once it commits (``Shard.publish``)."""

    seq: int
    next_label: int
    kind: str
    live: int
    now: float
    upgraded: bool = False
    changes: list[Change] = field(default_factory=list)

    def __copy__(self) -> Staged:
        return Staged(self.seq, self.next_label, self.kind, self.live, self.now, self.upgraded, list(self.changes))


def prepare_put(vectors: object, ids: object, documents: object, metadata: object, *, upsert: bool, tenant: str,
                dim: int, metric: str) -> PutBatch:
    """Validate a put's arguments for a shard of ``dim`` and ``metric`` (before any
    transaction); ids are made for records given none.

    :raises InvalidVector, DimensionMismatch: bad vectors.
    :raises InvalidArgument: bad ids, documents or metadata; an upsert without ids.
    :raises DuplicateId: an id given twice.
    """
    vecs, _ = check_vectors(vectors, dim, metric, tenant)
    n = len(vecs)
    if ids is None:
        if upsert:
            raise InvalidArgument(f"tenant {tenant!r}: upsert needs ids")
        id_list = [new_record_id() for _ in range(n)]
    else:
        id_list = check_record_ids(ids, n, tenant, unique=True)
    docs = check_documents(documents, n, tenant)
    metas = check_metadata(metadata, n, tenant)
    return PutBatch(vecs, id_list, docs, metas, seal_rows(vecs), upsert)


def _delete_rows(txn: lmdb.Transaction[bytes], dbs: Databases, lb: bytes) -> None:
    """Delete the record and the vector under label ``lb`` (not its id map entry)."""
    txn.delete(lb, db=dbs.recs)
    txn.delete(lb, db=dbs.vecs)


def stage_put(txn: lmdb.Transaction[bytes], dbs: Databases, st: Staged, batch: PutBatch, tenant: str,
              hnsw_threshold: int) -> list[str]:
    """Write ``batch`` in ``txn`` and record what to publish after the commit in ``st``;
    returns the batch's ids. An upsert keeps a replaced record's creation time and gives
    it a new label; the shard switches to an HNSW index when its live records would pass
    ``hnsw_threshold``.

    :raises DuplicateId: an id exists and ``batch`` is not an upsert (nothing of the
        batch is written: ids are checked before the first put).
    :raises CorruptShard: a stored label is past the shard's next label.
    """
    id_list, n, now = batch.ids, len(batch.ids), st.now
    keys = [rid.encode("utf-8") for rid in id_list]
    old_labels: list[int] = []
    old_keys: list[bytes] = []
    created = [now] * n
    for i, kb in enumerate(keys):
        old = open_label(txn.get(kb, db=dbs.ids), tenant, id_list[i])
        if old is None:
            continue
        if not batch.upsert:
            raise DuplicateId(f"tenant {tenant!r}: id {id_list[i]!r} already exists (use upsert to replace it)")
        created[i] = open_record(txn.get(old, db=dbs.recs), tenant, unpack_label(old), id_list[i])[3]
        old_keys.append(old)
    for old in old_keys:
        _delete_rows(txn, dbs, old)
        old_labels.append(unpack_label(old))
    hnsw = st.kind == "hnsw"
    upgrade = not hnsw and st.live + n > hnsw_threshold
    first = st.next_label
    labels = np.arange(first, first + n, dtype=np.int64)
    lbs = [pack_label(lab) for lab in labels.tolist()]
    recs = [[id_list[i], batch.metas[i], batch.docs[i], created[i], now] for i in range(n)]
    packed = list(map(seal, map(packb, recs)))  # as stored and kept in memory: with CRC32
    stored = batch.stored_vecs
    rows, width = stored.data.cast("B"), stored.shape[1]
    # one C call per database; labels only grow, and appending fills LMDB pages
    # instead of splitting them (an append out of order would add nothing)
    txn.cursor(db=dbs.ids).putmulti(zip(keys, map(seal, lbs)))
    added = (
        txn.cursor(db=dbs.recs).putmulti(zip(lbs, packed), append=True)[1],
        txn.cursor(db=dbs.vecs).putmulti(
            ((lb, rows[i * width : (i + 1) * width]) for i, lb in enumerate(lbs)), append=True
        )[1],
    )
    if added != (n, n):
        raise CorruptShard(f"tenant {tenant!r}: label {first} is not past every stored label")
    put = txn.put
    if hnsw:
        if old_labels:
            st.seq += 1
            put(pack_label(st.seq), packb(["d", labels_to_bytes(np.array(old_labels))]), db=dbs.oplog, append=True)
        st.seq += 1
        put(pack_label(st.seq), packb(["a", labels_to_bytes(labels)]), db=dbs.oplog, append=True)
    else:
        st.seq += 1
    meta: dict[bytes, Any] = {b"seq": st.seq, b"next_label": first + n, b"last_write": now}
    if upgrade:
        meta[b"kind"] = st.kind = "hnsw"
        st.upgraded = True
    for key, value in meta.items():
        put(key, packb(value), db=dbs.meta)
    st.next_label = first + n
    st.live += n - len(old_labels)
    st.changes.append((labels, batch.vecs, recs, packed, old_labels))
    return id_list


def prepare_delete(ids: object, where: object, tenant: str) -> DeleteTarget:
    """Validate a delete's arguments (before any transaction).

    :raises InvalidArgument: neither ids nor a filter, or bad ids.
    :raises InvalidFilter: a bad filter.
    """
    if ids is None and where is None:
        raise InvalidArgument(f"tenant {tenant!r}: delete() needs ids or where (where={{}} deletes every record)")
    id_list = check_record_ids(ids, None, tenant, unique=False) if ids is not None else None
    return DeleteTarget(id_list, compile_where(where))


def stage_delete(txn: lmdb.Transaction[bytes], dbs: Databases, st: Staged, target: DeleteTarget, tenant: str,
                 dim: int, matching: Matcher) -> int:
    """Delete ``target``'s records in ``txn`` (by filter alone: the records ``matching``
    yields); returns how many, and records what to publish in ``st`` (see :func:`stage_put`).
    Deleting by id alone does not read the records, so a damaged one can be deleted.
    """
    compiled = target.compiled
    targets: list[tuple[bytes, list]] = []
    if target.ids is not None:
        seen = set()
        for rid in target.ids:
            lb = label_of(txn, dbs.ids, tenant, rid)
            if lb is None or lb in seen:
                continue
            seen.add(lb)
            if compiled is None:  # the record is not read: a damaged one can be deleted
                targets.append((lb, [rid]))
                continue
            rec = open_record(txn.get(lb, db=dbs.recs), tenant, unpack_label(lb), rid)
            if compiled[1](rec):
                targets.append((lb, rec))
    else:
        targets = list(matching(txn, compiled))
    if not targets:
        return 0
    for lb, rec in targets:
        txn.delete(rec[0].encode("utf-8"), db=dbs.ids)
        _delete_rows(txn, dbs, lb)
    labels = [unpack_label(lb) for lb, _ in targets]
    st.seq += 1
    if st.kind == "hnsw":
        txn.put(pack_label(st.seq), packb(["d", labels_to_bytes(np.array(labels))]), db=dbs.oplog)
    txn.put(b"seq", packb(st.seq), db=dbs.meta)
    txn.put(b"last_write", packb(st.now), db=dbs.meta)
    st.live -= len(labels)
    st.changes.append((np.empty(0, np.int64), np.empty((0, dim), np.float32), [], [], labels))
    return len(labels)


def stage_get(txn: lmdb.Transaction[bytes], dbs: Databases, ids: object, include_vectors: bool, tenant: str,
              dim: int) -> list[Record]:
    """Records by id as ``txn`` sees them (in the order asked, unknown ids skipped).

    :raises InvalidArgument: bad ids.
    """
    return [to_record(txn, dbs.vecs, lb, rec, tenant, dim, include_vectors)
            for lb, rec in by_ids(txn, dbs, tenant, check_record_ids(ids, None, tenant, unique=False))]


def stage_lifecycle(txn: lmdb.Transaction[bytes], dbs: Databases, tenant: str, op: str,
                    counts: Mapping[str, int] | None = None, active: bool | None = None,
                    why: tuple[str | None, str | None] = (None, None)) -> None:
    """A lifecycle write of a shard (``Shard.lifecycle``): the tenant's ``active`` flag when
    given (deactivate, activate), and the audit entry ``op`` recording it, with ``why`` =
    (actor, reason) when known.

    :raises CorruptShard: the audit log's head fails its CRC32.
    """
    if active is not None:
        txn.put(b"active", packb(bool(active)), db=dbs.meta)
    append_lifecycle(txn, dbs.audit, tenant, op, counts=counts, actor=why[0], reason=why[1])


def upgrade_format(read_txn: Callable[[], lmdb.Transaction[bytes]],
                   write: Callable[[Callable[[lmdb.Transaction[bytes]], int]], int], dbs: Databases, tenant: str) -> None:
    """A writer opening a format-1 shard of ``tenant`` (no checksums) seals every id map
    entry, record and vector with its CRC32 and sets format 2, in one transaction that
    ``write`` runs (a crash leaves format 1, upgraded on the next open). Anything else
    (another format, another tenant's shard) is left to the metadata check; ``read_txn``
    opens the read transaction that looks.
    """
    with read_txn() as txn:
        if _meta(txn, dbs, b"format") != FORMAT_UNSEALED or _meta(txn, dbs, b"tenant") != tenant:
            return

    def seal_all(txn: lmdb.Transaction[bytes]) -> int:
        if _meta(txn, dbs, b"format") != FORMAT_UNSEALED:
            return 0
        done = sum(seal_database(txn, db) for db in (dbs.ids, dbs.recs, dbs.vecs))
        txn.put(b"format", packb(FORMAT_VERSION), db=dbs.meta)
        return done

    t0 = time.perf_counter()
    done = write(seal_all)
    log.info("tenant %r: upgraded shard format %d to %d: added CRC32 checksums to %d stored values (%.2f s)",
             tenant, FORMAT_UNSEALED, FORMAT_VERSION, done, time.perf_counter() - t0)


def _meta(txn: lmdb.Transaction[bytes], dbs: Databases, key: bytes) -> Any:
    """Metadata value ``key`` as ``txn`` sees it, or None."""
    raw = txn.get(key, db=dbs.meta)
    return None if raw is None else unpackb(raw)

"""Online compaction of one shard: a new index without tombstones, a densely rewritten
LMDB environment, swapped in by rename while the tenant keeps serving.

Phase 1 holds one read transaction without the shard lock (``Shard.long_read``: queries
and writes go on): from that LMDB snapshot at sequence S it reads every vector and
builds the new index (exact when the tenant is at or below ``hnsw_threshold``), and
rewrites every database into a new environment in a temporary directory, in key order
with appends, so pages come out full (``env.copy(compact=True)`` only drops free pages
and keeps the sparse leaves a mass delete leaves behind; the rewrite is up to 4x smaller
then). The op log is not copied: the new snapshot covers every operation.

Phase 2 holds the shard's lock alone (``Shard.locked``): it finds the writes made since
S by diffing labels (labels are never re-used and an upsert always gives a record a new
label, see :mod:`tenantvec._engine.layout`), applies them to the new index and the new
environment, re-copies the small databases (meta, working memory, audit log), records the
new index's checkpoint and the ``compact`` audit entry (so the entry appears with the
swap), and hands the files to ``Shard.install``, which renames ``data.mdb`` and
``index.hnsw`` into place, removes the old ``lock.mdb`` (processes still reading the old
file keep theirs; readers reopen when they see the file replaced) and reopens. A
crash at any point leaves either the old or the new files, each consistent: a snapshot
that does not match is rebuilt on open.

Compaction relies on every write to a shard's databases holding the shard's lock alone
(as ``put``, ``delete``, transactions and ``lifecycle`` do): a write that bypassed it
during the swap would land in the old file.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import lmdb
import numpy as np

from .._fs import MIN_FREE_FOR_ENV, require_free
from .._options import StoreOptions
from ..errors import ReadOnlyStore
from .auditlog import append_lifecycle
from .capacity import index_memory_bytes, leaf_bytes
from .checksum import open_record, seal
from .index import ExactIndex, HnswIndex
from .layout import (
    COMPACT_PREFIX,
    DATA_FILE,
    DB_NAMES,
    INDEX_FILE,
    LOCK_FILE,
    SIDE_DBS,
    Databases,
    open_databases,
    pack_label,
    packb,
    unpackb,
)
from .manager import ShardManager
from .records import label_changes
from .shard import Shard
from .shardfiles import disk_bytes, file_size, open_checked_env, open_raw, require_shard
from .snapshot import record_checkpoint, save_snapshot
from .storage import new_env
from .txn import write_txn

log = logging.getLogger("tenantvec")

#: Auto-compaction needs at least this many index tombstones (besides the deleted
#: fraction passing ``compact_threshold``): below it a rebuild costs more than it frees.
AUTO_COMPACT_MIN_DELETED = 2048
_BATCH = 20_000
#: Databases re-copied whole under the write lock (phase 2): the metadata and the side
#: tables, which have no op log to catch up from.
_SMALL_DBS = ("meta", *SIDE_DBS)
_SAMPLE = 256


@dataclass(frozen=True)
class CompactReport:
    """Disk and memory of one tenant before and after compaction (estimates if dry run)."""

    tenant: str
    dry_run: bool
    count: int
    deleted_before: int
    index_before: str
    index_after: str
    bytes_before: int
    bytes_after: int
    memory_before: int
    memory_after: int
    seconds: float = 0.0

    @property
    def bytes_saved(self) -> int:
        return self.bytes_before - self.bytes_after


def _target_kind(opts: StoreOptions, live: int) -> str:
    return "hnsw" if live > opts.hnsw_threshold else "exact"


# ---------------------------------------------------------------------------- estimate
def _estimate(manager: ShardManager, path: str, tenant_id: str, opts: StoreOptions) -> CompactReport:
    """Dry run: what compaction would change, read from the files (nothing changes)."""
    with manager.hold(tenant_id) as shard:
        if shard is not None:
            with shard.reading(inactive_ok=True) as txn:
                return _estimate_from(opts, tenant_id, path, txn, shard.databases, shard.index.deleted,
                                      shard.memory_bytes)
        with open_raw(path, tenant_id, write=False) as f, f.env.begin() as txn:
            return _estimate_from(opts, tenant_id, path, txn, f.dbs, None, None)


def _dense_bytes(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> float:
    """Bytes a database takes once rewritten with appends, from a sample of its items."""
    n = txn.stat(db)["entries"]
    if not n:
        return 0.0
    sample = list(itertools.islice(txn.cursor(db=db).iternext(), _SAMPLE))
    key = sum(len(k) for k, _ in sample) / len(sample)
    val = sum(len(v) for _, v in sample) / len(sample)
    return n * leaf_bytes(round(key), round(val), appended=True) * 1.01  # + branch pages


def _logged_deletes(txn: lmdb.Transaction[bytes], dbs: Databases) -> int:
    """A cold HNSW shard's tombstones: its snapshot's plus the deletes logged since."""
    raw = txn.get(b"ckpt", db=dbs.meta)
    deleted = len(unpackb(raw)["deleted"]) // 8 if raw is not None else 0
    for _, v in txn.cursor(db=dbs.oplog):
        op, labels = unpackb(v)
        deleted += len(labels) // 8 if op == "d" else 0
    return deleted


def _estimate_from(opts: StoreOptions, tenant_id: str, path: str, txn: lmdb.Transaction[bytes], dbs: Databases,
                   deleted: int | None, memory: int | None) -> CompactReport:
    def meta(key: bytes) -> Any:
        return unpackb(txn.get(key, b"", db=dbs.meta))

    kind, dim, m = meta(b"kind"), meta(b"dim"), meta(b"hnsw")["m"]
    live = txn.stat(dbs.ids)["entries"]
    if deleted is None:
        deleted = _logged_deletes(txn, dbs) if kind == "hnsw" else 0
    psize = txn.stat()["psize"]
    data: float = 4 * psize  # meta pages and the main database
    for db in (dbs.ids, dbs.recs, dbs.vecs):
        data += _dense_bytes(txn, db)
    for db in _small(dbs):
        st = txn.stat(db)
        data += psize * (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"])
    before = disk_bytes(path)
    lock = file_size(os.path.join(path, LOCK_FILE))
    index_file = file_size(os.path.join(path, INDEX_FILE))
    after_kind = _target_kind(opts, live)
    after_index = index_file * live // max(live + deleted, 1) if after_kind == "hnsw" and index_file else 0
    if memory is None:
        memory = index_memory_bytes(kind, dim, m, live + deleted)
    return CompactReport(
        tenant=tenant_id, dry_run=True, count=live, deleted_before=deleted, index_before=kind,
        index_after=after_kind, bytes_before=before, bytes_after=min(int(data) + lock + after_index, before),
        memory_before=memory, memory_after=index_memory_bytes(after_kind, dim, m, live),
    )


# ---------------------------------------------------------------------------- compact
def compact_tenant(manager: ShardManager, path: str, tenant_id: str, opts: StoreOptions, *,
                   dry_run: bool = False) -> CompactReport:
    """Compact the tenant whose files are in directory ``path`` (see
    :func:`compact_shard`), or estimate it with ``dry_run``.

    :raises TenantNotFound: no tenant there.
    :raises ReadOnlyStore: read-only ``opts`` (unless ``dry_run``).
    """
    require_shard(path, tenant_id)
    if dry_run:
        return _estimate(manager, path, tenant_id, opts)
    if opts.readonly:
        raise ReadOnlyStore(f"tenant {tenant_id!r}: the store is open read-only; cannot compact it", tenant=tenant_id)
    with manager.pinned(tenant_id, wrote=True) as shard:
        report = compact_shard(shard)
    assert report is not None  # compact_shard waits for a running compaction
    return report


def compact_shard(shard: Shard, *, wait: bool = True) -> CompactReport | None:
    """Compact a pinned, writable shard (see the module docstring); returns ``None``
    when ``wait`` is false and another compaction of this shard is running.

    :raises ReadOnlyStore: a read-only shard.
    :raises StorageFull: not room enough for the new files (checked before writing any).
    """
    if shard.readonly:
        raise ReadOnlyStore(f"tenant {shard.tenant_id!r}: the store is open read-only", tenant=shard.tenant_id)
    if not shard.compaction_lock.acquire(blocking=wait):
        return None
    try:
        # the new files are at most as large as the old ones: refuse before writing any
        need = MIN_FREE_FOR_ENV + file_size(os.path.join(shard.path, DATA_FILE)) + file_size(
            os.path.join(shard.path, INDEX_FILE))
        require_free(shard.path, need, f"tenant {shard.tenant_id!r}: compaction")
        tmp = os.path.join(shard.path, f"{COMPACT_PREFIX}{uuid.uuid4().hex}")
        os.mkdir(tmp)
        try:
            return _compact(shard, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shard.compaction_lock.release()


def _compact(shard: Shard, tmp: str) -> CompactReport:
    t0 = time.perf_counter()
    tid = shard.tenant_id
    src = shard.databases
    dst: lmdb.Environment | None = None
    try:
        # ---- phase 1: one read snapshot, no shard lock (a map growth waits for it)
        with shard.long_read() as txn:
            kind_before, deleted_before = shard.kind, shard.index.deleted
            bytes_before, memory_before = shard.files_bytes(), shard.memory_bytes
            built_seq = shard.meta(txn, b"seq")
            labels, mat = shard.read_all_vectors(txn)
            names = {k.decode() for k in txn.cursor().iternext(values=False)}
            if names <= set(DB_NAMES):  # every database known: rewrite densely now
                dst, ddbs = _new_env(tmp, shard, txn, src)
        index = _build(shard, labels, mat)
        del mat
        # ---- phase 2: catch up under the shard's lock, then swap
        with shard.locked():
            with shard.read_txn() as txn:
                seq = shard.meta(txn, b"seq")
                gone, new = label_changes(txn, src, labels) if seq != built_seq else (np.empty(0, np.int64),) * 2
                if len(gone):
                    index.remove(gone)
                if len(new):
                    index.add(new, shard.read_vectors(txn, new))
                ckpt = _snapshot(tmp, index, seq)
                if dst is not None:
                    _write(dst, lambda w: _apply_changes(w, ddbs, txn, src, gone, new, index, ckpt, tid))
            if dst is None:  # a database this module does not know: copy pages instead
                shard.copy_env(tmp)
                dst = open_checked_env(tmp, tid, map_size=_map_size(shard), sync=False, metasync=False)
                ddbs = open_databases(dst, tid, tmp)
                _write(dst, lambda w: _record_index(w, ddbs, index, ckpt, tid))
            dst.sync(True)
            dst.close()
            dst = None
            shard.install(tmp, index, seq)
    finally:
        if dst is not None:
            dst.close()
    log.info("tenant %r: compacted (%s -> %s, %d -> %d bytes, %d tombstones dropped)",
             tid, kind_before, index.kind, bytes_before, shard.files_bytes(), deleted_before)
    return CompactReport(
        tenant=tid, dry_run=False, count=len(index), deleted_before=deleted_before, index_before=kind_before,
        index_after=index.kind, bytes_before=bytes_before, bytes_after=shard.files_bytes(),
        memory_before=memory_before, memory_after=shard.memory_bytes, seconds=time.perf_counter() - t0,
    )


def _small(dbs: Databases) -> list[lmdb._Database]:
    """The ``_SMALL_DBS`` of ``dbs`` that exist (an older shard read for a dry run may
    lack a side table)."""
    return [db for name in _SMALL_DBS if (db := getattr(dbs, name)) is not None]


def _build(shard: Shard, labels: np.ndarray, mat: np.ndarray) -> ExactIndex | HnswIndex:
    return shard.build_index(_target_kind(shard.opts, len(labels)), labels, mat)


def _map_size(shard: Shard) -> int:
    return max(shard.opts.map_size, file_size(os.path.join(shard.path, DATA_FILE)) + (64 << 20))


def _write(env: lmdb.Environment, body: Callable[[lmdb.Transaction[bytes]], None]) -> None:
    """One write transaction on the new environment, growing its map when full."""
    write_txn(env, body, "compaction copy")


def _put_all(env: lmdb.Environment, db: lmdb._Database, items: Iterable[tuple[bytes, bytes]], append: bool) -> None:
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, _BATCH))
        if not chunk:
            return

        def body(txn: lmdb.Transaction[bytes], chunk: list[tuple[bytes, bytes]] = chunk) -> None:
            txn.cursor(db=db).putmulti(chunk, append=append)

        _write(env, body)


def _new_env(tmp: str, shard: Shard, txn: lmdb.Transaction[bytes], src: Databases) -> tuple[lmdb.Environment, Databases]:
    """Phase 1: every database but the op log, rewritten in key order with appends."""
    env = new_env(tmp, _map_size(shard), durable=False)
    try:
        opened: dict[str, lmdb._Database | None] = dict.fromkeys(DB_NAMES)
        for name, db in zip(DB_NAMES, src):
            if db is None:  # a side table the source shard does not have yet
                continue
            flags = db.flags()
            opened[name] = new = env.open_db(name.encode(), **flags)
            if name not in _SMALL_DBS and name != "oplog":  # small ones are copied in phase 2
                _put_all(env, new, txn.cursor(db=db).iternext(), append=not flags.get("dupsort"))
    except BaseException:
        env.close()
        raise
    return env, Databases._make(opened.values())


def _apply_changes(w: lmdb.Transaction[bytes], ddbs: Databases, txn: lmdb.Transaction[bytes], src: Databases,
                   gone: np.ndarray, new: np.ndarray, index: ExactIndex | HnswIndex, ckpt: dict[str, Any] | None,
                   tenant: str) -> None:
    """Phase 2, one transaction on the new environment: the records written since the
    snapshot, the small databases whole, and the new index's kind and checkpoint. Values
    are copied as stored (with their CRC32); the ids of records are read checked."""
    for lab in gone.tolist():
        lb = pack_label(lab)
        raw = w.get(lb, db=ddbs.recs)
        if raw is not None:
            rid = open_record(raw, tenant, lab)[0].encode("utf-8")
            if w.get(rid, db=ddbs.ids) == seal(lb):
                w.delete(rid, db=ddbs.ids)
        w.delete(lb, db=ddbs.recs)
        w.delete(lb, db=ddbs.vecs)
    for lab in new.tolist():
        lb = pack_label(lab)
        raw = txn.get(lb, b"", db=src.recs)
        rid = open_record(raw, tenant, lab)[0].encode("utf-8")  # checked: a damaged record raises
        w.put(lb, raw, db=ddbs.recs)
        w.put(lb, txn.get(lb, b"", db=src.vecs), db=ddbs.vecs)  # listed from vecs: present
        w.put(rid, seal(lb), db=ddbs.ids)
    for into, source in zip(_small(ddbs), _small(src)):
        w.drop(into, delete=False)
        append = not into.flags().get("dupsort")
        w.cursor(db=into).putmulti(txn.cursor(db=source).iternext(), append=append)
    _record_index(w, ddbs, index, ckpt, tenant)


def _snapshot(tmp: str, index: ExactIndex | HnswIndex, seq: int) -> dict[str, Any] | None:
    """Write the new HNSW snapshot beside the new environment; returns its checkpoint."""
    if not isinstance(index, HnswIndex):
        return None
    return save_snapshot(index, os.path.join(tmp, INDEX_FILE), seq)


def _record_index(w: lmdb.Transaction[bytes], ddbs: Databases, index: ExactIndex | HnswIndex,
                  ckpt: dict[str, Any] | None, tenant: str) -> None:
    """The new index's kind, its checkpoint covering every operation (the op log goes), and
    the ``compact`` audit entry: in the new files, so the entry appears with the swap."""
    w.put(b"kind", packb(index.kind), db=ddbs.meta)
    record_checkpoint(w, ddbs, ckpt)
    append_lifecycle(w, ddbs.audit, tenant, "compact", counts={"records": len(index)})


def maybe_compact(shard: Shard) -> CompactReport | None:
    """Compact a pinned shard when its tombstones pass ``compact_threshold``.

    Called after deletes and upserts; costs a few attribute reads unless compaction is
    due, skips when another compaction of the shard runs, and never raises (the write
    that triggered it has committed).
    """
    if shard.readonly or shard.closed or shard.kind != "hnsw":
        return None
    index = shard.index
    dead = index.deleted
    if dead < AUTO_COMPACT_MIN_DELETED or dead <= shard.opts.compact_threshold * (len(index) + dead):
        return None
    try:
        report = compact_shard(shard, wait=False)
    except Exception:
        log.exception("tenant %r: automatic compaction failed (the tenant keeps working)", shard.tenant_id)
        return None
    if report is not None:
        log.info("tenant %r: compacted automatically (%d tombstones)", shard.tenant_id, report.deleted_before)
    return report

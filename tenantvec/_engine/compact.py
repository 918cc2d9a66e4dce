"""Online compaction of one shard: a new index without tombstones, a densely rewritten
LMDB environment, swapped in by rename while the tenant keeps serving.

Phase 1 runs without the shard lock (queries and writes go on): from one LMDB read
snapshot at sequence S it reads every vector and builds the new index (exact when the
tenant is at or below ``hnsw_threshold``), and rewrites every database into a new
environment in a temporary directory, in key order with appends, so pages come out full
(``env.copy(compact=True)`` only drops free pages and keeps the sparse leaves a mass
delete leaves behind; the rewrite is up to 4x smaller then). The op log is not copied:
the new snapshot covers every operation.

Phase 2 takes the shard's write lock: it finds the writes made since S by diffing
labels (labels are never re-used and an upsert always gives a record a new label, see
:mod:`tenantvec._engine.shard`), applies them to the new index and the new environment,
re-copies the small databases (meta, working memory, payload), records the new index's
checkpoint, then renames ``data.mdb`` and ``index.hnsw`` into place, removes the old
``lock.mdb`` (processes still reading the old file keep theirs; readers reopen when they
see the file replaced) and reopens. A crash at any point leaves either the old or the
new files, each consistent: a snapshot that does not match is rebuilt on open.

Compaction relies on every write to a shard's databases holding the shard's write lock
(as ``put``, ``delete`` and ``set_active`` do): a write that bypassed it during the swap
would land in the old file.
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
from typing import TYPE_CHECKING, Any

import lmdb
import numpy as np

from .._fs import MIN_FREE_FOR_ENV, require_free
from .._options import StoreOptions
from .._validate import pack_label, packb, unpackb
from .capacity import _leaf_bytes, index_memory_bytes
from .checksum import open_record, seal
from .index import ExactIndex, HnswIndex
from .shard import _DB_NAMES, COMPACT_PREFIX, INDEX_FILE, Shard, _fsync_dir, save_snapshot, write_txn
from .storage import reserve_lock_file
from .verify import _files_bytes, _open_files, _tenant_path

if TYPE_CHECKING:
    from .._store import Store

log = logging.getLogger("tenantvec")

#: Auto-compaction needs at least this many index tombstones (besides the deleted
#: fraction passing ``compact_threshold``): below it a rebuild costs more than it frees.
AUTO_COMPACT_MIN_DELETED = 2048
_BATCH = 20_000
_SMALL_DBS = ("meta", "wm")  # re-copied whole under the write lock
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


def _shard_dbs(shard: Shard) -> dict[str, Any]:
    return {"meta": shard._meta, "ids": shard._ids, "recs": shard._recs, "vecs": shard._vecs,
            "oplog": shard._oplog, "wm": shard.wm_db}


# ---------------------------------------------------------------------------- estimate
def _estimate(store: Store, tenant_id: str, path: str) -> CompactReport:
    """Dry run: what compaction would change, read from the files (nothing changes)."""
    with store._manager.hold(tenant_id) as shard:
        if shard is not None:
            shard._begin_read(inactive_ok=True)
            try:
                return _estimate_from(store, tenant_id, path, shard._env, _shard_dbs(shard),
                                      shard.index.deleted, shard.memory_bytes)
            finally:
                shard._lock.release_read()
        with _open_files(path, tenant_id, write=False) as f:
            return _estimate_from(store, tenant_id, path, f.env, f.dbs, None, None)


def _dense_bytes(txn: lmdb.Transaction[bytes], db: Any) -> float:
    """Bytes a database takes once rewritten with appends, from a sample of its items."""
    n = txn.stat(db)["entries"]
    if not n:
        return 0.0
    sample = list(itertools.islice(txn.cursor(db=db).iternext(), _SAMPLE))
    key = sum(len(k) for k, _ in sample) / len(sample)
    val = sum(len(v) for _, v in sample) / len(sample)
    return n * _leaf_bytes(round(key), round(val), appended=True) * 1.01  # + branch pages


def _estimate_from(store: Store, tenant_id: str, path: str, env: lmdb.Environment, dbs: dict,
                   deleted: int | None, memory: int | None) -> CompactReport:
    with env.begin() as txn:
        meta = dbs["meta"]
        kind = unpackb(txn.get(b"kind", db=meta))
        dim = unpackb(txn.get(b"dim", db=meta))
        m = unpackb(txn.get(b"hnsw", db=meta))["m"]
        live = txn.stat(dbs["ids"])["entries"]
        if deleted is None:  # cold: the snapshot's tombstones plus deletes logged since
            deleted = 0
            if kind == "hnsw":
                raw = txn.get(b"ckpt", db=meta)
                deleted = len(unpackb(raw)["deleted"]) // 8 if raw is not None else 0
                for _, v in txn.cursor(db=dbs["oplog"]):
                    op, labels = unpackb(v)
                    deleted += len(labels) // 8 if op == "d" else 0
        psize = txn.stat()["psize"]
        data = 4 * psize  # meta pages and the main database
        for name in ("ids", "recs", "vecs"):
            data += _dense_bytes(txn, dbs[name])
        for name in _SMALL_DBS:
            st = txn.stat(dbs[name])
            data += psize * (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"])
    before = _files_bytes(path)
    lock = _size(os.path.join(path, "lock.mdb"))
    index_file = _size(os.path.join(path, INDEX_FILE))
    after_kind = _target_kind(store.options, live)
    after_index = index_file * live // max(live + deleted, 1) if after_kind == "hnsw" and index_file else 0
    if memory is None:
        memory = index_memory_bytes(kind, dim, m, live + deleted)
    return CompactReport(
        tenant=tenant_id, dry_run=True, count=live, deleted_before=deleted, index_before=kind,
        index_after=after_kind, bytes_before=before, bytes_after=min(int(data) + lock + after_index, before),
        memory_before=memory, memory_after=index_memory_bytes(after_kind, dim, m, live),
    )


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# ---------------------------------------------------------------------------- compact
def compact_tenant(store: Store, tenant_id: str, *, dry_run: bool = False) -> CompactReport:
    """Compact one tenant (see :func:`compact_shard`), or estimate it with ``dry_run``."""
    path = _tenant_path(store, tenant_id)
    if dry_run:
        return _estimate(store, tenant_id, path)
    store._check_writable(f"compact tenant {tenant_id!r}")
    shard = store._manager.pin(tenant_id)
    try:
        report = compact_shard(shard)
    finally:
        store._manager.unpin(shard, wrote=True)
    assert report is not None  # compact_shard waits for a running compaction
    return report


def compact_shard(shard: Shard, *, wait: bool = True) -> CompactReport | None:
    """Compact a pinned, writable shard (see the module docstring); returns ``None``
    when ``wait`` is false and another compaction of this shard is running."""
    shard._check_open()
    shard._check_writable()
    if not shard._compact_lock.acquire(blocking=wait):
        return None
    try:
        # the new files are at most as large as the old ones: refuse before writing any
        need = MIN_FREE_FOR_ENV + _size(os.path.join(shard.path, "data.mdb")) + _size(os.path.join(shard.path, INDEX_FILE))
        require_free(shard.path, need, f"tenant {shard.tenant_id!r}: compaction")
        tmp = os.path.join(shard.path, f"{COMPACT_PREFIX}{uuid.uuid4().hex}")
        os.mkdir(tmp)
        try:
            return _compact(shard, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shard._compact_lock.release()


def _compact(shard: Shard, tmp: str) -> CompactReport:
    t0 = time.perf_counter()
    tid = shard.tenant_id
    kind_before, deleted_before = shard.kind, shard.index.deleted
    bytes_before, memory_before = shard.files_bytes(), shard.memory_bytes
    src = _shard_dbs(shard)
    dst: lmdb.Environment | None = None
    try:
        # ---- phase 1: one read snapshot, no shard lock (a map growth waits for it)
        with shard.long_reads.read(), shard.read_txn() as txn:
            built_seq = shard._get_meta(txn, b"seq")
            labels, mat = shard._read_all_vectors(txn)
            names = {k.decode() for k in txn.cursor().iternext(values=False)}
            if names <= set(src):  # every database known: rewrite densely now
                dst, ddbs = _new_env(tmp, shard, txn, src)
        index = _build(shard, labels, mat)
        del mat
        # ---- phase 2: catch up under the write lock, then swap
        shard._lock.acquire_write()
        try:
            shard._check_open()
            with shard.read_txn() as txn:
                seq = shard._get_meta(txn, b"seq")
                gone, new = shard.label_changes(txn, labels) if seq != built_seq else (np.empty(0, np.int64),) * 2
                if len(gone):
                    index.remove(gone)
                if len(new):
                    index.add(new, shard.read_vectors(txn, new))
                ckpt = _snapshot(tmp, index, seq)
                if dst is not None:
                    _write(dst, lambda w: _apply_changes(w, ddbs, txn, src, gone, new, index, ckpt, tid))
            if dst is None:  # a database this module does not know: copy pages instead
                shard._env.copy(tmp, compact=True)
                reserve_lock_file(tmp)
                dst = lmdb.open(tmp, max_dbs=len(names) + 1, map_size=_map_size(shard), sync=False, metasync=False)
                ddbs = {name: dst.open_db(name.encode()) for name in ("meta", "oplog")}
                _write(dst, lambda w: _record_index(w, ddbs, index, ckpt))
            dst.sync(True)
            dst.close()
            dst = None
            _swap(shard, tmp, index, seq)
        finally:
            shard._lock.release_write()
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


def _build(shard: Shard, labels: np.ndarray, mat: np.ndarray) -> ExactIndex | HnswIndex:
    return shard.build_index(_target_kind(shard.opts, len(labels)), labels, mat)


def _map_size(shard: Shard) -> int:
    return max(shard.opts.map_size, _size(os.path.join(shard.path, "data.mdb")) + (64 << 20))


def _write(env: lmdb.Environment, body: Callable[[lmdb.Transaction[bytes]], None]) -> None:
    """One write transaction on the new environment, growing its map when full."""
    write_txn(env, body, "compaction copy")


def _put_all(env: lmdb.Environment, db: Any, items: Iterable[tuple[bytes, bytes]], append: bool) -> None:
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, _BATCH))
        if not chunk:
            return
        _write(env, lambda txn, chunk=chunk: txn.cursor(db=db).putmulti(chunk, append=append))


def _new_env(tmp: str, shard: Shard, txn: lmdb.Transaction[bytes], src: dict[str, Any]) -> tuple[lmdb.Environment, dict]:
    """Phase 1: every database but the op log, rewritten in key order with appends."""
    reserve_lock_file(tmp)
    env = lmdb.open(tmp, max_dbs=len(_DB_NAMES), map_size=_map_size(shard), sync=False, metasync=False)
    try:
        ddbs = {}
        for name, db in src.items():
            flags = db.flags(txn)
            ddbs[name] = env.open_db(name.encode(), **flags)
            if name not in _SMALL_DBS and name != "oplog":  # small ones are copied in phase 2
                _put_all(env, ddbs[name], txn.cursor(db=db).iternext(), append=not flags.get("dupsort"))
    except BaseException:
        env.close()
        raise
    return env, ddbs


def _apply_changes(w: lmdb.Transaction[bytes], ddbs: dict, txn: lmdb.Transaction[bytes], src: dict, gone: np.ndarray,
                   new: np.ndarray, index: ExactIndex | HnswIndex, ckpt: dict | None, tenant: str) -> None:
    """Phase 2, one transaction on the new environment: the records written since the
    snapshot, the small databases whole, and the new index's kind and checkpoint. Values
    are copied as stored (with their CRC32); the ids of records are read checked."""
    ids, recs, vecs = ddbs["ids"], ddbs["recs"], ddbs["vecs"]
    for lab in gone.tolist():
        lb = pack_label(lab)
        raw = w.get(lb, db=recs)
        if raw is not None:
            rid = open_record(raw, tenant, lab)[0].encode("utf-8")
            if w.get(rid, db=ids) == seal(lb):
                w.delete(rid, db=ids)
        w.delete(lb, db=recs)
        w.delete(lb, db=vecs)
    for lab in new.tolist():
        lb = pack_label(lab)
        raw = txn.get(lb, db=src["recs"])
        w.put(lb, raw, db=recs)
        w.put(lb, txn.get(lb, db=src["vecs"]), db=vecs)
        w.put(open_record(raw, tenant, lab)[0].encode("utf-8"), seal(lb), db=ids)
    for name in _SMALL_DBS:
        w.drop(ddbs[name], delete=False)
        append = not ddbs[name].flags(w).get("dupsort")
        w.cursor(db=ddbs[name]).putmulti(txn.cursor(db=src[name]).iternext(), append=append)
    _record_index(w, ddbs, index, ckpt)


def _snapshot(tmp: str, index: ExactIndex | HnswIndex, seq: int) -> dict | None:
    """Write the new HNSW snapshot beside the new environment; returns its checkpoint."""
    if not isinstance(index, HnswIndex):
        return None
    return save_snapshot(index, os.path.join(tmp, INDEX_FILE), seq)


def _record_index(w: lmdb.Transaction[bytes], ddbs: dict, index: ExactIndex | HnswIndex, ckpt: dict | None) -> None:
    meta = ddbs["meta"]
    w.put(b"kind", packb(index.kind), db=meta)
    if ckpt is None:
        w.delete(b"ckpt", db=meta)
    else:
        w.put(b"ckpt", packb(ckpt), db=meta)
    w.drop(ddbs["oplog"], delete=False)  # every operation is in the new snapshot


def _swap(shard: Shard, tmp: str, index: ExactIndex | HnswIndex, seq: int) -> None:
    """Rename the new files into place and reopen (the caller holds the write lock)."""
    path = shard.path
    shard._env.close()
    try:
        # The old lock file goes first: a reader that opens it must find the old data
        # file too (the writer never sees readers registered in a lock file it does not
        # use, and would reuse the pages they read); readers re-check both after opening.
        _unlink(os.path.join(path, "lock.mdb"))
        os.replace(os.path.join(tmp, "data.mdb"), os.path.join(path, "data.mdb"))
        if isinstance(index, HnswIndex):
            os.replace(os.path.join(tmp, INDEX_FILE), os.path.join(path, INDEX_FILE))
        else:
            _unlink(os.path.join(path, INDEX_FILE))
        _fsync_dir(path)
    except BaseException:
        # the files are the old or the new ones, each consistent: reopen what is there
        shard._reopen_env()
        with shard.read_txn() as txn:
            shard._rebuild_index(txn)
        shard._dirty = shard.kind == "hnsw"
        raise
    shard._reopen_env()
    if shard.index.kind != index.kind:
        shard._payload = None  # its float16 vector copy depends on the index kind
    shard.index = index
    shard._loaded_seq = shard._seq
    shard._ckpt_seq = seq if isinstance(index, HnswIndex) else -1
    shard._dirty = False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def maybe_compact(shard: Shard) -> CompactReport | None:
    """Compact a pinned shard when its tombstones pass ``compact_threshold``.

    Called after deletes and upserts; costs a few attribute reads unless compaction is
    due, skips when another compaction of the shard runs, and never raises (the write
    that triggered it has committed).
    """
    if shard.readonly or shard._closed or shard.kind != "hnsw":
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

"""Shard: one tenant = one LMDB environment (source of truth) + one vector index.

LMDB layout (named databases inside ``<tenant dir>/data.mdb``)::

    meta   b"format" b"tenant" b"uuid" b"dim" b"metric" b"kind" b"seq" b"next_label"
           b"ckpt" b"active" b"created" b"last_write" b"hnsw"     -> msgpack values
    ids    record id (utf-8)            -> label (8-byte big-endian) + CRC32
    recs   label                        -> msgpack [id, metadata, document, created, updated] + CRC32
    vecs   label                        -> float32 vector bytes (as given, not normalised) + CRC32
    oplog  seq (8-byte big-endian)      -> msgpack [op, labels]  (HNSW shards only)
    wm     working memory               -> (see tenantvec.memory)

Values of ``ids``, ``recs`` and ``vecs`` end in their CRC32 (format 2, see
``tenantvec._engine.checksum``): a value that fails it is never served (``CorruptShard``), and
``verify`` reports and drops it. A writer opening a format-1 shard (no checksums) adds
them in one transaction; a read-only opener refuses it until a writer has opened it once.

Labels are never re-used; an upsert gives the record a new label and tombstones the
old one. The HNSW snapshot (``index.hnsw``) is derived: ``meta[ckpt]`` records the
sequence number, size and CRC32 it reflects, and on open the shard loads it and replays
``oplog`` after that sequence, or rebuilds from ``vecs`` when anything disagrees.

A hot shard also keeps its records in memory by label (``_hotrecs``: packed, and decoded
once a query returns them), so that a query turns index labels into hits without an LMDB
B-tree lookup or a msgpack decode per hit.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import lmdb
import numpy as np

from .._filters import MISSING, Node, compile_predicate, parse_filter
from .._fs import MIN_FREE_FOR_ENV, require_free
from .._fs import fsync_dir as _fsync_dir
from .._ids import check_record_ids, new_record_id
from .._options import StoreOptions
from .._types import Hit, QueryPlan, Record, TenantInfo
from .._validate import (
    check_documents,
    check_k,
    check_metadata,
    check_vectors,
    labels_from_bytes,
    labels_to_bytes,
    pack_label,
    packb,
    unpack_label,
    unpackb,
)
from ..errors import (
    CorruptShard,
    DuplicateId,
    InvalidArgument,
    ReadOnlyStore,
    StorageError,
    StoreClosed,
    StoreLocked,
    TenantInactive,
    TenantNotFound,
    TenantVecError,
)
from .checksum import (
    CRC_BYTES,
    VECTOR,
    damaged,
    first_damaged,
    open_label,
    open_record,
    open_vector,
    rows_view,
    seal,
    seal_database,
    seal_rows,
    stored_id,
)
from .hotrecs import HotRecords
from .index import ExactIndex, HnswIndex
from .lmdbfile import check_data_file
from .payload import PayloadIndex
from .planner import plan_query
from .rwlock import RWLock
from .storage import MAX_READERS, reserve_lock_file, storage_error, translated

log = logging.getLogger("tenantvec")

FORMAT_VERSION = 2
#: Format 1 stored records, vectors and id map entries without their CRC32.
FORMAT_UNSEALED = 1
INDEX_FILE = "index.hnsw"
#: Work directories of compactions (tenantvec._engine.compact) inside a shard's directory.
COMPACT_PREFIX = ".compact-"
_DB_NAMES = ("meta", "ids", "recs", "vecs", "oplog", "wm")
#: Searches a read-only query makes at most while the writer deletes records under it.
_STALE_RETRIES = 3
_READER_MAP_SIZE = 1 << 36
_OPEN_ATTEMPTS = 5  # readers only reserve address space; the file is not grown
_MAX_MAP_SIZE = 1 << 40


def _record_get(rec: list, field: str) -> Any:
    if field == "created_at":
        return rec[3]
    if field == "updated_at":
        return rec[4]
    return rec[1].get(field, MISSING)


def compile_where(where: object) -> tuple[Node, Callable[[list], bool]] | None:
    """Validate a ``where`` filter and compile it against stored records."""
    if where is None:
        return None
    node = parse_filter(where)
    return node, compile_predicate(node, _record_get)


def remove_leftovers(path: str) -> None:
    """Remove what an interrupted compaction or snapshot write left in a shard directory
    (a crash between creating and removing them); no process may be writing the shard."""
    for entry in os.scandir(path):
        if entry.name.startswith(COMPACT_PREFIX) or entry.name == INDEX_FILE + ".partial":
            log.warning("removing %s, left by an interrupted compaction or snapshot", entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def open_checked_env(path: str, tenant_id: str, **options: Any) -> lmdb.Environment:
    """``lmdb.open`` on a shard's existing environment, the one way every open goes: the
    data file's structure is checked first (mapped, a damaged one could kill the
    process) and the lock file allocated (see ``reserve_lock_file``). ``options``: the
    open's map size, read-only and sync flags.

    :raises CorruptShard: the data file is damaged.
    :raises StorageFull: no room for the lock file.
    """
    why = check_data_file(os.path.join(path, "data.mdb"))
    if why is not None:
        raise CorruptShard(f"tenant {tenant_id!r}: LMDB data file in {path} is damaged: {why}")
    reserve_lock_file(path)
    return lmdb.open(path, create=False, max_dbs=len(_DB_NAMES), readahead=False, max_readers=MAX_READERS, **options)


def clear_stale_readers(env: lmdb.Environment, tenant_id: str) -> int:
    """Free the reader slots of processes that died mid-read (killed read-only processes
    leave theirs behind; enough of them fill LMDB's reader table). Returns how many."""
    try:
        stale = env.reader_check()
    except lmdb.Error as exc:
        log.warning("tenant %r: could not check LMDB reader slots: %s", tenant_id, exc)
        return 0
    if stale:
        log.info("tenant %r: cleared %d reader slots left by dead processes", tenant_id, stale)
    return stale


def write_txn(env: lmdb.Environment, body: Callable[[lmdb.Transaction[bytes]], Any], what: str,
              gate: RWLock | None = None) -> Any:
    """Run ``body`` in a write transaction of ``env``, doubling the map and retrying when
    it is full; returns what ``body`` returns. ``what`` names the environment in errors.

    Growing the map invalidates every open transaction of ``env`` in this process, so
    it waits for the long read transactions registered on ``gate`` (a shard's
    ``long_reads``: exports, compaction's copy) to end first."""
    while True:
        txn = env.begin(write=True)
        try:
            result = body(txn)
            txn.commit()
            return result
        except lmdb.MapFullError:
            txn.abort()
            size = env.info()["map_size"]
            if size >= _MAX_MAP_SIZE:
                raise TenantVecError(f"{what}: LMDB map is at its {size} byte limit") from None
            log.info("%s: growing LMDB map from %d to %d bytes", what, size, size * 2)
            if gate is None:
                env.set_mapsize(size * 2)
            else:
                with gate.write():
                    env.set_mapsize(size * 2)
        except BaseException:
            txn.abort()
            raise


def save_snapshot(index: HnswIndex, path: str, seq: int) -> dict[str, Any]:
    """Write ``index`` to ``path`` and fsync it; returns the checkpoint that describes it
    (sequence, size, CRC32, live count, tombstones) for ``meta[b"ckpt"]``."""
    index.save(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        crc, size = _crc_of(fd)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {
        "seq": seq, "size": size, "crc": crc, "count": len(index),
        "deleted": labels_to_bytes(index.deleted_labels()), "written": time.time(),
    }


def _crc_of(fd: int) -> tuple[int, int]:
    crc, size = 0, 0
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return crc, size
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)


class Shard:
    """One tenant's storage. Thread-safe: reads share a lock, writes take it alone.

    Shards are created and opened by the :class:`~tenantvec._engine.manager.ShardManager`;
    nothing above it touches LMDB or hnswlib.
    """

    def __init__(self, path: str, tenant_id: str, opts: StoreOptions, readonly: bool) -> None:
        self.path = path
        self.tenant_id = tenant_id
        self.opts = opts
        self.readonly = readonly
        self.pins = 0  # managed by the ShardManager under its lock
        self.gone = False  # read-only: the writer dropped (or re-created) the tenant; never serve
        self.accounted = 0  # memory_bytes as the ShardManager last counted it
        self.memory_changed = True  # set when memory_bytes may have changed since counted
        self._lock = RWLock()
        self._flush_lock = threading.Lock()
        self._closed = False
        self._env: lmdb.Environment | None = None
        self._payload: PayloadIndex | None = None
        self._payload_lock = threading.Lock()
        self._hot = HotRecords(tenant_id)
        self._compact_lock = threading.Lock()  # one compaction at a time (see _compact)
        #: held (shared) by read transactions that run without the shard lock (export,
        #: compaction's copy); growing the LMDB map takes it alone (see ``write_txn``)
        self.long_reads = RWLock()
        self._data_ino = 0  # inode of data.mdb when opened; compaction replaces the file

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, path: str, tenant_id: str, dim: int, metric: str, opts: StoreOptions) -> str:
        """Initialise an empty shard in directory ``path`` (which must exist and be empty);
        returns the new incarnation's uuid.

        :raises StorageFull: the filesystem has no room for a new environment.
        """
        what = f"tenant {tenant_id!r}: cannot create its LMDB environment"
        require_free(path, MIN_FREE_FOR_ENV, what)
        with translated(what, path):
            reserve_lock_file(path)
            env = lmdb.open(path, map_size=opts.map_size, max_dbs=len(_DB_NAMES), sync=True)
        try:
            with translated(what, path):
                meta = env.open_db(b"meta")
                for name in _DB_NAMES[1:]:
                    env.open_db(name.encode())
            now = time.time()
            values = {
                b"format": FORMAT_VERSION,
                b"tenant": tenant_id,
                b"uuid": uuid.uuid4().hex,
                b"dim": dim,
                b"metric": metric,
                b"kind": "exact",
                b"seq": 0,
                b"next_label": 0,
                b"active": True,
                b"created": now,
                b"last_write": None,
                b"hnsw": {"m": opts.hnsw.m, "ef_construction": opts.hnsw.ef_construction},
            }
            with translated(what, path):
                with env.begin(write=True, db=meta) as txn:
                    for key, value in values.items():
                        txn.put(key, packb(value))
                env.sync(True)
        finally:
            env.close()
        return values[b"uuid"]

    @classmethod
    def open(cls, path: str, tenant_id: str, opts: StoreOptions, readonly: bool, *, load_index: bool = True) -> Shard:
        """Open a shard, check its identity and load (or heal) its index; without
        ``load_index`` only the environment and metadata are opened (maintenance).

        :raises CorruptShard: the stored tenant id differs, the format is unknown, or LMDB
            cannot open the environment.
        """
        self = cls(path, tenant_id, opts, readonly)
        self._env = self._open_env()
        try:
            self._open_dbs()
            if not readonly:
                self._upgrade_format()
            with self.read_txn() as txn:
                self._load_meta(txn)
                if load_index:
                    self._load_index(txn)
                else:
                    self._dirty = False
        except BaseException:
            self._env.close()
            raise
        return self

    def _open_dbs(self) -> None:
        env = self._env
        try:
            dbs = {name: env.open_db(name.encode(), create=False) for name in _DB_NAMES}
        except lmdb.Error as exc:
            raise CorruptShard(f"tenant {self.tenant_id!r}: missing LMDB database in {self.path}: {exc}") from exc
        self._meta, self._ids, self._recs = dbs["meta"], dbs["ids"], dbs["recs"]
        self._vecs, self._oplog, self.wm_db = dbs["vecs"], dbs["oplog"], dbs["wm"]

    def _open_env(self) -> lmdb.Environment:
        """Open the shard's LMDB environment (after checking its data file).

        A read-only process may open the files while the writer process's compaction
        swaps them: a reader registered in a lock file the writer no longer uses is
        invisible to it (the writer would reuse the pages it reads). So a reader stats
        both files before and after opening and opens again until they are the pair on
        disk (compaction removes the old lock file before renaming the new data file).
        """
        for _ in range(_OPEN_ATTEMPTS):
            before = self._file_ids() if self.readonly else None  # a writer's files do not move
            env = self._open_env_once()
            if before is None or self._file_ids() == before:
                clear_stale_readers(env, self.tenant_id)
                return env
            env.close()
        raise StorageError(f"tenant {self.tenant_id!r}: its files in {self.path} kept changing while opened",
                           path=self.path)

    def _file_ids(self) -> tuple[int, int]:
        """Inodes of data.mdb and lock.mdb (0 for a missing file)."""
        out = []
        for name in ("data.mdb", "lock.mdb"):
            try:
                out.append(os.stat(os.path.join(self.path, name)).st_ino)
            except FileNotFoundError:
                out.append(0)
        return out[0], out[1]

    def _open_env_once(self) -> lmdb.Environment:
        try:
            st = os.stat(os.path.join(self.path, "data.mdb"))
            self._data_ino = st.st_ino
            env = open_checked_env(
                self.path, self.tenant_id,
                map_size=_READER_MAP_SIZE if self.readonly else max(self.opts.map_size, 2 * st.st_size),
                readonly=self.readonly,
                sync=self.opts.durability == "full",
                metasync=self.opts.durability == "full",
            )
        except TenantVecError:
            raise
        except (lmdb.Error, OSError) as exc:
            if not os.path.isfile(os.path.join(self.path, "data.mdb")):  # dropped under us
                raise TenantNotFound(f"tenant {self.tenant_id!r} does not exist (its files are gone)") from exc
            if "already open in this process" in str(exc):
                raise StoreLocked(
                    f"tenant {self.tenant_id!r} is open in this process through another Store (LMDB allows "
                    "one environment per file per process); use that Store, or read from another process"
                ) from exc
            # damage is named by the check above or by LMDB (CorruptShard); anything else
            # (no file descriptors, no memory, permissions) is a StorageError
            raise storage_error(exc, f"tenant {self.tenant_id!r}: cannot open LMDB environment", self.path) from exc
        return env

    def _files_moved(self) -> bool:
        """Whether data.mdb was replaced (compaction, or a drop and re-create) or removed
        (a drop) since this shard opened it: one stat."""
        try:
            return os.stat(os.path.join(self.path, "data.mdb")).st_ino != self._data_ino
        except FileNotFoundError:
            return True

    def _reopen_env(self) -> None:
        """Close and reopen the LMDB environment after compaction replaced its files;
        reloads the metadata, keeps the in-memory index. The caller holds the write lock.
        If the files cannot be opened the shard is closed and ``gone``."""
        if self._env is not None:
            self._env.close()
            self._env = None
        try:
            self._env = self._open_env()
            self._open_dbs()
            with self.read_txn() as txn:
                self._load_meta(txn)
        except BaseException:
            if self._env is not None:
                self._env.close()
                self._env = None
            self._closed = True
            self.gone = True  # the manager closes it and loads the tenant anew
            raise

    def follow(self) -> bool:
        """Read-only shards: whether this shard still serves the tenant's current files.

        One stat per call. When the writer process replaced ``data.mdb`` (compaction)
        the environment is reopened and the index kept; when it dropped the tenant, or
        dropped and re-created it (a new incarnation: another uuid), the shard is marked
        ``gone`` and must never answer again (the manager loads the tenant anew).
        """
        if self.gone:
            return False
        if not self._files_moved():
            return True
        # an export's long read transaction would not survive a reopen of its env
        with self.long_reads.write(), self._lock.write():
            if self.gone or self._closed:
                return not self.gone  # closed: the call raises StoreClosed
            if not self._files_moved():
                return True
            incarnation = self.uuid
            try:  # on failure the shard is gone: the next pin reports what the files say
                with translated(f"tenant {self.tenant_id!r}", self.path):
                    self._reopen_env()
            except TenantNotFound:
                return False
            if self.uuid != incarnation:
                log.info("tenant %r: the writer re-created this tenant; dropping the old incarnation", self.tenant_id)
                self.gone = True
                self._env.close()
                self._env = None
                self._closed = True
                return False
        return True

    def _get_meta(self, txn: lmdb.Transaction[bytes], key: bytes, default: Any = MISSING) -> Any:
        raw = txn.get(key, db=self._meta)
        if raw is None:
            if default is MISSING:
                raise CorruptShard(f"tenant {self.tenant_id!r}: shard metadata {key.decode()!r} is missing in {self.path}")
            return default
        return unpackb(raw)

    def _upgrade_format(self) -> None:
        """A writer opening a format-1 shard of this tenant seals every id map entry,
        record and vector with its CRC32 and sets format 2, in one transaction (a crash
        leaves format 1, upgraded on the next open). Anything else is left to _load_meta."""
        with self.read_txn() as txn:
            if (self._get_meta(txn, b"format", None) != FORMAT_UNSEALED
                    or self._get_meta(txn, b"tenant", None) != self.tenant_id):
                return

        def body(txn: lmdb.Transaction[bytes]) -> int:
            if self._get_meta(txn, b"format") != FORMAT_UNSEALED:
                return 0
            done = sum(seal_database(txn, db) for db in (self._ids, self._recs, self._vecs))
            txn.put(b"format", packb(FORMAT_VERSION), db=self._meta)
            return done

        t0 = time.perf_counter()
        done = self._write(body)
        log.info("tenant %r: upgraded shard format %d to %d: added CRC32 checksums to %d stored values (%.2f s)",
                 self.tenant_id, FORMAT_UNSEALED, FORMAT_VERSION, done, time.perf_counter() - t0)

    def _load_meta(self, txn: lmdb.Transaction[bytes]) -> None:
        fmt = self._get_meta(txn, b"format")
        if fmt not in (FORMAT_VERSION, FORMAT_UNSEALED):
            raise CorruptShard(
                f"tenant {self.tenant_id!r}: shard format {fmt!r} is not supported (this tenantvec reads {FORMAT_VERSION})"
            )
        stored = self._get_meta(txn, b"tenant")
        if stored != self.tenant_id:
            raise CorruptShard(
                f"tenant {self.tenant_id!r}: shard in {self.path} belongs to tenant {stored!r}; refusing to serve it"
            )
        if fmt == FORMAT_UNSEALED:  # only read-only openers get here: a writer upgrades it first
            raise CorruptShard(
                f"tenant {self.tenant_id!r}: shard format {fmt} (written by an older tenantvec) has no record "
                "checksums; open the store once without readonly=True (or run `tenantvec verify --fix`) to upgrade it"
            )
        self.uuid: str = self._get_meta(txn, b"uuid")
        self.dim: int = self._get_meta(txn, b"dim")
        self.metric: str = self._get_meta(txn, b"metric")
        self.kind: str = self._get_meta(txn, b"kind")
        self._seq: int = self._get_meta(txn, b"seq")
        self._next_label: int = self._get_meta(txn, b"next_label")
        self.active: bool = self._get_meta(txn, b"active", True)
        self._last_write: float | None = self._get_meta(txn, b"last_write", None)
        hp = self._get_meta(txn, b"hnsw")
        self._hnsw_m, self._hnsw_efc = int(hp["m"]), int(hp["ef_construction"])
        ckpt = self._get_meta(txn, b"ckpt", None)
        self._ckpt_seq: int = ckpt["seq"] if ckpt else -1

    # ------------------------------------------------------------------ index build
    def _read_all_vectors(self, txn: lmdb.Transaction[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Every stored vector: labels and an ``(n, dim)`` float32 view, each checked."""
        cur = txn.cursor(db=self._vecs)
        labels = labels_from_bytes(b"".join(cur.iternext(keys=True, values=False)))
        return labels, self._vectors(txn, labels, list(cur.iternext(keys=False, values=True)))

    def read_vectors(self, txn: lmdb.Transaction[bytes], labels: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of ``labels`` (live records) as ``(n, dim)`` float32, checked."""
        get, db = txn.get, self._vecs
        raws = [get(pack_label(lab), db=db) or b"" for lab in np.asarray(labels).tolist()]
        return self._vectors(txn, labels, raws)

    def _vectors(self, txn: lmdb.Transaction[bytes], labels: np.ndarray | list[int], raws: list[bytes]) -> np.ndarray:
        """Stored vector values of ``labels`` as an ``(n, dim)`` float32 view: every CRC32
        in one C-level pass, one join, no copy per row.

        :raises CorruptShard: a vector fails its checksum or has another dimension.
        """
        bad = first_damaged(raws)
        if bad >= 0:
            lab = int(labels[bad])
            raise damaged(self.tenant_id, lab, stored_id(txn.get(pack_label(lab), db=self._recs)), VECTOR)
        blob = b"".join(raws)
        if len(blob) != len(raws) * (self.dim * 4 + CRC_BYTES):
            raise CorruptShard(f"tenant {self.tenant_id!r}: stored vectors do not have dimension {self.dim}")
        return rows_view(blob, len(raws), self.dim)

    def build_index(self, kind: str, labels: np.ndarray, mat: np.ndarray) -> ExactIndex | HnswIndex:
        """A new index of ``kind`` ("exact" or "hnsw") holding ``mat`` under ``labels``."""
        index: ExactIndex | HnswIndex
        if kind == "hnsw":
            index = HnswIndex(
                self.dim, self.metric, m=self._hnsw_m, ef_construction=self._hnsw_efc,
                ef=self.opts.hnsw.ef, capacity=max(len(labels), 1024),
            )
        else:
            index = ExactIndex(self.dim, self.metric, capacity=max(len(labels), 64))
        if len(labels):
            index.add(labels, mat, num_threads=-1)
        if isinstance(index, HnswIndex) and len(labels):
            self._link_unreachable(index, labels, mat)
        return index

    def _link_unreachable(self, index: HnswIndex, labels: np.ndarray, mat: np.ndarray) -> None:
        """Re-insert the records a new graph left unreachable (see ``_index._graph``)."""
        try:
            lost = index.link_unreachable(labels, mat)
        except OSError as exc:  # the links are read from a temporary copy of the index
            log.warning("tenant %r: could not check the new HNSW graph for unreachable records: %s",
                        self.tenant_id, exc)
            return
        if len(lost):
            log.warning(
                "tenant %r: %d records stay unreachable in the new HNSW graph (labels %s): only "
                "get() and queries with k >= the record count return them",
                self.tenant_id, len(lost), lost[:5].tolist(),
            )

    def _rebuild_index(self, txn: lmdb.Transaction[bytes]) -> None:
        self.index = self.build_index(self.kind, *self._read_all_vectors(txn))
        self._loaded_seq = self._seq
        self._payload = None
        self._hot = HotRecords(self.tenant_id)  # read again from LMDB by the next queries
        self.memory_changed = True

    def _load_index(self, txn: lmdb.Transaction[bytes]) -> None:
        self._loaded_seq = self._seq
        if self.kind == "exact":
            self._rebuild_index(txn)
            self._dirty = False
            return
        why = self._try_load_snapshot(txn)
        if why is not None:
            count = txn.stat(self._ids)["entries"]
            if why != "missing" or count:
                log.warning("tenant %r: index snapshot %s; rebuilding %d vectors from LMDB", self.tenant_id, why, count)
            self._rebuild_index(txn)
            self._dirty = True
        else:
            self._dirty = self._ckpt_seq != self._seq
        live = txn.stat(self._ids)["entries"]
        if len(self.index) != live:  # never serve an index that disagrees with LMDB
            log.warning("tenant %r: index holds %d vectors but LMDB %d; rebuilding", self.tenant_id, len(self.index), live)
            self._rebuild_index(txn)
            self._dirty = True

    def _try_load_snapshot(self, txn: lmdb.Transaction[bytes]) -> str | None:
        """Load index.hnsw and replay the op log; return why it could not be used, or None."""
        ckpt = self._get_meta(txn, b"ckpt", None)
        path = os.path.join(self.path, INDEX_FILE)
        if ckpt is None:
            return "missing"
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return "is missing"
        try:
            crc, size = _crc_of(fd)
            if size != ckpt["size"]:
                return f"has {size} bytes, checkpoint says {ckpt['size']} (truncated or replaced)"
            if crc != ckpt["crc"]:
                return "fails its checksum"
            if ckpt["seq"] > self._seq:
                return f"is from a later checkpoint ({ckpt['seq']} > {self._seq})"
            ops = self._oplog_after(txn, ckpt["seq"])
            if ops is None:
                return "is older than the operation log"
            try:
                index = HnswIndex.load(
                    path, self.dim, self.metric, m=self._hnsw_m, ef_construction=self._hnsw_efc,
                    ef=self.opts.hnsw.ef, deleted=labels_from_bytes(ckpt["deleted"]),
                )
            except (RuntimeError, ValueError, MemoryError) as exc:
                return f"cannot be loaded ({exc})"
            try:  # hnswlib read the file by name: the one checked above, unless replaced since
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                return "was replaced while loading"
        finally:
            os.close(fd)
        if len(index) != ckpt["count"]:
            return f"holds {len(index)} vectors, checkpoint says {ckpt['count']}"
        self.index = index
        self._payload = None
        for op, labels in ops:
            self._replay(txn, op, labels)
        return None

    def _oplog_after(self, txn: lmdb.Transaction[bytes], seq: int) -> list[tuple[str, np.ndarray]] | None:
        """Operations with sequence > ``seq``, or None when the log has a gap."""
        out = []
        expect = seq + 1
        cur = txn.cursor(db=self._oplog)
        if cur.set_range(pack_label(expect)):
            for k, v in cur:
                if unpack_label(k) != expect:
                    return None
                op, raw = unpackb(v)
                out.append((op, labels_from_bytes(raw)))
                expect += 1
        return out if expect - 1 == self._seq else None

    def label_changes(self, txn: lmdb.Transaction[bytes], held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels in ``held`` that LMDB no longer has, and labels LMDB has that ``held``
        lacks (labels are never re-used, so this is every delete and every add since)."""
        now = labels_from_bytes(b"".join(txn.cursor(db=self._vecs).iternext(keys=True, values=False)))
        return np.setdiff1d(held, now, assume_unique=True), np.setdiff1d(now, held, assume_unique=True)

    def _replay(self, txn: lmdb.Transaction[bytes], op: str, labels: np.ndarray) -> None:
        if op == "d":
            self.index.remove(labels)
            self._hot.forget(labels.tolist())
            return
        keep, vecs = [], []
        for lab in labels.tolist():
            raw = txn.get(pack_label(lab), db=self._vecs)
            if raw is not None:  # absent: deleted by a later operation
                keep.append(lab)
                vecs.append(raw)
        if keep:
            mat = self._vectors(txn, keep, vecs)
            self.index.add(np.asarray(keep, dtype=np.int64), mat)
            if self._hot.complete:  # otherwise the next chunks read these records
                self._hot.remember(keep, [txn.get(pack_label(lab), db=self._recs) for lab in keep])

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            self._refuse()  # TenantNotFound for a read-only shard the writer dropped

    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadOnlyStore(f"tenant {self.tenant_id!r}: the store is open read-only")

    def read_txn(self, db: Any = None) -> lmdb.Transaction[bytes]:
        """A read transaction on the shard's environment. When every reader slot is
        taken, the slots of dead processes (killed read-only processes leave theirs
        behind) are cleared and the begin retried once. ``db``: the default database."""
        try:
            return self._env.begin(db=db)
        except lmdb.ReadersFullError:
            if not clear_stale_readers(self._env, self.tenant_id):
                raise
            return self._env.begin(db=db)

    def _write(self, body: Callable[[lmdb.Transaction[bytes]], Any]) -> Any:
        """Run ``body`` in a write transaction, growing the map and retrying when full."""
        return write_txn(self._env, body, f"tenant {self.tenant_id!r}", self.long_reads)

    def _refresh(self) -> None:
        """Readonly shards: catch up with what the writer process committed since load
        (the manager's pin has checked that the files are still this incarnation's)."""
        if self.gone:
            self._refuse()
        with self._lock.read():  # not while another thread reopens or closes the env
            if self._closed:
                return  # the caller raises StoreClosed (or TenantNotFound, gone)
            with self.read_txn() as txn:
                seq = self._get_meta(txn, b"seq")
                self.active = self._get_meta(txn, b"active", True)  # set_active moves no seq
        if seq == self._loaded_seq:
            return
        self._lock.acquire_write()
        try:
            if self._closed:
                return
            with self.read_txn() as txn:
                self._load_meta(txn)
                if self.kind == self.index.kind == "hnsw":
                    ops = self._oplog_after(txn, self._loaded_seq)
                elif self.kind == self.index.kind == "exact":  # no op log: what changed is a label diff
                    gone, new = self.label_changes(txn, self.index.labels())
                    ops = [("d", gone), ("a", new)]
                else:  # the writer switched index kinds
                    ops = None
                if ops is None:
                    self._rebuild_index(txn)
                else:
                    for op, labels in ops:
                        self._replay(txn, op, labels)
                    self._loaded_seq = self._seq
                    self._payload = None
                    self.memory_changed = True  # the index and in-memory records changed
        finally:
            self._lock.release_write()

    def _begin_read(self, *, inactive_ok: bool = False) -> None:
        """Take the read lock for one call (read-only shards catch up first).

        :raises TenantInactive: the tenant is deactivated (checked under the lock, so a
            call never runs after ``set_active(False)`` returned), unless ``inactive_ok``.
        :raises TenantNotFound: a read-only shard whose tenant the writer dropped.
        """
        if self.readonly:
            self._refresh()
        self._lock.acquire_read()
        if self._closed or not (self.active or inactive_ok):
            self._lock.release_read()
            self._refuse()

    def _refuse(self) -> None:
        """Raise why this shard cannot serve a call (closed, gone or deactivated)."""
        if self.gone:
            raise TenantNotFound(f"tenant {self.tenant_id!r} was dropped by the writer process")
        if self._closed:
            raise StoreClosed(f"tenant {self.tenant_id!r}: shard is closed")
        raise TenantInactive(f"tenant {self.tenant_id!r} is deactivated (Store.activate re-enables it)")

    def _record(self, txn: lmdb.Transaction[bytes], lb: bytes, rec: list, include_vectors: bool) -> Record:
        vec = None
        if include_vectors:
            raw = open_vector(txn.get(lb, db=self._vecs), self.tenant_id, unpack_label(lb), self.dim, rec[0])
            vec = np.frombuffer(raw, dtype=np.float32).copy()
        return Record(rec[0], rec[1], rec[2], rec[3], rec[4], vec)

    def _scan(self, txn: lmdb.Transaction[bytes], pred: Callable[[list], bool] | None) -> Iterator[tuple[bytes, list]]:
        tid = self.tenant_id
        for lb, raw in txn.cursor(db=self._recs):
            rec = open_record(raw, tid, unpack_label(lb))
            if pred is None or pred(rec):
                yield lb, rec

    def _label_of(self, txn: lmdb.Transaction[bytes], rid: str) -> bytes | None:
        """The label (8 bytes) the id map holds for ``rid``, checked; None when absent."""
        return open_label(txn.get(rid.encode("utf-8"), db=self._ids), self.tenant_id, rid)

    # ------------------------------------------------------------------ writes
    def put(
        self,
        vectors: object,
        ids: object,
        documents: object,
        metadata: object,
        *,
        upsert: bool,
    ) -> list[str]:
        """Add (or upsert) records; returns their ids. Validation precedes the transaction."""
        self._check_open()
        self._check_writable()
        tid = self.tenant_id
        vecs, _ = check_vectors(vectors, self.dim, self.metric, tid)
        n = len(vecs)
        if ids is None:
            if upsert:
                raise InvalidArgument(f"tenant {tid!r}: upsert needs ids")
            id_list = [new_record_id() for _ in range(n)]
        else:
            id_list = check_record_ids(ids, n, tid, unique=True)
        docs = check_documents(documents, n, tid)
        metas = check_metadata(metadata, n, tid)
        now = time.time()
        keys = [rid.encode("utf-8") for rid in id_list]
        stored_vecs = seal_rows(vecs)  # each vector's bytes and CRC32

        self._lock.acquire_write()
        try:
            if self._closed or not self.active:
                self._refuse()
            hnsw = self.kind == "hnsw"
            upgrade = not hnsw and len(self.index) + n > self.opts.hnsw_threshold

            def body(txn: lmdb.Transaction[bytes]) -> tuple[np.ndarray, list[list], list[bytes], list[int], int]:
                old_labels: list[int] = []
                created = [now] * n
                for i, kb in enumerate(keys):
                    old = txn.get(kb, db=self._ids)
                    if old is None:
                        continue
                    old = open_label(old, tid, id_list[i])
                    if not upsert:
                        raise DuplicateId(f"tenant {tid!r}: id {id_list[i]!r} already exists (use upsert to replace it)")
                    rec = open_record(txn.get(old, db=self._recs), tid, unpack_label(old), id_list[i])
                    created[i] = rec[3]
                    self._delete_label(txn, old)
                    old_labels.append(unpack_label(old))
                first = self._next_label
                labels = np.arange(first, first + n, dtype=np.int64)
                lbs = [pack_label(lab) for lab in labels.tolist()]
                recs = [[id_list[i], metas[i], docs[i], created[i], now] for i in range(n)]
                packed = list(map(seal, map(packb, recs)))  # as stored and kept in memory: with CRC32
                rows, width = memoryview(stored_vecs).cast("B"), stored_vecs.shape[1]
                # one C call per database; labels only grow, and appending fills LMDB pages
                # instead of splitting them (an append out of order would add nothing)
                txn.cursor(db=self._ids).putmulti(zip(keys, map(seal, lbs)))
                added = (
                    txn.cursor(db=self._recs).putmulti(zip(lbs, packed), append=True)[1],
                    txn.cursor(db=self._vecs).putmulti(
                        ((lb, rows[i * width : (i + 1) * width]) for i, lb in enumerate(lbs)), append=True
                    )[1],
                )
                if added != (n, n):
                    raise CorruptShard(f"tenant {tid!r}: label {first} is not past every stored label")
                put = txn.put
                seq = self._seq
                if hnsw:
                    if old_labels:
                        seq += 1
                        put(pack_label(seq), packb(["d", labels_to_bytes(np.array(old_labels))]),
                            db=self._oplog, append=True)
                    seq += 1
                    put(pack_label(seq), packb(["a", labels_to_bytes(labels)]), db=self._oplog, append=True)
                else:
                    seq += 1
                meta = {b"seq": seq, b"next_label": first + n, b"last_write": now}
                if upgrade:
                    meta[b"kind"] = "hnsw"
                for key, value in meta.items():
                    put(key, packb(value), db=self._meta)
                return labels, recs, packed, old_labels, seq

            labels, recs, packed, old_labels, seq = self._write(body)
            self._seq = self._loaded_seq = seq
            self._next_label += n
            self._last_write = now
            self._apply(labels, vecs, recs, packed, old_labels, upgrade)
        finally:
            self._lock.release_write()
        return id_list

    def _apply(
        self,
        labels: np.ndarray,
        vecs: np.ndarray,
        recs: list[list],
        packed: list[bytes],
        removed: list[int],
        upgrade: bool,
    ) -> None:
        """Mirror a committed write into the in-memory records, payload columns and index."""
        self._hot.forget(removed)
        self._hot.remember(labels.tolist(), packed)
        self.memory_changed = True
        payload = self._payload
        if payload is not None:
            if upgrade:
                self._payload = None  # rebuilt with vector copies on the next filtered call
            else:
                for lab in removed:
                    payload.remove(lab)
                for lab, rec in zip(labels.tolist(), recs):
                    payload.add(lab, rec)
                payload.set_vectors(labels, vecs)
        try:
            if removed:
                self.index.remove(np.asarray(removed, dtype=np.int64))
            if upgrade:
                # from LMDB's vectors, the ones a reopen would build from: the exact index
                # holds l2 rows re-centred in float32, one rounding away from them
                with self.read_txn() as txn:
                    index = self.build_index("hnsw", *self._read_all_vectors(txn))
                self.index = index
                self.kind = "hnsw"
                log.info("tenant %r: switched to an HNSW index at %d records", self.tenant_id, len(index))
            elif len(labels):
                # big batches use every core (bulk loads); small ones stay on this thread
                threads = -1 if len(labels) >= 256 else 1
                self.index.add(labels, vecs, num_threads=threads)
            if self.kind == "hnsw":
                self._dirty = True
        except Exception:
            # LMDB committed; the index is now suspect. Rebuild it from LMDB.
            log.exception("tenant %r: index update failed after commit; rebuilding from LMDB", self.tenant_id)
            with self.read_txn() as txn:
                self._rebuild_index(txn)
            self._dirty = self.kind == "hnsw"

    def _delete_label(self, txn: lmdb.Transaction[bytes], lb: bytes) -> None:
        txn.delete(lb, db=self._recs)
        txn.delete(lb, db=self._vecs)

    def delete(self, ids: object = None, where: object = None) -> int:
        """Delete records by id and/or filter; returns how many were removed."""
        self._check_open()
        self._check_writable()
        tid = self.tenant_id
        if ids is None and where is None:
            raise InvalidArgument(
                f"tenant {tid!r}: delete() needs ids or where (where={{}} deletes every record)"
            )
        id_list = check_record_ids(ids, None, tid, unique=False) if ids is not None else None
        compiled = compile_where(where)
        self._lock.acquire_write()
        try:
            if self._closed or not self.active:
                self._refuse()

            def body(txn: lmdb.Transaction[bytes]) -> tuple[list[int], int]:
                targets: list[tuple[bytes, list]] = []
                if id_list is not None:
                    seen = set()
                    for rid in id_list:
                        lb = self._label_of(txn, rid)
                        if lb is None or lb in seen:
                            continue
                        seen.add(lb)
                        if compiled is None:  # the record is not read: a damaged one can be deleted
                            targets.append((lb, [rid]))
                            continue
                        rec = open_record(txn.get(lb, db=self._recs), tid, unpack_label(lb), rid)
                        if compiled[1](rec):
                            targets.append((lb, rec))
                else:
                    targets = list(self._matching(txn, compiled))
                if not targets:
                    return [], self._seq
                for lb, rec in targets:
                    txn.delete(rec[0].encode("utf-8"), db=self._ids)
                    self._delete_label(txn, lb)
                labels = [unpack_label(lb) for lb, _ in targets]
                seq = self._seq + 1
                if self.kind == "hnsw":
                    txn.put(pack_label(seq), packb(["d", labels_to_bytes(np.array(labels))]), db=self._oplog)
                now = time.time()
                txn.put(b"seq", packb(seq), db=self._meta)
                txn.put(b"last_write", packb(now), db=self._meta)
                return labels, seq

            labels, seq = self._write(body)
            if labels:
                self._seq = self._loaded_seq = seq
                self._last_write = time.time()
                self._apply(np.empty(0, np.int64), np.empty((0, self.dim), np.float32), [], [], labels, False)
            return len(labels)
        finally:
            self._lock.release_write()

    def payload(self, txn: lmdb.Transaction[bytes]) -> PayloadIndex:
        """The payload columns, built from LMDB on first use after a load."""
        payload = self._payload
        if payload is not None:
            return payload
        with self._payload_lock:
            if self._payload is None:
                hnsw = self.index.kind == "hnsw"
                payload = PayloadIndex(self.dim, self.metric, with_vectors=hnsw, capacity=self._next_label + 1)
                bound = self._get_meta(txn, b"next_label")  # columns are sized by label: a damaged one
                for lb, raw in txn.cursor(db=self._recs):  # past it would ask for any amount of memory
                    if unpack_label(lb) >= bound:
                        raise CorruptShard(f"tenant {self.tenant_id!r}: record label {unpack_label(lb)} is past "
                                           f"next_label {bound} (damaged; Store.verify repairs it)")
                    payload.add(unpack_label(lb), open_record(raw, self.tenant_id, unpack_label(lb)))
                if hnsw:
                    labels, mat = self._read_all_vectors(txn)
                    if len(labels) and int(labels.max()) >= bound:
                        raise CorruptShard(f"tenant {self.tenant_id!r}: vector label {int(labels.max())} is past "
                                           f"next_label {bound} (damaged; Store.verify repairs it)")
                    payload.set_vectors(labels, mat)
                self._payload = payload
                self.memory_changed = True
                log.debug("tenant %r: built payload columns (%d bytes)", self.tenant_id, payload.nbytes)
            return self._payload

    def filter_mask(self, txn: lmdb.Transaction[bytes], compiled: tuple[Node, Callable]) -> np.ndarray:
        """Boolean mask over labels (length > every label) of live records matching."""
        node, pred = compiled
        payload = self.payload(txn)
        mask = payload.mask(node)
        if mask is None:  # a value the columns cannot hold exactly: evaluate records
            mask = np.zeros(payload.cap, dtype=bool)
            for lb, _ in self._scan(txn, pred):
                mask[unpack_label(lb)] = True
        if len(mask) < self._next_label:
            mask = np.concatenate([mask, np.zeros(self._next_label - len(mask), dtype=bool)])
        return mask

    def _matching(self, txn: lmdb.Transaction[bytes], compiled: tuple[Node, Callable] | None) -> Iterator[tuple[bytes, list]]:
        """(label bytes, record) of every record matching a compiled filter, label order."""
        if compiled is None:
            yield from self._scan(txn, None)
            return
        for lab in np.flatnonzero(self.filter_mask(txn, compiled)).tolist():
            lb = pack_label(lab)
            raw = txn.get(lb, db=self._recs)
            if raw is not None:
                yield lb, open_record(raw, self.tenant_id, lab)

    def _recs_count(self, txn: lmdb.Transaction[bytes]) -> int:
        return txn.stat(self._ids)["entries"]

    def set_active(self, active: bool) -> None:
        """Persist the tenant's active flag."""
        self._check_writable()
        with self._lock.write():
            self._write(lambda txn: txn.put(b"active", packb(bool(active)), db=self._meta))
            self.active = bool(active)

    # ------------------------------------------------------------------ reads
    def query(
        self, queries: object, k: object, where: object = None, *, explain: bool = False
    ) -> tuple[list[list[Hit]], bool, QueryPlan | None]:
        """Nearest records to each query row; returns (hits per row, input was 1-D, plan)."""
        qs, single = check_vectors(queries, self.dim, self.metric, self.tenant_id, what="query vector", copy=False)
        if type(k) is not int or k < 1:
            k = check_k(k)
        compiled = compile_where(where) if where is not None else None
        for _ in range(_STALE_RETRIES):
            rows, out, plan = self._search(qs, single, k, compiled, explain)
            if not self.readonly or all(len(hits) == len(row[0]) for hits, row in zip(out, rows)):
                break
            # A read-only view: the writer deleted records that this index still held after
            # it caught up. The next search catches up again (_begin_read) and runs anew.
        return out, single, plan

    def _search(
        self, qs: np.ndarray, single: bool, k: int, compiled: tuple[Node, Callable] | None, explain: bool
    ) -> tuple[list[tuple[list[int], list[float]]], list[list[Hit]], QueryPlan | None]:
        """One search under the read lock: (labels and distances, hits, plan) per row."""
        self._begin_read()
        try:
            if single and compiled is None and not explain:  # the common query: no LMDB read
                plan, rows = None, [self.index.nearest(qs[0], k)]
            else:
                with self.read_txn() as txn:
                    plan, results = plan_query(self, txn, qs, k, compiled, explain)
                rows = [(labels.tolist(), dists.tolist()) for labels, dists in results]
            hot = self._hot
            before = hot.nbytes
            try:
                get = hot.getter(self.read_txn, self._recs)
                out = [hot.hits(get, labels, dists) for labels, dists in rows]
            finally:
                if hot.nbytes != before:  # a chunk read or records decoded: re-count (after, not before)
                    self.memory_changed = True
        finally:
            self._lock.release_read()
        return rows, out, plan

    def get(
        self,
        ids: object = None,
        where: object = None,
        limit: object = None,
        offset: object = 0,
        include_vectors: bool = False,
    ) -> list[Record]:
        """Records by id (in the order asked, unknown ids skipped) and/or by filter."""
        self._check_open()
        tid = self.tenant_id
        id_list = check_record_ids(ids, None, tid, unique=False) if ids is not None else None
        compiled = compile_where(where)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidArgument(f"tenant {tid!r}: limit must be a non-negative integer or None, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgument(f"tenant {tid!r}: offset must be a non-negative integer, got {offset!r}")
        out: list[Record] = []
        self._begin_read()
        try:
            with self.read_txn() as txn:
                if id_list is not None:
                    pred = compiled[1] if compiled else None
                    matches: Iterator[tuple[bytes, list]] = (
                        (lb, rec)
                        for lb, rec in (
                            (lb, open_record(txn.get(lb, db=self._recs), tid, unpack_label(lb), r))
                            for r, lb in ((r, self._label_of(txn, r)) for r in id_list)
                            if lb is not None
                        )
                        if pred is None or pred(rec)
                    )
                else:
                    matches = self._matching(txn, compiled)
                skipped = 0
                for lb, rec in matches:
                    if skipped < offset:
                        skipped += 1
                        continue
                    if limit is not None and len(out) >= limit:
                        break
                    out.append(self._record(txn, lb, rec, include_vectors))
        finally:
            self._lock.release_read()
        return out

    def count(self, where: object = None) -> int:
        """Number of live records (matching ``where`` when given)."""
        self._check_open()
        compiled = compile_where(where)
        self._begin_read()
        try:
            with self.read_txn() as txn:
                if compiled is None:
                    return self._recs_count(txn)
                return int(np.count_nonzero(self.filter_mask(txn, compiled)))
        finally:
            self._lock.release_read()

    def files_bytes(self) -> int:
        total = 0
        for name in ("data.mdb", "lock.mdb", INDEX_FILE):
            try:
                total += os.stat(os.path.join(self.path, name)).st_size
            except FileNotFoundError:
                pass
        return total

    def info(self, state: str) -> TenantInfo:
        self._begin_read(inactive_ok=True)
        try:
            with self.read_txn() as txn:
                count = self._recs_count(txn)
            params: dict[str, Any] = {"hnsw_threshold": self.opts.hnsw_threshold}
            if self.kind == "hnsw":
                params.update(m=self._hnsw_m, ef_construction=self._hnsw_efc, ef=self.opts.hnsw.ef)
            return TenantInfo(
                tenant=self.tenant_id, count=count, dim=self.dim, metric=self.metric,
                state=state, index_kind=self.index.kind, deleted=self.index.deleted,
                bytes_on_disk=self.files_bytes(), memory_bytes=self.memory_bytes,
                seq=self._seq, checkpoint_seq=self._ckpt_seq, last_write=self._last_write,
                index_params=params,
            )
        finally:
            self._lock.release_read()

    @property
    def memory_bytes(self) -> int:
        """Accounted resident bytes: the index, the in-memory records and payload columns."""
        payload = self._payload
        return self.index.memory_bytes + self._hot.nbytes + (payload.nbytes if payload is not None else 0)

    @property
    def dirty(self) -> bool:
        return self._dirty and not self.readonly

    # ------------------------------------------------------------------ snapshots
    def flush(self) -> bool:
        """Write the HNSW snapshot if it is behind LMDB; returns whether one was written.

        The snapshot is written to ``index.hnsw.partial``, fsynced and renamed over
        ``index.hnsw``; only then is the checkpoint recorded in LMDB and the op log
        before it pruned, so a crash at any point leaves a loadable state.
        """
        if self.readonly or self._closed:
            return False
        with self._flush_lock:
            self._lock.acquire_write()
            try:
                if not self._dirty or self.kind != "hnsw":
                    return False
                self._write_snapshot()
                return True
            finally:
                self._lock.release_write()

    def _write_snapshot(self) -> None:
        index = self.index
        assert isinstance(index, HnswIndex)
        final = os.path.join(self.path, INDEX_FILE)
        partial = final + ".partial"
        seq = self._seq
        try:
            ckpt = save_snapshot(index, partial, seq)
        except BaseException:  # e.g. a full disk: the snapshot is derived, the op log holds all
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        os.replace(partial, final)
        _fsync_dir(self.path)

        def body(txn: lmdb.Transaction[bytes]) -> None:
            txn.put(b"ckpt", packb(ckpt), db=self._meta)
            cur = txn.cursor(db=self._oplog)
            while cur.first() and unpack_label(cur.key()) <= seq:
                cur.delete()

        self._write(body)
        self._ckpt_seq = seq
        self._dirty = False
        log.debug("tenant %r: wrote index snapshot at seq %d (%d bytes)", self.tenant_id, seq, ckpt["size"])

    def close(self) -> None:
        """Flush the snapshot (writers) and close the environment. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._lock.acquire_write()
            try:
                self._closed = True
                if self._env is not None:
                    self._env.close()
            finally:
                self._lock.release_write()

    def sync(self) -> None:
        """Force LMDB's buffers to disk (meaningful under ``durability="process"``)."""
        if not self.readonly and not self._closed:
            self._env.sync(True)

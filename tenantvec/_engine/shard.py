"""Shard: one tenant = one LMDB environment (source of truth) + one vector index.

What is stored where is :mod:`tenantvec._engine.layout`; how the environment is opened
(and re-opened when a writer process replaced the files), :mod:`tenantvec._engine.shardfiles`;
how a write is validated and staged in a transaction, :mod:`tenantvec._engine.writes`; how
records are read and filters evaluated, :mod:`tenantvec._engine.records`; how the index
snapshot is written, checked and brought up to date from the op log,
:mod:`tenantvec._engine.snapshot`. A value that fails its CRC32 is never served
(``CorruptShard``).

A hot shard also keeps its records in memory by label (:mod:`tenantvec._engine.hotrecs`:
packed, and decoded once a query returns them), so that a query turns index labels into
hits without an LMDB B-tree lookup or a msgpack decode per hit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import islice
from typing import Any, Concatenate, ParamSpec, TypeVar

import lmdb
import numpy as np

from .._ids import check_record_ids
from .._options import StoreOptions
from .._types import Hit, QueryPlan, Record, TenantInfo
from .._validate import check_k, check_page, check_vectors
from ..errors import InvalidArgument, ReadOnlyStore, StoreClosed, TenantInactive, TenantNotFound, TenantVecError
from .hotrecs import HotRecords
from .index import ExactIndex, HnswIndex, build_index
from .layout import DATA_FILE, REQUIRED, Databases, meta_value, open_databases, pack_label, read_meta
from .payload import PayloadIndex
from .planner import Matching, plan_query
from .records import Compiled, Filters, all_vectors, by_ids, compile_where, ops_since, stored_vectors, to_record
from .rwlock import RWLock
from .shardfiles import clear_stale_readers, disk_bytes, install_files, open_env
from .snapshot import NO_CHECKPOINT, load_snapshot, record_checkpoint, replay, write_snapshot
from .storage import translated
from .txn import GrowingTxn, ReadTxn, WriteTxn, write_txn
from .wmlog import WorkingMemory, WorkingMemoryCalls
from .writes import Staged, prepare_delete, prepare_put, stage_delete, stage_lifecycle, stage_put, upgrade_format

log = logging.getLogger("tenantvec")

P = ParamSpec("P")
R = TypeVar("R")

#: Searches a read-only query makes at most while the writer deletes records under it.
_STALE_RETRIES = 3


class Shard(WorkingMemoryCalls):
    """One tenant's storage: its LMDB environment, vector index and in-memory records.
    Opened by the :class:`~tenantvec._engine.manager.ShardManager`; nothing above it
    touches LMDB or hnswlib. Thread-safe. Its jobs:

    * open the files (made by :func:`~.shardfiles.create_shard`) and load the index,
      healing a stale or damaged snapshot (:meth:`open`);
    * writes (:meth:`put`, :meth:`delete`, :meth:`transaction`, :meth:`lifecycle`): the
      steps of :mod:`~.writes` run in one LMDB transaction under the write lock, then
      mirrored into the index, the in-memory records and the payload columns (:meth:`publish`);
    * reads (:meth:`query`, :meth:`get`, :meth:`count`, :meth:`info`, :meth:`view`);
      filters are evaluated on payload columns that ``filters`` (:class:`~.records.Filters`) keeps;
    * read-only shards: follow the writer process (:meth:`follow`, and a catch-up with
      the op log before each call);
    * write index snapshots (:meth:`flush`), folding journaled working memory into LMDB
      (``wm_write``/``wm_read``: :class:`~.wmlog.WorkingMemoryCalls`, mixed in);
    * serve maintenance through a few explicit steps: :meth:`reading`,
      :meth:`long_read`, :meth:`locked`, :meth:`install`, :meth:`load_index`,
      :meth:`rebuild_index`.

    Locks, taken in this order (outer first), never the other way round:

    1. ``compaction_lock``: one compaction of the shard at a time; an export holds it so
       that the files are not swapped under its read.
    2. ``_flush_lock``: one snapshot write at a time.
    3. ``_lock`` (readers/writer): every call holds it shared; writes, transactions (for
       their whole body), snapshot writes, a read-only shard's catch-up and compaction's
       swap hold it alone. A call from a thread that holds a transaction or a read view
       (``_owners``) is refused: it would wait for itself.
    4. ``long_reads`` (readers/writer): held shared by read transactions that run without
       ``_lock`` (an export, compaction's copy); growing the LMDB map, which happens in a
       write under ``_lock``, takes it alone. A read-only shard reopening its files takes
       it alone *before* ``_lock``: read-only shards never grow the map, so the two
       orders never meet.
    5. ``filters``' lock, then the in-memory records' own lock: building payload columns
       and reading records into memory, under ``_lock`` shared.

    The manager's lock is never held while one of these is waited for; it alone changes
    ``pins``, ``accounted`` and ``memory_changed``.
    """

    def __init__(self, path: str, tenant_id: str, opts: StoreOptions, readonly: bool, env: lmdb.Environment,
                 data_ino: int) -> None:
        """A shard over an environment open in ``path`` (see :meth:`open`, which also reads
        the metadata and loads the index: until then the shard holds an empty index)."""
        self.path = path
        self.tenant_id = tenant_id
        self.opts = opts
        self.readonly = readonly
        # -- the manager's bookkeeping (under its lock)
        self.pins = 0
        self.gone = False  # read-only: the writer dropped (or re-created) the tenant; never serve
        self.accounted = 0  # memory_bytes as the ShardManager last counted it
        self.memory_changed = True  # set when memory_bytes may have changed since counted
        # -- locks (see the class docstring)
        self.compaction_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._lock = RWLock()
        self.long_reads = RWLock()
        self._owners: dict[int, str] = {}  # threads holding a transaction or a read view -> which
        # -- files: the environment, its databases, the inode of the data file opened
        #    (compaction replaces the file; a read-only shard then reopens)
        self._closed = False
        self._env = env
        self._data_ino = data_ino
        self._dbs = dbs = open_databases(env, tenant_id, path)
        self._side: dict[str, Any] = dbs.side()  # side table name -> LMDB handle
        # -- metadata, as read by _load_meta (and kept current by writes)
        self.uuid = ""
        self.dim = 0
        self.metric = ""
        self.kind = "exact"
        self.active = True
        self._seq = 0
        self._next_label = 0
        self._last_write: float | None = None
        self._hnsw_m = self._hnsw_efc = 0
        self._ckpt_seq = -1  # sequence of the recorded snapshot; -1: none
        # -- memory: the index (reflecting LMDB at _loaded_seq), whether its snapshot is
        #    behind, payload columns (built on the first filtered call) and records
        self.index: ExactIndex | HnswIndex = ExactIndex(1, "l2", capacity=1)
        self._loaded_seq = 0
        self._dirty = False
        self.filters = Filters(tenant_id)
        self._hot = HotRecords(tenant_id)
        self._wm = WorkingMemory(path, tenant_id, readonly, dbs, self.read_txn, self._write)  # the "wm" side table

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, path: str, tenant_id: str, opts: StoreOptions, readonly: bool, *, load_index: bool = True) -> Shard:
        """Open a shard, check its identity and load (or heal) its index; without
        ``load_index`` only the environment and metadata are opened (maintenance: see
        :meth:`load_index`).

        :raises CorruptShard: the metadata fails :func:`~.layout.examine_meta` (another
            tenant's shard, an unknown format, ...), or LMDB cannot open the environment.
        :raises TenantNotFound: the files are gone.
        """
        env, data_ino = open_env(path, tenant_id, opts, readonly)
        try:
            self = cls(path, tenant_id, opts, readonly, env, data_ino)
            if not readonly:
                upgrade_format(self.read_txn, self._write, self._dbs, tenant_id)
            with self.read_txn() as txn:
                self._load_meta(txn)
                self._wm.attach(txn)
                if load_index:
                    self._load_index(txn)
        except BaseException:
            env.close()
            raise
        return self

    def _reopen_env(self) -> None:
        """Close and reopen the LMDB environment after compaction replaced its files;
        reloads the metadata, keeps the in-memory index. The caller holds the write lock.
        If the files cannot be opened the shard is closed and ``gone``."""
        self._env.close()
        try:
            self._env, self._data_ino = open_env(self.path, self.tenant_id, self.opts, self.readonly)
            try:
                self._dbs = dbs = open_databases(self._env, self.tenant_id, self.path)
                self._side = dbs.side()
                self._wm.reset(dbs)
                with self.read_txn() as txn:
                    self._load_meta(txn)
            except BaseException:
                self._env.close()
                raise
        except BaseException:
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
                self._closed = True
                return False
        return True

    def _files_moved(self) -> bool:
        """Whether data.mdb was replaced (compaction, or a drop and re-create) or removed
        (a drop) since this shard opened it: one stat (inline: a read-only call's path)."""
        try:
            return os.stat(os.path.join(self.path, DATA_FILE)).st_ino != self._data_ino
        except FileNotFoundError:
            return True

    def meta(self, txn: lmdb.Transaction[bytes], key: bytes, default: Any = REQUIRED) -> Any:
        """Metadata value ``key`` as ``txn`` sees it (:func:`~.layout.meta_value`)."""
        return meta_value(txn, self._dbs.meta, key, default, tenant_id=self.tenant_id, path=self.path)

    def _load_meta(self, txn: lmdb.Transaction[bytes]) -> None:
        """Read the metadata (checked: :func:`~.layout.read_meta`) into the shard's state.

        :raises CorruptShard: another tenant's shard, an unsupported or unsealed format,
            missing or malformed values.
        """
        meta = read_meta(txn, self._dbs.meta, self.tenant_id, self.path)
        self.uuid, self.dim, self.metric, self.kind = meta.uuid, meta.dim, meta.metric, meta.kind
        self._seq, self._next_label = meta.seq, meta.next_label
        self.active, self._last_write = meta.active, meta.last_write
        self._hnsw_m, self._hnsw_efc = meta.hnsw_m, meta.hnsw_ef_construction
        self._ckpt_seq = meta.checkpoint["seq"] if meta.checkpoint else -1

    # ------------------------------------------------------------------ index build
    def read_all_vectors(self, txn: lmdb.Transaction[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Every stored vector: labels and an ``(n, dim)`` float32 view, each checked."""
        return all_vectors(txn, self.databases, self.tenant_id, self.dim)

    def read_vectors(self, txn: lmdb.Transaction[bytes], labels: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of ``labels`` (live records) as ``(n, dim)`` float32, checked."""
        get, db = txn.get, self._dbs.vecs
        raws = [get(pack_label(lab), db=db) or b"" for lab in np.asarray(labels).tolist()]
        return self._vectors(txn, labels, raws)

    def _vectors(self, txn: lmdb.Transaction[bytes], labels: np.ndarray | list[int], raws: list[bytes]) -> np.ndarray:
        """Stored vector values of ``labels``, checked (see :func:`~.records.stored_vectors`)."""
        return stored_vectors(txn, self._dbs.recs, self.tenant_id, self.dim, labels, raws)

    def build_index(self, kind: str, labels: np.ndarray, mat: np.ndarray) -> ExactIndex | HnswIndex:
        """A new index of ``kind`` ("exact" or "hnsw") holding ``mat`` under ``labels``,
        with the shard's dimension, metric and HNSW parameters."""
        return build_index(kind, self.dim, self.metric, labels, mat, m=self._hnsw_m, ef_construction=self._hnsw_efc,
                           ef=self.opts.hnsw.ef, tenant=self.tenant_id)

    def _rebuild_index(self, txn: lmdb.Transaction[bytes]) -> None:
        self.index = self.build_index(self.kind, *self.read_all_vectors(txn))
        self._loaded_seq = self._seq
        self.filters.drop()
        self._hot = HotRecords(self.tenant_id, keep=self._hot.keep)  # read again from LMDB by the next queries
        self.memory_changed = True

    def _open_snapshot(self, path: str, deleted: np.ndarray) -> HnswIndex:
        """The HNSW index in snapshot file ``path`` (checked by the caller), with its tombstones."""
        return HnswIndex.load(path, self.dim, self.metric, m=self._hnsw_m, ef_construction=self._hnsw_efc,
                              ef=self.opts.hnsw.ef, deleted=deleted)

    def _load_index(self, txn: lmdb.Transaction[bytes], *, heal: bool = True) -> str | None:
        """Load the index as LMDB has it in ``txn``: an exact one is built from the stored
        vectors; an HNSW one is its snapshot with the op log replayed (see
        :mod:`~.snapshot`). Returns None once the index is loaded.

        With ``heal`` (opening), a snapshot that cannot serve, or an index that disagrees
        with LMDB's record count, is rebuilt from LMDB and logged. Without (verify), returns
        why the snapshot cannot serve and leaves the index as it was; a shard that has no
        snapshot yet is built from LMDB either way (that is not damage).
        """
        self._loaded_seq = self._seq
        if self.kind == "exact":
            self._rebuild_index(txn)
            self._dirty = False
            return None
        got = load_snapshot(self.path, self.meta(txn, b"ckpt", None), self._seq, txn, self._dbs.oplog, self._open_snapshot)
        if isinstance(got, str):
            if not heal and got is not NO_CHECKPOINT:
                return got
            count = self._recs_count(txn)
            if heal and (got is not NO_CHECKPOINT or count):
                log.warning("tenant %r: index snapshot %s; rebuilding %d vectors from LMDB", self.tenant_id, got, count)
            self._rebuild_index(txn)
            self._dirty = True
        else:
            self.index = got.hnsw
            self.filters.drop()
            replay(txn, self.databases, got.ops, got.hnsw, self._hot, self._vectors)
            self._dirty = self._ckpt_seq != self._seq
        live = self._recs_count(txn)
        if heal and len(self.index) != live:  # never serve an index that disagrees with LMDB
            log.warning("tenant %r: index holds %d vectors but LMDB %d; rebuilding", self.tenant_id, len(self.index), live)
            self._rebuild_index(txn)
            self._dirty = True
        return None

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
                seq = self.meta(txn, b"seq")
                self.active = self.meta(txn, b"active", True)  # lifecycle writes move no seq
        if seq == self._loaded_seq:
            return
        with self._lock.write():
            if self._closed:
                return
            with self.read_txn() as txn:
                self._load_meta(txn)
                ops = ops_since(txn, self._dbs, self.kind, self.index, self._loaded_seq, self._seq)
                if ops is None:
                    self._rebuild_index(txn)
                else:
                    replay(txn, self.databases, ops, self.index, self._hot, self._vectors)
                    self._loaded_seq = self._seq
                    self.filters.drop()
                    self.memory_changed = True  # the index and in-memory records changed

    def _begin_read(self, *, inactive_ok: bool = False) -> None:
        """Take the read lock for one call (read-only shards catch up first).

        :raises TenantInactive: the tenant is deactivated (checked under the lock, so a
            call never runs after ``lifecycle(..., active=False)`` returned), unless ``inactive_ok``.
        :raises TenantNotFound: a read-only shard whose tenant the writer dropped.
        """
        if self._owners:
            self.check_not_in_txn()
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

    # ------------------------------------------------------------------ writes
    def put(self, vectors: object, ids: object, documents: object, metadata: object, *, upsert: bool) -> list[str]:
        """Add (or upsert) records; returns their ids. Validation precedes the transaction
        (see :func:`~.writes.prepare_put` and :func:`~.writes.stage_put`)."""
        self._check_open()
        self._check_writable()
        batch = prepare_put(vectors, ids, documents, metadata, upsert=upsert, tenant=self.tenant_id, dim=self.dim,
                            metric=self.metric)
        return self._commit(stage_put, batch, self.tenant_id, self.opts.hnsw_threshold)

    def delete(self, ids: object = None, where: object = None) -> int:
        """Delete records by id and/or filter; returns how many were removed."""
        self._check_open()
        self._check_writable()
        target = prepare_delete(ids, where, self.tenant_id)
        return self._commit(stage_delete, target, self.tenant_id, self.dim, self.matching)

    def _commit(self, stage: Callable[Concatenate[lmdb.Transaction[bytes], Databases, Staged, P], R], *args: P.args,
                **kwargs: P.kwargs) -> R:
        """Run one write step, ``stage(txn, databases, state, *args, **kwargs)``, in its own
        transaction under the write lock and publish what it staged; returns its result."""
        self._acquire_write()
        try:
            def body(txn: lmdb.Transaction[bytes]) -> tuple[Staged, R]:
                st = self.staging()
                return st, stage(txn, self._dbs, st, *args, **kwargs)

            st, result = self._write(body)
            self.publish(st)
            return result
        finally:
            self._lock.release_write()

    def staging(self) -> Staged:
        """Fresh per-transaction state (call with the write lock held)."""
        return Staged(self._seq, self._next_label, self.kind, len(self.index), time.time())

    def side_db(self, name: str) -> Any:
        """The LMDB handle of side table ``name``.

        :raises InvalidArgument: no side table has that name.
        """
        db = self._side.get(name)
        if db is None:
            raise InvalidArgument(f"tenant {self.tenant_id!r}: no side table {name!r} (there are {sorted(self._side)})")
        return db

    def publish(self, st: Staged) -> None:
        """Mirror a committed transaction into the shard's state, in-memory records, payload
        columns and index (call with the write lock held, right after the commit). An index
        that fails to take a change is rebuilt from LMDB."""
        if not st.changes:
            return
        self._seq = self._loaded_seq = st.seq
        self._next_label = st.next_label
        self._last_write = st.now
        self.memory_changed = True
        last = len(st.changes) - 1
        for i, (labels, vecs, recs, packed, removed) in enumerate(st.changes):
            upgrade = st.upgraded and i == last  # a switch to HNSW builds from LMDB's vectors once, after the last change
            self._hot.forget(removed)
            self._hot.remember(labels.tolist(), recs, packed)
            if self.filters.columns is not None:  # no call on a put without payload columns
                self.filters.update(labels, vecs, recs, removed, upgrade)
            try:
                if removed:
                    self.index.remove(np.asarray(removed, dtype=np.int64))
                if upgrade:
                    # from LMDB's vectors, the ones a reopen would build from: the exact index
                    # holds l2 rows re-centred in float32, one rounding away from them
                    with self.read_txn() as txn:
                        index = self.build_index("hnsw", *self.read_all_vectors(txn))
                    self.index = index
                    self.kind = "hnsw"
                    log.info("tenant %r: switched to an HNSW index at %d records", self.tenant_id, len(index))
                elif len(labels):  # big batches use every core (bulk loads); small ones stay on this thread
                    self.index.add(labels, vecs, num_threads=-1 if len(labels) >= 256 else 1)
                if self.kind == "hnsw":
                    self._dirty = True
            except Exception:  # LMDB committed; the index is now suspect: rebuild it from LMDB
                log.exception("tenant %r: index update failed after commit; rebuilding from LMDB", self.tenant_id)
                with self.read_txn() as txn:
                    self._rebuild_index(txn)
                self._dirty = self.kind == "hnsw"

    @contextmanager
    def transaction(self) -> Iterator[WriteTxn]:
        """One write transaction over the records and side tables (see ``txn.WriteTxn``):
        commits when the block ends normally, aborts when it raises.

        :raises ReadOnlyStore: a read-only shard.
        :raises TenantVecError: this thread already holds a transaction on the shard.
        """
        self._check_open()
        self._check_writable()
        self._acquire_write()
        try:
            tx = GrowingTxn(self._env, self.staging, f"tenant {self.tenant_id!r}", self.long_reads, atomic_steps=True)
            me = threading.get_ident()
            self._owners[me] = "a transaction"
            try:
                self._wm.begin(tx.run)  # journaled working memory first: the body orders after it
                wtx = WriteTxn(self, tx)
                yield wtx
                self._wm.end(tx.run, "wm" in wtx.sides)
                st = tx.commit()
            except BaseException:
                tx.abort()
                raise
            finally:
                del self._owners[me]
            self._wm.committed("wm" in wtx.sides)
            self.publish(st)
        finally:
            self._lock.release_write()

    @contextmanager
    def view(self) -> Iterator[ReadTxn]:
        """A read-only view (``txn.ReadTxn``) for the body, under the shared lock."""
        with self.reading() as txn:
            me = threading.get_ident()
            self._owners[me] = "a read view"
            try:
                yield ReadTxn(self, txn)
            finally:
                del self._owners[me]

    def check_not_in_txn(self) -> None:
        """Refuse a call from the thread that holds this shard's transaction or read view
        (it would wait for its own lock).

        :raises TenantVecError: this thread holds a transaction or a view on the shard.
        """
        what = self._owners.get(threading.get_ident())
        if what is not None:
            raise TenantVecError(
                f"tenant {self.tenant_id!r}: this thread holds {what} on the tenant; use its methods inside it"
            )

    def _acquire_write(self) -> None:
        """Take the write lock for a write (refusing a closed or deactivated shard)."""
        self.check_not_in_txn()
        self._lock.acquire_write()
        if self._closed or not self.active:
            self._lock.release_write()
            self._refuse()

    def payload(self, txn: lmdb.Transaction[bytes]) -> PayloadIndex:
        """The payload columns (:class:`~.records.Filters`), built from LMDB on first use after a load."""
        columns = self.filters.columns
        if columns is None:
            columns = self.filters.build(txn, self.databases, self.dim, self.metric, self.index.kind == "hnsw",
                                         self.meta(txn, b"next_label"))
            self.memory_changed = True
        return columns

    def filter_mask(self, txn: lmdb.Transaction[bytes], compiled: Compiled) -> np.ndarray:
        """Boolean mask over labels (length > every label) of live records matching."""
        return self.filters.mask(txn, self._dbs.recs, self.payload(txn), compiled, self._next_label)

    def matching(self, txn: lmdb.Transaction[bytes], compiled: Compiled | None) -> Iterator[tuple[bytes, list]]:
        """(label bytes, record) of each record matching ``compiled`` (None: every record), label order."""
        return self.filters.matching(txn, self._dbs.recs, None if compiled is None else self.filter_mask(txn, compiled))

    def _recs_count(self, txn: lmdb.Transaction[bytes]) -> int:
        return txn.stat(self._dbs.ids)["entries"]

    def lifecycle(self, op: str, counts: dict | None = None, *, active: bool | None = None, why: tuple = (None, None)) -> None:
        """Append lifecycle audit entry ``op`` (``why``: actor, reason), setting ``active`` when given."""
        self._check_writable()
        with self._lock.write():
            self._write(lambda txn: stage_lifecycle(txn, self._dbs, self.tenant_id, op, counts, active, why))
            self.active = self.active if active is None else active

    # ------------------------------------------------------------------ reads
    def query(self, queries: object, k: object, where: object = None, *,
              explain: bool = False) -> tuple[list[list[Hit]], bool, QueryPlan | None]:
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

    def _search(self, qs: np.ndarray, single: bool, k: int, compiled: Compiled | None,
                explain: bool) -> tuple[list[tuple[list[int], list[float]]], list[list[Hit]], QueryPlan | None]:
        """One search under the read lock: (labels and distances, hits, plan) per row."""
        self._begin_read()
        try:
            if single and compiled is None and not explain:  # the common query: no LMDB read
                plan, rows = None, [self.index.nearest(qs[0], k)]
            else:
                with self.read_txn() as txn:
                    matching = None
                    if compiled is not None:
                        matching = Matching(self.filter_mask(txn, compiled), self.payload(txn),
                                            partial(self.read_vectors, txn))
                    plan, results = plan_query(self.index, qs, k, matching, explain)
                rows = [(labels.tolist(), dists.tolist()) for labels, dists in results]
            hot = self._hot
            before = hot.nbytes
            try:
                out = [hot.hits(self.read_txn, self._dbs.recs, labels, dists) for labels, dists in rows]
            finally:
                if hot.nbytes != before:  # records read and kept: re-count (after, not before)
                    self.memory_changed = True
        finally:
            self._lock.release_read()
        return rows, out, plan

    def get(self, ids: object = None, where: object = None, limit: object = None, offset: object = 0,
            include_vectors: bool = False) -> list[Record]:
        """Records by id (in the order asked, unknown ids skipped) and/or by filter: the
        ``limit`` (None: all) after the first ``offset`` of them."""
        self._check_open()
        tid = self.tenant_id
        id_list = check_record_ids(ids, None, tid, unique=False) if ids is not None else None
        compiled = compile_where(where)
        start, stop = check_page(limit, offset, tid)
        with self.reading() as txn:
            matches = (self.matching(txn, compiled) if id_list is None
                       else by_ids(txn, self._dbs, tid, id_list, compiled[1] if compiled else None))
            return [to_record(txn, self._dbs.vecs, lb, rec, tid, self.dim, include_vectors)
                    for lb, rec in islice(matches, start, stop)]

    def count(self, where: object = None) -> int:
        """Number of live records (matching ``where`` when given)."""
        self._check_open()
        compiled = compile_where(where)
        with self.reading() as txn:
            return self._recs_count(txn) if compiled is None else int(np.count_nonzero(self.filter_mask(txn, compiled)))

    def files_bytes(self) -> int:
        """Bytes of the shard's files on disk (environment and index snapshot)."""
        return disk_bytes(self.path)

    def info(self, state: str) -> TenantInfo:
        """The tenant's :class:`~tenantvec.TenantInfo`, ``state`` as the manager knows it
        (a deactivated tenant is described too)."""
        with self.reading(inactive_ok=True) as txn:
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

    @property
    def memory_bytes(self) -> int:
        """Accounted resident bytes: the index, in-memory records, payload columns and working memory."""
        columns = self.filters.columns
        return self.index.memory_bytes + self._hot.nbytes + (columns.nbytes if columns is not None else 0) + self._wm.nbytes

    # ------------------------------------------------------------------ snapshots
    def flush(self) -> bool:
        """Write the HNSW snapshot if it is behind LMDB; returns whether one was written.

        The snapshot is written to ``index.hnsw.partial``, fsynced and renamed over
        ``index.hnsw``; only then is the checkpoint recorded in LMDB and the op log
        before it pruned, so a crash at any point leaves a loadable state.
        """
        if self.readonly or self._closed:
            return False
        with self._flush_lock, self._lock.write():
            self._wm.fold()
            if not self._dirty or self.kind != "hnsw":
                return False
            index, seq, dbs = self.index, self._seq, self._dbs
            assert isinstance(index, HnswIndex)
            ckpt = write_snapshot(index, self.path, seq)
            self._write(lambda txn: record_checkpoint(txn, dbs, ckpt))
            self._ckpt_seq, self._dirty = seq, False
            log.debug("tenant %r: wrote index snapshot at seq %d (%d bytes)", self.tenant_id, seq, ckpt["size"])
            return True

    def close(self) -> None:
        """Flush the snapshot (writers) and close the environment. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock.write():
                self._closed = True
                self._env.close()
                self._wm.close()

    def sync(self) -> None:
        """Force LMDB's buffers to disk (meaningful under ``durability="process"``)."""
        if not self.readonly and not self._closed:
            self._env.sync(True)

    # ------------------------------------------------------------------ maintenance steps
    @property
    def databases(self) -> Databases:
        """The environment's named databases (see :mod:`~.layout`)."""
        return self._dbs

    @property
    def closed(self) -> bool:
        """Whether the shard was closed (or, read-only, found dropped)."""
        return self._closed

    @property
    def loaded_seq(self) -> int:
        """The LMDB sequence number the in-memory index reflects."""
        return self._loaded_seq

    @contextmanager
    def reading(self, *, inactive_ok: bool = False) -> Iterator[lmdb.Transaction[bytes]]:
        """A read transaction under the shard's lock shared, as a call reads (a read-only
        shard catches up with the writer first).

        :raises TenantInactive: the tenant is deactivated, unless ``inactive_ok``.
        :raises StoreClosed, TenantNotFound: the shard is closed, or (read-only) dropped.
        """
        self._begin_read(inactive_ok=inactive_ok)
        try:
            with self.read_txn() as txn:
                yield txn
        finally:
            self._lock.release_read()

    @contextmanager
    def long_read(self) -> Iterator[lmdb.Transaction[bytes]]:
        """One read transaction held without the shard's lock, so that calls and writes
        go on meanwhile (an export, compaction's copy); growing the LMDB map waits for it
        to end. A read-only shard catches up with the writer first; a deactivated tenant
        is read too.

        :raises StoreClosed, TenantNotFound: the shard is closed, or (read-only) dropped.
        """
        with self.locked():  # journaled working memory into LMDB, where an export reads it
            self._wm.fold()
        self._begin_read(inactive_ok=True)
        self._lock.release_read()
        with self.long_reads.read(), self.read_txn() as txn:
            yield txn

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the shard's lock alone for the body: no call reads or writes meanwhile
        (compaction's catch-up and swap).

        :raises StoreClosed, TenantNotFound: the shard is closed, or (read-only) dropped.
        :raises TenantVecError: this thread holds the shard's transaction.
        """
        self.check_not_in_txn()
        with self._lock.write():
            self._check_open()
            yield

    def copy_env(self, path: str) -> None:
        """Copy the environment, free pages left out, into the empty directory ``path``."""
        self._env.copy(path, compact=True)

    def install(self, staged: str, index: ExactIndex | HnswIndex, seq: int) -> None:
        """Swap in a compaction's files from directory ``staged`` (an environment closed
        in this process, and the snapshot of an HNSW ``index``, checkpointed at ``seq``)
        and serve ``index``, built from them. The caller holds :meth:`locked`.

        On failure the files on disk are the old or the new ones, each consistent: they
        are reopened and the index rebuilt from them before the error propagates; if they
        cannot be reopened the shard is closed and ``gone`` (the manager loads it anew).
        """
        self._env.close()
        try:
            install_files(self.path, staged, with_snapshot=isinstance(index, HnswIndex))
        except BaseException:
            self._reopen_env()
            with self.read_txn() as txn:
                self._rebuild_index(txn)
            self._dirty = self.kind == "hnsw"
            raise
        self._reopen_env()
        if self.index.kind != index.kind:
            self.filters.drop()  # its int8 vector copy depends on the index kind
        self.index = index
        self._loaded_seq = self._seq
        self._ckpt_seq = seq if isinstance(index, HnswIndex) else -1
        self._dirty = False

    def load_index(self) -> str | None:
        """For a shard opened without its index: load it as :meth:`open` would, but
        without healing (verify). Returns why the index snapshot cannot serve (the index
        is then not loaded), or None."""
        with self._lock.write(), self.read_txn() as txn:
            return self._load_index(txn, heal=False)

    def rebuild_index(self) -> None:
        """Build the index anew from LMDB's vectors (repair, import); an HNSW index is
        then behind its snapshot until the next :meth:`flush`."""
        with self._lock.write(), self.read_txn() as txn:
            self._rebuild_index(txn)
            self._dirty = self.kind == "hnsw"

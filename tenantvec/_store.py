"""Public facade: :class:`Store` (root directory, writer lock, tenant lifecycle) and
:class:`Tenant` (one tenant's API, a capability for exactly one shard)."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

from ._engine import compact as _compact
from ._engine import transfer as _export
from ._engine import verify as _maintenance
from ._engine.compact import CompactReport
from ._engine.manager import ShardManager
from ._engine.shard import Shard, remove_leftovers
from ._engine.storage import RAW_STORAGE_ERRORS, storage_error, translated
from ._engine.transfer import ExportReport
from ._engine.verify import TenantSummary, VerifyReport
from ._fs import atomic_write, fsync_dir
from ._ids import HASHED_ID_FILE, check_tenant_id, tenant_dir_name, tenant_id_from_dir_name
from ._options import HnswParams, StoreOptions, check_dim, check_metric
from ._types import Hit, QueryPlan, Record, TenantInfo
from .errors import (
    DimensionMismatch,
    InvalidArgument,
    ReadOnlyStore,
    StoreClosed,
    StoreLocked,
    TenantExists,
    TenantNotFound,
    TenantVecError,
)

log = logging.getLogger("tenantvec")

STORE_FORMAT = 1
CONFIG_FILE = "tenantvec.json"
LOCK_FILE = "LOCK"
_LOCK_RECORD = 32  # bytes of the LOCK file: the holder's pid, padded
TENANTS_DIR = "tenants"
_DEFAULT_DIM = 384
_DEFAULT_METRIC = "cosine"


class Store:
    """An embedded multi-tenant vector store rooted at one directory.

    Every tenant lives in its own directory with its own LMDB environment and index
    file; tenants are loaded on first access and evicted least-recently-used under
    ``memory_budget`` and ``max_hot``. One process may open a root for writing;
    any number may open it with ``readonly=True``.

    >>> with Store("/tmp/mem", dim=4) as store:           # doctest: +SKIP
    ...     t = store.tenant("acme", create=True)
    ...     t.add([[0.1, 0.2, 0.3, 0.4]], ids=["m1"])

    :param dim: default dimension for new tenants (persisted; 384 for a new store).
    :param metric: default metric for new tenants: ``"cosine"``, ``"l2"`` or ``"ip"``.
    :param memory_budget: bytes of hot-tenant memory (indexes, in-memory records, filter
        columns), or a size string (``"1GiB"``).
    :param max_hot: most tenants hot at once (also capped by the open-file limit).
    :param readonly: open without the writer lock; writes raise :class:`ReadOnlyStore`.
    :param durability: ``"full"`` (fsync every commit; survives power loss) or
        ``"process"`` (no fsync; survives a process crash, not an OS crash).
    :param hnsw_threshold: a tenant switches from exact search to HNSW above this size.
    :param hnsw: HNSW parameters for new HNSW indexes.
    :param compact_threshold: a tenant is compacted by itself when this fraction of its
        index entries are tombstones.
    :param flush_interval: seconds between background writes of dirty index snapshots
        (0 disables; snapshots are always written on eviction and close).
    :raises StoreLocked: another process holds the writer lock.
    :raises DimensionMismatch: ``dim`` differs from the persisted default.
    :raises InvalidArgument: a bad option, or ``metric`` differs from the persisted one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dim: int | None = None,
        metric: str | None = None,
        memory_budget: int | str = "1GiB",
        max_hot: int = 256,
        readonly: bool = False,
        durability: Literal["full", "process"] = "full",
        hnsw_threshold: int = 2048,
        hnsw: HnswParams | None = None,
        compact_threshold: float = 0.5,
        flush_interval: float = 30.0,
    ) -> None:
        self._closed = True
        self.options = StoreOptions(
            dim=dim, metric=metric, memory_budget=memory_budget, max_hot=max_hot,
            readonly=readonly, durability=durability, hnsw_threshold=hnsw_threshold,
            hnsw=hnsw if hnsw is not None else HnswParams(), compact_threshold=compact_threshold,
            flush_interval=flush_interval,
        )
        self.path = Path(path)
        self.readonly = readonly
        self._lock_fd: int | None = None
        self._swept: set[str] = set()  # tenants checked for crash leftovers by this writer
        if readonly:
            if not (self.path / CONFIG_FILE).is_file():
                raise TenantNotFound(f"no tenantvec store at {str(self.path)!r} (missing {CONFIG_FILE})")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
        try:
            self._load_config()
            if not readonly:
                (self.path / TENANTS_DIR).mkdir(exist_ok=True)
                self._clean_leftovers()
        except BaseException:
            self._release_lock()
            raise
        self._manager = ShardManager(
            self._open_shard, max_hot=self.options.max_hot, memory_budget=self.options.memory_budget
        )
        if not readonly and self.options.flush_interval:
            self._manager.start_flusher(self.options.flush_interval)
        self._closed = False

    # ------------------------------------------------------------------ lock & config
    def _acquire_lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, _LOCK_RECORD, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"store {str(self.path)!r} is locked by pid {holder} ({self.path / LOCK_FILE}); "
                "open it with readonly=True to read while that process writes"
            ) from None
        # The holder's pid, padded to a fixed width: overwriting in place avoids a
        # truncate, which costs ~1 ms (a metadata commit) on journaling filesystems.
        os.pwrite(fd, f"{os.getpid()}\n".ljust(_LOCK_RECORD).encode(), 0)
        if os.fstat(fd).st_size > _LOCK_RECORD:
            os.ftruncate(fd, _LOCK_RECORD)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load_config(self) -> None:
        cfg_path = self.path / CONFIG_FILE
        opts = self.options
        if cfg_path.is_file():
            try:
                cfg = json.loads(cfg_path.read_text())
                fmt, dim, metric = cfg["format"], cfg["dim"], cfg["metric"]
            except (ValueError, KeyError, TypeError) as exc:
                raise TenantVecError(f"{cfg_path} is not a valid tenantvec config: {exc}") from exc
            if fmt != STORE_FORMAT:
                raise TenantVecError(f"store format {fmt!r} in {cfg_path} is not supported (expected {STORE_FORMAT})")
            if opts.dim is not None and opts.dim != dim:
                raise DimensionMismatch(
                    f"store {str(self.path)!r} has default dim {dim}; opened with dim={opts.dim} "
                    "(omit dim to use the stored one)"
                )
            if opts.metric is not None and opts.metric != metric:
                raise InvalidArgument(
                    f"store {str(self.path)!r} has default metric {metric!r}; opened with metric={opts.metric!r}"
                )
            self.dim, self.metric = int(dim), str(metric)
        else:
            self.dim = opts.dim if opts.dim is not None else _DEFAULT_DIM
            self.metric = opts.metric if opts.metric is not None else _DEFAULT_METRIC
            cfg = {"format": STORE_FORMAT, "dim": self.dim, "metric": self.metric}
            atomic_write(cfg_path, json.dumps(cfg, indent=2).encode() + b"\n")

    def _clean_leftovers(self) -> None:
        tdir = self.path / TENANTS_DIR
        for entry in os.scandir(tdir):
            if entry.name.startswith((".tmp-", ".drop-")):
                log.info("removing leftover %s from an interrupted create/drop", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"store {str(self.path)!r} is closed")

    def _check_writable(self, what: str) -> None:
        if self.readonly:
            raise ReadOnlyStore(f"store {str(self.path)!r} is open read-only; cannot {what}")

    def _tenant_path(self, tenant_id: str) -> Path:
        return self.path / TENANTS_DIR / tenant_dir_name(tenant_id)

    def _open_shard(self, tenant_id: str) -> Shard:
        path = self._tenant_path(tenant_id)
        if not (path / "data.mdb").is_file():
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist in {str(self.path)!r}")
        if not self.readonly and tenant_id not in self._swept:  # only a crashed writer leaves them
            remove_leftovers(str(path))  # the tenant is cold: nothing of this writer compacts it
            self._swept.add(tenant_id)
        with translated(f"tenant {tenant_id!r}", str(path)):
            return Shard.open(str(path), tenant_id, self.options, self.readonly)

    # ------------------------------------------------------------------ tenants
    def create_tenant(self, tenant_id: str, *, dim: int | None = None, metric: str | None = None) -> Tenant:
        """Create a tenant (its own directory, LMDB environment and index).

        :param dim: the tenant's dimension (default: the store's).
        :param metric: the tenant's metric (default: the store's).
        :raises TenantExists: the tenant already exists.
        :raises InvalidTenantId: the id breaks the tenant id rules.
        :raises ReadOnlyStore: the store is read-only.
        """
        self._check_open()
        check_tenant_id(tenant_id)
        dim = self.dim if dim is None else check_dim(dim)
        metric = self.metric if metric is None else check_metric(metric)
        self._check_writable(f"create tenant {tenant_id!r}")
        final = self._tenant_path(tenant_id)
        if final.exists():
            raise TenantExists(f"tenant {tenant_id!r} already exists in {str(self.path)!r}")
        tmp = self.path / TENANTS_DIR / f".tmp-{uuid.uuid4().hex}"
        with translated(f"tenant {tenant_id!r}: cannot create it", str(tmp.parent)):
            tmp.mkdir()
            try:
                if final.name.startswith("~"):
                    (tmp / HASHED_ID_FILE).write_text(tenant_id, encoding="utf-8")
                incarnation = Shard.create(str(tmp), tenant_id, dim, metric, self.options)
                try:
                    os.rename(tmp, final)  # atomic; fails if another creator won
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    raise TenantExists(f"tenant {tenant_id!r} already exists in {str(self.path)!r}") from None
                fsync_dir(final.parent)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return Tenant(self, tenant_id, incarnation)

    def tenant(self, tenant_id: str, *, create: bool = False, dim: int | None = None,
               metric: str | None = None) -> Tenant:
        """A handle on one tenant.

        :param create: create the tenant if it does not exist.
        :param dim: with ``create``, the new tenant's dimension; an existing tenant must match.
        :param metric: with ``create``, the new tenant's metric; an existing tenant must match.
        :raises TenantNotFound: the tenant does not exist and ``create`` is false.
        :raises DimensionMismatch: an explicit ``dim`` differs from the existing tenant's.
        :raises InvalidArgument: an explicit ``metric`` differs from the existing tenant's.
        :raises InvalidTenantId: the id breaks the tenant id rules.
        """
        self._check_open()
        check_tenant_id(tenant_id)
        if create and not self.has_tenant(tenant_id):
            try:
                return self.create_tenant(tenant_id, dim=dim, metric=metric)
            except TenantExists:
                pass
        # Loads the tenant (as its first call would) to bind the handle to this incarnation.
        with translated(f"tenant {tenant_id!r}", str(self._tenant_path(tenant_id))):
            shard = self._manager.pin(tenant_id)
        try:
            if dim is not None and dim != shard.dim:
                raise DimensionMismatch(f"tenant {tenant_id!r} has dim {shard.dim}; asked for dim={dim}")
            if metric is not None and metric != shard.metric:
                raise InvalidArgument(f"tenant {tenant_id!r} has metric {shard.metric!r}; asked for metric={metric!r}")
            return Tenant(self, tenant_id, shard.uuid)
        finally:
            self._manager.unpin(shard)

    def has_tenant(self, tenant_id: str) -> bool:
        """Whether the tenant exists. :raises InvalidTenantId: for a malformed id."""
        self._check_open()
        check_tenant_id(tenant_id)
        return (self._tenant_path(tenant_id) / "data.mdb").is_file()

    def tenants(self) -> list[str]:
        """Every tenant id, sorted."""
        self._check_open()
        out = []
        try:
            entries = list(os.scandir(self.path / TENANTS_DIR))
        except FileNotFoundError:
            return []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if name.startswith("~"):
                try:
                    tid = (Path(entry.path) / HASHED_ID_FILE).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):  # missing or damaged: unlisted (verify reports it)
                    continue
                if tenant_dir_name(tid) != name:
                    continue
            else:
                tid = tenant_id_from_dir_name(name)
            if tid is not None:
                out.append(tid)
        return sorted(out)

    def drop_tenant(self, tenant_id: str) -> None:
        """Remove a tenant and all its files. Irrevocable; waits for running calls on it.

        :raises TenantNotFound: the tenant does not exist.
        :raises ReadOnlyStore: the store is read-only.
        """
        self._check_open()
        check_tenant_id(tenant_id)
        self._check_writable(f"drop tenant {tenant_id!r}")
        path = self._tenant_path(tenant_id)
        grave = self.path / TENANTS_DIR / f".drop-{uuid.uuid4().hex}"
        # Atomic with respect to every other call on the tenant: calls already running
        # finish first, calls arriving meanwhile wait and then find it gone.
        with self._manager.exclusive(tenant_id):
            if not path.exists():
                raise TenantNotFound(f"tenant {tenant_id!r} does not exist in {str(self.path)!r}")
            with translated(f"tenant {tenant_id!r}: cannot drop it", str(path)):
                os.rename(path, grave)
                fsync_dir(path.parent)
        shutil.rmtree(grave, ignore_errors=True)
        log.info("dropped tenant %r", tenant_id)

    def _set_active(self, tenant_id: str, active: bool) -> None:
        self._check_open()
        check_tenant_id(tenant_id)
        self._check_writable("change a tenant's active state")
        shard = self._manager.pin(tenant_id)
        try:
            with translated(f"tenant {tenant_id!r}", shard.path):
                shard.set_active(active)
        finally:
            self._manager.unpin(shard)

    def deactivate(self, tenant_id: str) -> None:
        """Make a tenant refuse calls with :class:`TenantInactive` until :meth:`activate`."""
        self._set_active(tenant_id, False)

    def activate(self, tenant_id: str) -> None:
        """Re-enable a tenant deactivated with :meth:`deactivate`."""
        self._set_active(tenant_id, True)

    # ------------------------------------------------------------------ store-wide
    def stats(self) -> dict[str, Any]:
        """Hot/cold counts, memory use against the budget, loads, evictions, hit rate."""
        self._check_open()
        st = self._manager.stats()
        total = len(self.tenants())
        st["tenants"] = total
        st["cold"] = max(total - st["hot"], 0)
        return st

    def flush(self) -> None:
        """Write every dirty index snapshot and sync LMDB (hot tenants)."""
        self._check_open()
        self._manager.flush()

    # ------------------------------------------------------------------ maintenance
    def tenant_summaries(self, tenant_ids: Sequence[str] | None = None) -> list[TenantSummary]:
        """Count, state (hot/cold/inactive, or corrupt), dim, metric, index kind, bytes on
        disk and last write of each tenant (default: all), without loading cold ones."""
        self._check_open()
        ids = self.tenants() if tenant_ids is None else list(tenant_ids)
        return [_maintenance.tenant_summary(self, tid) for tid in ids]

    def verify(self, tenant_id: str, *, fix: bool = False) -> VerifyReport:
        """Check a tenant's files (identity, records, vectors, id map, index snapshot and
        contents); with ``fix``, repair what LMDB allows and report what was done.

        The tenant is unloaded while it is checked. ``report.ok`` is true when no problem
        remains.

        :raises TenantNotFound: the tenant does not exist.
        :raises ReadOnlyStore: ``fix`` on a read-only store.
        """
        self._check_open()
        check_tenant_id(tenant_id)
        with translated(f"tenant {tenant_id!r}: verify", str(self._tenant_path(tenant_id))):
            return _maintenance.verify_tenant(self, tenant_id, fix=fix)

    def compact(self, tenant_id: str, *, dry_run: bool = False) -> CompactReport:
        """Rebuild a tenant's index without tombstones and rewrite its LMDB environment
        compactly (see :meth:`Tenant.compact`); ``dry_run`` only estimates the result.

        :raises TenantNotFound: the tenant does not exist.
        :raises ReadOnlyStore: the store is read-only (unless ``dry_run``).
        """
        self._check_open()
        check_tenant_id(tenant_id)
        with translated(f"tenant {tenant_id!r}: compact", str(self._tenant_path(tenant_id))):
            return _compact.compact_tenant(self, tenant_id, dry_run=dry_run)

    def export_tenant(self, tenant_id: str, path: str | os.PathLike[str], *,
                      progress: Callable[[int, int], None] | None = None) -> ExportReport:
        """Write one tenant to a portable, checksummed file (see :mod:`tenantvec._engine.transfer`).

        ``progress(done, total)`` is called as records are written, while the export
        holds its read of the tenant: it must not drop, verify or compact the tenant being
        exported (they wait for the export, which waits for the callback); a write that
        grows the tenant's LMDB map waits likewise.

        :raises TenantNotFound: the tenant does not exist.
        """
        self._check_open()
        where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
        with translated(f"tenant {tenant_id!r}: export", where):
            return _export.export_tenant(self, tenant_id, path, progress=progress)

    def import_tenant(self, tenant_id: str, path: str | os.PathLike[str], *,
                      progress: Callable[[int, int], None] | None = None) -> Tenant:
        """Create tenant ``tenant_id`` from a file written by :meth:`export_tenant`.

        Records keep their ids and timestamps. The file's checksum is verified first; a
        damaged file creates nothing.

        :raises CorruptExport: the file is damaged or not an export.
        :raises TenantExists: the tenant exists already.
        :raises ReadOnlyStore: the store is read-only.
        """
        with translated(f"tenant {tenant_id!r}: import", str(self.path / TENANTS_DIR)):
            _export.import_tenant(self, tenant_id, path, progress=progress)
        return self.tenant(tenant_id)

    def close(self) -> None:
        """Flush snapshots, close every tenant, release the writer lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._manager.close()
        finally:
            self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("readonly" if self.readonly else "open")
        return f"<tenantvec.Store {str(self.path)!r} {state} dim={self.dim} metric={self.metric!r}>"


def open(path: str | os.PathLike[str], **options: Any) -> Store:
    """Open (or create) a store; same arguments as :class:`Store`."""
    return Store(path, **options)


class Tenant:
    """One tenant's memory. Obtain it from :meth:`Store.tenant` or :meth:`Store.create_tenant`.

    A handle is bound to one incarnation of the tenant: if the tenant is dropped (and
    perhaps re-created), calls raise :class:`TenantNotFound`.
    """

    __slots__ = ("_id", "_store", "_uuid")

    def __init__(self, store: Store, tenant_id: str, incarnation: str) -> None:
        self._store = store
        self._id = tenant_id
        self._uuid = incarnation

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<tenantvec.Tenant {self._id!r}>"

    def _pin(self) -> Shard:
        store = self._store
        store._check_open()
        try:
            shard = store._manager.pin(self._id)
        except RAW_STORAGE_ERRORS as exc:  # the path is computed only here: pins are the hot path
            err = storage_error(exc, f"tenant {self._id!r}", str(store._tenant_path(self._id)))
            if err is exc:
                raise
            raise err from exc
        except TenantNotFound:
            raise TenantNotFound(f"tenant {self._id!r} was dropped; this handle refers to the old tenant") from None
        if shard.uuid != self._uuid:
            store._manager.unpin(shard)
            raise TenantNotFound(f"tenant {self._id!r} was dropped; this handle refers to the old tenant")
        return shard  # a deactivated tenant is refused by the shard, under its lock

    def _call(self, *, wrote: bool = False) -> _Call:
        """``with self._call() as shard:`` pins this tenant's shard for one call, unpins
        it after, and turns raw storage errors into :class:`TenantVecError`\\ s."""
        return _Call(self, self._pin(), wrote)

    def add(
        self,
        vectors: Any,
        ids: Sequence[str] | None = None,
        documents: Sequence[str | None] | None = None,
        metadata: Sequence[dict[str, Any] | None] | dict[str, Any] | None = None,
    ) -> list[str]:
        """Add new records; returns their ids (generated uuid4 hex where ``ids`` is None).

        The call returns only after its LMDB transaction committed.

        :raises DuplicateId: an id exists already or appears twice in the call.
        :raises InvalidVector, DimensionMismatch: malformed vectors.
        :raises InvalidArgument: malformed ids, documents or metadata.
        """
        with self._call(wrote=True) as shard:
            return shard.put(vectors, ids, documents, metadata, upsert=False)

    def upsert(
        self,
        vectors: Any,
        ids: Sequence[str],
        documents: Sequence[str | None] | None = None,
        metadata: Sequence[dict[str, Any] | None] | dict[str, Any] | None = None,
    ) -> list[str]:
        """Insert or wholly replace records (vector, metadata, document); ``created_at`` is kept."""
        with self._call(wrote=True) as shard:
            out = shard.put(vectors, ids, documents, metadata, upsert=True)
            _compact.maybe_compact(shard)
            return out

    @overload
    def query(self, vector: Any, k: int = 10, where: dict | None = None, *, explain: Literal[False] = False) -> Any: ...
    @overload
    def query(self, vector: Any, k: int = 10, where: dict | None = None, *, explain: Literal[True]) -> tuple[Any, QueryPlan]: ...

    def query(self, vector: Any, k: int = 10, where: dict | None = None, *, explain: bool = False) -> Any:
        """The ``k`` nearest records (matching ``where``), nearest first.

        A 1-D vector gives ``list[Hit]``; a 2-D array gives ``list[list[Hit]]``. Returns
        ``min(k, matching records)`` hits. With ``explain=True`` returns ``(hits, plan)``.

        :raises InvalidVector, DimensionMismatch: malformed query vector.
        :raises InvalidFilter: malformed ``where`` (nothing is searched).
        :raises InvalidArgument: ``k`` is not a positive integer.
        """
        with self._call() as shard:
            rows, single, plan = shard.query(vector, k, where, explain=explain)
        hits: list[Hit] | list[list[Hit]] = rows[0] if single else rows
        return (hits, plan) if explain else hits

    def get(
        self,
        ids: Sequence[str] | None = None,
        where: dict | None = None,
        limit: int | None = None,
        *,
        offset: int = 0,
        include_vectors: bool = False,
    ) -> list[Record]:
        """Records by id (in the order asked; unknown ids skipped) and/or by ``where``.

        Without ids, records come in insertion order (an upsert moves a record to the
        end), so ``offset``/``limit`` page deterministically.
        """
        with self._call() as shard:
            return shard.get(ids, where, limit, offset, include_vectors)

    def delete(self, ids: Sequence[str] | None = None, where: dict | None = None) -> int:
        """Delete records by id and/or ``where``; returns the number deleted.

        When tombstones then pass the store's ``compact_threshold``, the tenant is
        compacted before the call returns (queries keep being served meanwhile).

        :raises InvalidArgument: neither ``ids`` nor ``where`` given (``where={}`` deletes all).
        """
        with self._call(wrote=True) as shard:
            n = shard.delete(ids, where)
            _compact.maybe_compact(shard)
            return n

    def count(self, where: dict | None = None) -> int:
        """Number of live records (matching ``where`` when given)."""
        with self._call() as shard:
            return shard.count(where)

    def info(self) -> TenantInfo:
        """Count, dim, metric, state, index kind, tombstones, bytes on disk and memory."""
        with self._call() as shard:
            return shard.info("hot" if shard.active else "inactive")

    def flush(self) -> bool:
        """Write this tenant's index snapshot now if it is behind; returns whether it wrote."""
        with self._call() as shard:
            return shard.flush()

    def compact(self) -> CompactReport:
        """Rebuild the index without tombstones and rewrite the LMDB environment compactly.

        Keeps serving queries and writes while the new index is built from an LMDB
        snapshot; only the catch-up and the file swap block writers briefly. A tenant at or
        below ``hnsw_threshold`` records switches back to the exact index. Returns disk
        and memory before and after.

        :raises ReadOnlyStore: the store is read-only.
        """
        self._store._check_writable(f"compact tenant {self._id!r}")
        with self._call(wrote=True) as shard:
            report = _compact.compact_shard(shard)
        assert report is not None  # compact_shard waits for a running compaction
        return report


class _Call:
    """One call's pin on a tenant's shard (see :meth:`Tenant._call`)."""

    __slots__ = ("_shard", "_tenant", "_wrote")

    def __init__(self, tenant: Tenant, shard: Shard, wrote: bool) -> None:
        self._tenant, self._shard, self._wrote = tenant, shard, wrote

    def __enter__(self) -> Shard:
        return self._shard

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        shard = self._shard
        self._tenant._store._manager.unpin(shard, wrote=self._wrote)
        if exc is not None:
            err = storage_error(exc, f"tenant {shard.tenant_id!r}", shard.path)
            if err is not exc:
                raise err from exc

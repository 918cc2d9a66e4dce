"""Public facade: :class:`Store` (root directory, writer lock, tenant lifecycle).

The storage engine (:mod:`tenantvec._engine`, with lmdb and hnswlib) is imported when a
store is opened, and the maintenance operations when first used: importing the facade
(the CLI, a pytest plugin, an integration) loads no storage library.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from ._fs import atomic_write, fsync_dir, staged_directory
from ._ids import HASHED_ID_FILE, check_tenant_id, tenant_dir_name, tenant_id_from_dir_name
from ._options import (
    DEFAULT_COMPACT_THRESHOLD,
    DEFAULT_DIM,
    DEFAULT_DURABILITY,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_HNSW_THRESHOLD,
    DEFAULT_MAX_HOT,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_METRIC,
    HnswParams,
    StoreOptions,
    check_dim,
    check_metric,
)
from ._tenant import Tenant, storage_error
from ._types import StoreStats
from .errors import (
    DimensionMismatch,
    InvalidArgument,
    ReadOnlyStore,
    StoreClosed,
    StoreLocked,
    StoreNotFound,
    TenantExists,
    TenantNotFound,
    TenantVecError,
)

if TYPE_CHECKING:
    from ._engine.compact import CompactReport
    from ._engine.listing import TenantSummary
    from ._engine.manager import ShardManager
    from ._engine.shard import Shard
    from ._engine.transfer import ExportReport
    from ._engine.verify import VerifyReport

log = logging.getLogger("tenantvec")

STORE_FORMAT = 1
CONFIG_FILE = "tenantvec.json"
LOCK_FILE = "LOCK"
_LOCK_RECORD = 32  # bytes of the LOCK file: the holder's pid, padded
TENANTS_DIR = "tenants"


def translated(what: str, path: str) -> AbstractContextManager[None]:
    """``with translated(what, path):`` runs its body with raw storage errors turned into
    :class:`TenantVecError`\\ s (:func:`tenantvec._engine.storage.translated`, imported on
    use, see the module docstring)."""
    from ._engine.storage import translated as engine_translated

    return engine_translated(what, path)


class Store:
    """An embedded multi-tenant vector store rooted at one directory.

    Every tenant lives in its own directory with its own LMDB environment and index
    file; tenants are loaded on first access and evicted least-recently-used under
    ``memory_budget`` and ``max_hot``. One process may open a root for writing;
    any number may open it with ``readonly=True``.

    >>> with Store("/tmp/mem", dim=4) as store:           # doctest: +SKIP
    ...     t = store.tenant("acme", create=True)
    ...     t.add([[0.1, 0.2, 0.3, 0.4]], ids=["m1"])

    ``tenantvec.open`` is this class.

    :param dim: default dimension for new tenants (persisted; 384 for a new store).
    :param metric: default metric for new tenants: ``"cosine"`` (default for a new
        store), ``"l2"`` or ``"ip"``.
    :param memory_budget: bytes of hot-tenant memory (indexes, in-memory records, filter
        columns), or a size string (``"512MiB"``); default 1 GiB.
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
    :raises StoreNotFound: ``readonly`` and there is no store at ``path``.
    :raises DimensionMismatch: ``dim`` differs from the persisted default.
    :raises InvalidArgument: a bad option, or ``metric`` differs from the persisted one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dim: int | None = None,
        metric: str | None = None,
        memory_budget: int | str = DEFAULT_MEMORY_BUDGET,
        max_hot: int = DEFAULT_MAX_HOT,
        readonly: bool = False,
        durability: Literal["full", "process"] = DEFAULT_DURABILITY,
        hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD,
        hnsw: HnswParams | None = None,
        compact_threshold: float = DEFAULT_COMPACT_THRESHOLD,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self._closed = True
        self.options = StoreOptions(  # validates every option; parses a memory_budget size string
            dim=dim, metric=metric, memory_budget=cast(int, memory_budget), max_hot=max_hot,
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
                raise StoreNotFound(f"no tenantvec store at {str(self.path)!r} (missing {CONFIG_FILE})",
                                    path=str(self.path))
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
        from ._engine.manager import ShardManager  # the engine: lmdb, hnswlib (see module docstring)

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
                "open it with readonly=True to read while that process writes",
                path=str(self.path / LOCK_FILE),
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
                raise TenantVecError(f"{cfg_path} is not a valid tenantvec config: {exc}", path=str(cfg_path)) from exc
            if fmt != STORE_FORMAT:
                raise TenantVecError(f"store format {fmt!r} in {cfg_path} is not supported (expected {STORE_FORMAT})",
                                     path=str(cfg_path))
            if opts.dim is not None and opts.dim != dim:
                raise DimensionMismatch(
                    f"store {str(self.path)!r} has default dim {dim}; opened with dim={opts.dim} "
                    "(omit dim to use the stored one)", path=str(cfg_path)
                )
            if opts.metric is not None and opts.metric != metric:
                raise InvalidArgument(
                    f"store {str(self.path)!r} has default metric {metric!r}; opened with metric={opts.metric!r}",
                    path=str(cfg_path),
                )
            self.dim, self.metric = int(dim), str(metric)
        else:
            self.dim = opts.dim if opts.dim is not None else DEFAULT_DIM
            self.metric = opts.metric if opts.metric is not None else DEFAULT_METRIC
            cfg = {"format": STORE_FORMAT, "dim": self.dim, "metric": self.metric}
            atomic_write(cfg_path, json.dumps(cfg, indent=2).encode() + b"\n")

    def _clean_leftovers(self) -> None:
        tdir = self.path / TENANTS_DIR
        for entry in os.scandir(tdir):
            if entry.name.startswith((".tmp-", ".drop-")):
                log.info("removing leftover %s from an interrupted create/drop", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)

    # ------------------------------------------------------------------ for Tenant handles
    # Public names, but internal: what a Tenant handle (tenantvec._tenant) needs of its store.
    @property
    def manager(self) -> ShardManager:
        """The store's hot/cold shard manager (internal: Tenant handles pin shards in it)."""
        return self._manager

    def check_open(self) -> None:
        """:raises StoreClosed: the store was closed."""
        if self._closed:
            raise StoreClosed(f"store {str(self.path)!r} is closed", path=str(self.path))

    def check_writable(self, what: str) -> None:
        """:raises ReadOnlyStore: the store is read-only (``what`` names the refused action)."""
        if self.readonly:
            raise ReadOnlyStore(f"store {str(self.path)!r} is open read-only; cannot {what}", path=str(self.path))

    def tenant_path(self, tenant_id: str) -> Path:
        """The directory that holds (or would hold) a tenant's files."""
        return self.path / TENANTS_DIR / tenant_dir_name(tenant_id)

    # ------------------------------------------------------------------ helpers
    def _not_found(self, tenant_id: str) -> TenantNotFound:
        return TenantNotFound(f"tenant {tenant_id!r} does not exist in {str(self.path)!r}",
                              tenant=tenant_id, path=str(self.path))

    def _pin(self, tenant_id: str) -> Shard:
        """Pin a tenant's shard (loading it), raw storage errors translated."""
        try:
            return self._manager.pin(tenant_id)
        except Exception as exc:  # the path is computed only here: Store.tenant is a hot path
            err = storage_error(exc, f"tenant {tenant_id!r}", str(self.tenant_path(tenant_id)))
            if err is exc:
                raise
            raise err from exc

    def _open_shard(self, tenant_id: str) -> Shard:
        from ._engine.shard import Shard
        from ._engine.shardfiles import remove_leftovers

        path = self.tenant_path(tenant_id)
        if not (path / "data.mdb").is_file():
            raise self._not_found(tenant_id)
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
        from ._engine.shardfiles import create_shard  # the engine is imported when a store opens

        self.check_open()
        check_tenant_id(tenant_id)
        dim = self.dim if dim is None else check_dim(dim)
        metric = self.metric if metric is None else check_metric(metric)
        self.check_writable(f"create tenant {tenant_id!r}")
        final = self.tenant_path(tenant_id)

        def exists() -> TenantExists:
            return TenantExists(f"tenant {tenant_id!r} already exists in {str(self.path)!r}", tenant=tenant_id,
                                path=str(self.path))

        if final.exists():
            raise exists()
        parent = self.path / TENANTS_DIR
        with (
            translated(f"tenant {tenant_id!r}: cannot create it", str(parent)),
            staged_directory(parent, final, exists) as tmp,  # renamed into place whole, or removed
        ):
            incarnation = create_shard(tmp, tenant_id, dim, metric, self.options)
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
        self.check_open()
        check_tenant_id(tenant_id)
        if create and not self.has_tenant(tenant_id):
            try:
                return self.create_tenant(tenant_id, dim=dim, metric=metric)
            except TenantExists:
                pass
        # Loads the tenant (as its first call would) to bind the handle to this incarnation.
        shard = self._pin(tenant_id)
        try:
            if dim is not None and dim != shard.dim:
                raise DimensionMismatch(f"tenant {tenant_id!r} has dim {shard.dim}; asked for dim={dim}",
                                        tenant=tenant_id)
            if metric is not None and metric != shard.metric:
                raise InvalidArgument(f"tenant {tenant_id!r} has metric {shard.metric!r}; asked for metric={metric!r}",
                                      tenant=tenant_id)
            return Tenant(self, tenant_id, shard.uuid)
        finally:
            self._manager.unpin(shard)

    def has_tenant(self, tenant_id: str) -> bool:
        """Whether the tenant exists. :raises InvalidTenantId: for a malformed id."""
        self.check_open()
        check_tenant_id(tenant_id)
        return (self.tenant_path(tenant_id) / "data.mdb").is_file()

    def tenants(self) -> list[str]:
        """Every tenant id, sorted."""
        self.check_open()
        out = []
        try:
            entries = list(os.scandir(self.path / TENANTS_DIR))
        except FileNotFoundError:
            return []
        for entry in entries:
            name = entry.name
            tid: str | None
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
        self.check_open()
        check_tenant_id(tenant_id)
        self.check_writable(f"drop tenant {tenant_id!r}")
        path = self.tenant_path(tenant_id)
        grave = self.path / TENANTS_DIR / f".drop-{uuid.uuid4().hex}"
        # Atomic with respect to every other call on the tenant: calls already running
        # finish first, calls arriving meanwhile wait and then find it gone.
        with self._manager.exclusive(tenant_id):
            if not path.exists():
                raise self._not_found(tenant_id)
            with translated(f"tenant {tenant_id!r}: cannot drop it", str(path)):
                os.rename(path, grave)
                fsync_dir(path.parent)
        shutil.rmtree(grave, ignore_errors=True)
        log.info("dropped tenant %r", tenant_id)

    def _set_active(self, tenant_id: str, active: bool, actor: str | None, reason: str | None) -> None:
        """Persist a tenant's active flag with its audit entry (``activate``/``deactivate``),
        in one transaction."""
        self.check_open()
        check_tenant_id(tenant_id)
        self.check_writable("change a tenant's active state")
        for what, v in (("actor", actor), ("reason", reason)):
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise InvalidArgument(f"tenant {tenant_id!r}: {what} must be a non-empty str, got {v!r:.60}")
        shard = self._pin(tenant_id)
        try:
            with translated(f"tenant {tenant_id!r}", shard.path):
                shard.lifecycle("activate" if active else "deactivate", active=active, why=(actor, reason))
        finally:
            self._manager.unpin(shard)

    def deactivate(self, tenant_id: str, *, actor: str | None = None, reason: str | None = None) -> None:
        """Make a tenant refuse calls with :class:`TenantInactive` until :meth:`activate`
        (recorded in its audit log, with ``actor`` and ``reason`` when given; deactivating
        an inactive tenant records the entry again)."""
        self._set_active(tenant_id, False, actor, reason)

    def activate(self, tenant_id: str, *, actor: str | None = None, reason: str | None = None) -> None:
        """Re-enable a tenant deactivated with :meth:`deactivate` (recorded in its audit log)."""
        self._set_active(tenant_id, True, actor, reason)

    # ------------------------------------------------------------------ store-wide
    def stats(self) -> StoreStats:
        """Tenants (hot and cold), loads, evictions, hit rate and hot memory against the
        budget, as this process sees them."""
        self.check_open()
        st = self._manager.stats()
        total = len(self.tenants())
        return StoreStats(
            tenants=total, hot=st["hot"], cold=max(total - st["hot"], 0), loads=st["loads"],
            evictions=st["evictions"], hits=st["hits"], misses=st["misses"], hit_rate=st["hit_rate"],
            memory_bytes=st["memory_bytes"], memory_budget=st["memory_budget"], max_hot=st["max_hot"],
        )

    def flush(self) -> None:
        """Write every dirty index snapshot and sync LMDB (hot tenants)."""
        self.check_open()
        self._manager.flush()

    # ------------------------------------------------------------------ maintenance
    def tenant_summaries(self, tenant_ids: Sequence[str] | None = None) -> list[TenantSummary]:
        """Count, state (hot/cold/inactive, or corrupt), dim, metric, index kind, bytes on
        disk and last write of each tenant (default: all), without loading cold ones.

        :raises TenantNotFound: a tenant named in ``tenant_ids`` does not exist.
        """
        from ._engine import listing as _listing

        self.check_open()
        ids = self.tenants() if tenant_ids is None else list(tenant_ids)
        with translated("listing tenants", str(self.path / TENANTS_DIR)):
            return [_listing.tenant_summary(self._manager, str(self.tenant_path(check_tenant_id(tid))), tid)
                    for tid in ids]

    def verify(self, tenant_id: str, *, fix: bool = False) -> VerifyReport:
        """Check a tenant's files (identity, records, vectors, id map, index snapshot and
        contents); with ``fix``, repair what LMDB allows and report what was done.

        The tenant is unloaded while it is checked. ``report.ok`` is true when no problem
        remains.

        :raises TenantNotFound: the tenant does not exist.
        :raises ReadOnlyStore: ``fix`` on a read-only store.
        """
        from ._engine import verify as _maintenance

        self.check_open()
        check_tenant_id(tenant_id)
        with translated(f"tenant {tenant_id!r}: verify", str(self.tenant_path(tenant_id))):
            return _maintenance.verify_tenant(self._manager, str(self.tenant_path(tenant_id)), tenant_id, self.options,
                                              fix=fix)

    def compact(self, tenant_id: str, *, dry_run: bool = False) -> CompactReport:
        """Rebuild a tenant's index without tombstones and rewrite its LMDB environment
        compactly (see :meth:`Tenant.compact`); ``dry_run`` only estimates the result.

        :raises TenantNotFound: the tenant does not exist.
        :raises ReadOnlyStore: the store is read-only (unless ``dry_run``).
        """
        from ._engine import compact as _compact

        self.check_open()
        check_tenant_id(tenant_id)
        with translated(f"tenant {tenant_id!r}: compact", str(self.tenant_path(tenant_id))):
            return _compact.compact_tenant(self._manager, str(self.tenant_path(tenant_id)), tenant_id, self.options,
                                           dry_run=dry_run)

    def export_tenant(self, tenant_id: str, path: str | os.PathLike[str], *,
                      progress: Callable[[int, int], None] | None = None) -> ExportReport:
        """Write one tenant to a portable, checksummed file (see :mod:`tenantvec._engine.transfer`).

        ``progress(done, total)`` is called as records are written, while the export
        holds its read of the tenant: it must not drop, verify or compact the tenant being
        exported (they wait for the export, which waits for the callback); a write that
        grows the tenant's LMDB map waits likewise.

        :raises TenantNotFound: the tenant does not exist.
        """
        from ._engine import transfer as _export

        self.check_open()
        where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
        with translated(f"tenant {tenant_id!r}: export", where):
            return _export.export_tenant(self._manager, tenant_id, path, progress=progress)

    def import_tenant(self, tenant_id: str, path: str | os.PathLike[str], *,
                      progress: Callable[[int, int], None] | None = None) -> Tenant:
        """Create tenant ``tenant_id`` from a file written by :meth:`export_tenant`; returns
        its handle (:meth:`import_file` returns what the file held instead).

        Records keep their ids and timestamps. The file's checksum is verified first; a
        damaged file creates nothing.

        :raises CorruptExport: the file is damaged or not an export.
        :raises TenantExists: the tenant exists already.
        :raises ReadOnlyStore: the store is read-only.
        """
        self.import_file(tenant_id, path, progress=progress)
        return self.tenant(tenant_id)

    def import_file(self, tenant_id: str, path: str | os.PathLike[str], *,
                    progress: Callable[[int, int], None] | None = None) -> ExportReport:
        """Create tenant ``tenant_id`` from an export file, as :meth:`import_tenant` does;
        returns what was read (records, working-memory entries, dim, metric, bytes, SHA-256).

        ``progress(done, total)`` is called as records are read.

        :raises CorruptExport: the file is damaged or not an export.
        :raises TenantExists: the tenant exists already.
        :raises ReadOnlyStore: the store is read-only.
        """
        from ._engine import transfer as _export

        self.check_open()
        directory = str(self.tenant_path(check_tenant_id(tenant_id)))
        with translated(f"tenant {tenant_id!r}: import", str(self.path / TENANTS_DIR)):
            return _export.import_tenant(directory, tenant_id, path, self.options, progress=progress)

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



#: ``tenantvec.open(path, ...)``: the same as ``tenantvec.Store(path, ...)`` (as ``lmdb.open``
#: is ``lmdb.Environment``).
open = Store

"""A shard directory's files: creating a shard, opening its LMDB environment (the one way
every open goes), telling when the files were replaced, their sizes, leftovers of
interrupted work, and installing a compaction's new files.

LMDB allows one environment per file per process, and a process that opens a file the
writer process has just replaced would read pages the writer reuses; so a read-only
opener checks the files' identity (inodes) around its open (:func:`open_env`), and a
read-only shard later compares the data file's inode with the one it opened to notice
compaction or a drop (see ``Shard.follow``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lmdb

from .._fs import MIN_FREE_FOR_ENV, fsync_dir, require_free
from .._ids import HASHED_ID_FILE, tenant_dir_name
from .._options import StoreOptions
from ..errors import CorruptShard, StorageError, StoreLocked, TenantNotFound, TenantVecError
from .auditlog import append_lifecycle
from .layout import (
    COMPACT_PREFIX,
    DATA_FILE,
    DB_NAMES,
    INDEX_FILE,
    LOCK_FILE,
    Databases,
    initial_meta,
    meta_value,
    open_databases,
    packb,
)
from .lmdbfile import check_data_file
from .storage import MAX_READERS, new_env, reserve_lock_file, storage_error, translated

log = logging.getLogger("tenantvec")

#: Address space a read-only opener maps (readers never grow the file).
READER_MAP_SIZE = 1 << 36
#: Opens a read-only process tries while the writer's compaction swaps the files.
_OPEN_ATTEMPTS = 5
#: Room a writer's map keeps beyond the data file when opened for repair or import.
_MAP_HEADROOM = 64 << 20


def create_shard(path: str, tenant_id: str, dim: int, metric: str, opts: StoreOptions, *, audit: bool = True) -> str:
    """Initialise an empty shard of ``tenant_id`` in directory ``path`` (which must exist
    and be empty): its environment, databases and metadata (:func:`~.layout.initial_meta`),
    with ``audit`` the ``create`` entry of its audit log (an import writes the source's
    log and its own entry instead), and, for a tenant whose directory name is hashed (an
    id that is not path-safe), the file naming it (``_ids.HASHED_ID_FILE``). Returns the
    new incarnation's uuid.

    :raises StorageFull: the filesystem has no room for a new environment.
    """
    what = f"tenant {tenant_id!r}: cannot create its LMDB environment"
    require_free(path, MIN_FREE_FOR_ENV, what)
    values = initial_meta(tenant_id, dim, metric, opts.hnsw)
    with translated(what, path):
        if tenant_dir_name(tenant_id).startswith("~"):
            with open(os.path.join(path, HASHED_ID_FILE), "w", encoding="utf-8") as f:
                f.write(tenant_id)
        env = new_env(path, opts.map_size, durable=True)
        try:
            meta = env.open_db(b"meta")
            dbs = {name: env.open_db(name.encode()) for name in DB_NAMES[1:]}
            with env.begin(write=True, db=meta) as txn:
                for key, value in values.items():
                    txn.put(key, packb(value))
                if audit:
                    append_lifecycle(txn, dbs["audit"], tenant_id, "create", counts={"dim": dim}, now=values[b"created"])
            env.sync(True)
        finally:
            env.close()
    return str(values[b"uuid"])


def open_checked_env(path: str, tenant_id: str, **options: Any) -> lmdb.Environment:
    """``lmdb.open`` on a shard's existing environment, the one way every open goes: the
    data file's structure is checked first (mapped, a damaged one could kill the
    process) and the lock file allocated (see ``reserve_lock_file``). ``options``: the
    open's map size, read-only and sync flags.

    :raises CorruptShard: the data file is damaged.
    :raises StorageFull: no room for the lock file.
    """
    why = check_data_file(os.path.join(path, DATA_FILE))
    if why is not None:
        raise CorruptShard(f"tenant {tenant_id!r}: LMDB data file in {path} is damaged: {why}")
    reserve_lock_file(path)
    return lmdb.open(path, create=False, max_dbs=len(DB_NAMES), readahead=False, max_readers=MAX_READERS, **options)


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


def _file_ids(path: str) -> tuple[int, int]:
    """Inodes of data.mdb and lock.mdb (0 for a missing file)."""
    return _inode(path, DATA_FILE), _inode(path, LOCK_FILE)


def _inode(path: str, name: str) -> int:
    """Inode of file ``name`` in directory ``path``; 0 when missing."""
    try:
        return os.stat(os.path.join(path, name)).st_ino
    except FileNotFoundError:
        return 0


def open_env(path: str, tenant_id: str, opts: StoreOptions, readonly: bool) -> tuple[lmdb.Environment, int]:
    """Open a shard's LMDB environment for serving; returns it and its data file's inode.

    A read-only process may open the files while the writer process's compaction swaps
    them: a reader registered in a lock file the writer no longer uses is invisible to
    it (the writer would reuse the pages it reads). So a reader stats both files before
    and after opening and opens again until they are the pair on disk (compaction
    removes the old lock file before renaming the new data file). A writer's files do
    not move.

    :raises TenantNotFound: the data file is gone (dropped under us).
    :raises StoreLocked: another Store of this process has the environment open.
    :raises CorruptShard, StorageError: damage, or another failure to open.
    """
    for _ in range(_OPEN_ATTEMPTS):
        before = _file_ids(path) if readonly else None
        env, ino = _open_once(path, tenant_id, opts, readonly)
        if before is None or _file_ids(path) == before:
            clear_stale_readers(env, tenant_id)
            return env, ino
        env.close()
    raise StorageError(f"tenant {tenant_id!r}: its files in {path} kept changing while opened", path=path)


def _open_once(path: str, tenant_id: str, opts: StoreOptions, readonly: bool) -> tuple[lmdb.Environment, int]:
    data = os.path.join(path, DATA_FILE)
    try:
        st = os.stat(data)
        env = open_checked_env(
            path, tenant_id,
            map_size=READER_MAP_SIZE if readonly else max(opts.map_size, 2 * st.st_size),
            readonly=readonly,
            sync=opts.durability == "full",
            metasync=opts.durability == "full",
        )
    except TenantVecError:
        raise
    except (lmdb.Error, OSError) as exc:
        if not os.path.isfile(data):  # dropped under us
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist (its files are gone)") from exc
        if "already open in this process" in str(exc):
            raise StoreLocked(
                f"tenant {tenant_id!r} is open in this process through another Store (LMDB allows "
                "one environment per file per process); use that Store, or read from another process"
            ) from exc
        # damage is named by the check above or by LMDB (CorruptShard); anything else
        # (no file descriptors, no memory, permissions) is a StorageError
        raise storage_error(exc, f"tenant {tenant_id!r}: cannot open LMDB environment", path) from exc
    return env, st.st_ino


# ---------------------------------------------------------------------------- raw access
@dataclass
class RawEnv:
    """A shard's environment opened directly, without a Shard (the tenant is held cold,
    or the shard is being built): for listing, verify, repair and import."""

    env: lmdb.Environment
    dbs: Databases

    def get_meta(self, txn: lmdb.Transaction[bytes], key: bytes, default: Any = None) -> Any:
        """A metadata value, decoded; ``default`` when absent."""
        return meta_value(txn, self.dbs.meta, key, default)


@contextmanager
def open_raw(path: str, tenant_id: str, *, write: bool, map_size: int = 0) -> Iterator[RawEnv]:
    """Open a shard's environment and databases directly; closed when the body ends.
    A writer's map is at least ``map_size`` and the data file plus some room.

    :raises CorruptShard: damaged, or a directory without its data file or a database.
    :raises StorageError: the environment cannot be opened otherwise.
    """
    try:
        if write:
            map_size = max(map_size, os.path.getsize(os.path.join(path, DATA_FILE)) + _MAP_HEADROOM)
        env = open_checked_env(path, tenant_id, readonly=not write, map_size=map_size if write else READER_MAP_SIZE)
    except TenantVecError:
        raise
    except FileNotFoundError as exc:  # a tenant directory without its data file
        raise CorruptShard(f"tenant {tenant_id!r}: cannot open LMDB environment in {path}: {exc}") from exc
    except (lmdb.Error, OSError) as exc:  # damage is CorruptShard; no fds, memory, permission: StorageError
        raise storage_error(exc, f"tenant {tenant_id!r}: cannot open LMDB environment", path) from exc
    try:
        yield RawEnv(env, open_databases(env, tenant_id, path))
    finally:
        env.close()


# ---------------------------------------------------------------------------- the directory
def require_shard(path: str, tenant_id: str, *, need_data: bool = True) -> None:
    """Refuse a tenant without a shard in directory ``path``; without ``need_data`` a
    directory that lost its data file counts as one (listing and verify report it).

    :raises TenantNotFound: naming the tenant.
    """
    if not os.path.isfile(os.path.join(path, DATA_FILE)) and (need_data or not os.path.isdir(path)):
        raise TenantNotFound(f"tenant {tenant_id!r} does not exist (no shard in {path})")


def disk_bytes(path: str) -> int:
    """Bytes of a shard's files on disk: the environment and the index snapshot."""
    total = 0
    for name in (DATA_FILE, LOCK_FILE, INDEX_FILE):
        try:
            total += os.path.getsize(os.path.join(path, name))
        except OSError:
            pass
    return total


def file_size(path: str) -> int:
    """Size of one file, 0 when it cannot be read."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def install_files(path: str, staged: str, *, with_snapshot: bool) -> None:
    """Move a new environment (and, ``with_snapshot``, a new index snapshot; else the old
    one is removed) from directory ``staged`` into the shard directory ``path``; the
    environment must be closed in this process.

    The old lock file goes first: a reader that opens it must find the old data file
    too (the writer never sees readers registered in a lock file it does not use, and
    would reuse the pages they read); readers re-check both after opening. A failure
    leaves the old or the new files, each consistent.
    """
    _unlink(os.path.join(path, LOCK_FILE))
    os.replace(os.path.join(staged, DATA_FILE), os.path.join(path, DATA_FILE))
    if with_snapshot:
        os.replace(os.path.join(staged, INDEX_FILE), os.path.join(path, INDEX_FILE))
    else:
        _unlink(os.path.join(path, INDEX_FILE))
    fsync_dir(path)

"""The storage boundary: LMDB and filesystem failures become :class:`TenantVecError`\\ s.

Everything below the facade may raise raw ``lmdb.Error``, ``OSError`` or msgpack decode
errors; :func:`storage_error` turns each into ``StorageFull`` (no room), ``CorruptShard``
(damaged files) or ``StorageError`` (the rest), with the original chained, so nothing
above the engine ever sees an ``lmdb`` exception.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

import lmdb
import msgpack

from .._fs import FULL_ERRNOS, free_bytes, full_error
from ..errors import CorruptShard, StorageError, TenantVecError
from .layout import DB_NAMES

#: Raw exceptions that storage code may raise; the facade translates them.
RAW_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    lmdb.Error, OSError, msgpack.UnpackException, msgpack.exceptions.ExtraData,
)
_DAMAGE = (
    lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError, lmdb.VersionMismatchError,
    lmdb.BadChecksumError, lmdb.IncompatibleError, lmdb.BadValsizeError,
    msgpack.UnpackException, msgpack.exceptions.ExtraData,
)
#: LMDB reports a data page that could not be written in full as EIO; with less than
#: this free on the filesystem at that moment, the cause was a full disk.
_NEARLY_FULL = 1 << 20
#: Reader slots of every LMDB environment we open (concurrent read transactions).
MAX_READERS = 126
#: Bytes allocated for an LMDB lock file: LMDB's reader table for ``MAX_READERS`` plus
#: its header, rounded up to whole pages (LMDB counts the slots from the file's size).
LOCK_FILE_BYTES = 12288


def storage_error(exc: BaseException, what: str, path: str) -> BaseException:
    """The :class:`TenantVecError` for a raw storage error ``exc`` (``exc`` itself when it
    is one already, or when it is not a storage error). ``what`` names the tenant or
    operation (``"tenant 'acme'"``), ``path`` the directory or file written."""
    if isinstance(exc, TenantVecError) or not isinstance(exc, RAW_STORAGE_ERRORS):
        return exc
    if isinstance(exc, _DAMAGE):
        return CorruptShard(f"{what}: files in {path} are damaged ({exc}); run `tenantvec verify`")
    if _is_full(exc, path):
        return full_error(path, what)
    if isinstance(exc, lmdb.ReadersFullError):
        return StorageError(f"{what}: every LMDB reader slot of {path} is taken (too many concurrent readers)",
                            path=path)
    return StorageError(f"{what}: storage failed at {path}: {exc}", path=path)


def _is_full(exc: BaseException, path: str) -> bool:
    if isinstance(exc, lmdb.DiskError) or (isinstance(exc, OSError) and exc.errno in FULL_ERRNOS):
        return True
    eio = (isinstance(exc, OSError) and exc.errno == errno.EIO) or (
        isinstance(exc, lmdb.Error) and "Input/output error" in str(exc)
    )
    if not eio:
        return False
    try:
        return free_bytes(path if os.path.isdir(path) else os.path.dirname(path) or ".") < _NEARLY_FULL
    except OSError:
        return False


@contextmanager
def translated(what: str, path: str) -> Iterator[None]:
    """Run the body with raw storage errors translated (see :func:`storage_error`)."""
    try:
        yield
    except RAW_STORAGE_ERRORS as exc:
        err = storage_error(exc, what, path)
        if err is exc:
            raise
        raise err from exc


def new_env(path: str, map_size: int, *, durable: bool) -> lmdb.Environment:
    """A new, empty environment for a shard in directory ``path``, its lock file
    allocated first (see :func:`reserve_lock_file`); ``durable``: fsync every commit
    (else the caller syncs once at the end). Existing environments are opened with
    ``shardfiles.open_checked_env``.

    :raises StorageFull: no room for the lock file.
    """
    reserve_lock_file(path)
    return lmdb.open(path, map_size=map_size, max_dbs=len(DB_NAMES), sync=durable, metasync=durable)


def reserve_lock_file(path: str) -> None:
    """Allocate the LMDB lock file in directory ``path`` before LMDB maps it.

    LMDB sizes its lock file with ``ftruncate`` and writes its reader table through a
    shared mapping; on a full filesystem the first write to an unallocated page kills
    the process with SIGBUS. Allocating the pages first turns that into an error here
    (``StorageFull``), or later into an ordinary LMDB error on the data file.

    :raises StorageFull: no room for the lock file.
    """
    lock = os.path.join(path, "lock.mdb")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # read-only filesystem, permissions: LMDB reports it
        if exc.errno in FULL_ERRNOS:
            raise full_error(lock, "cannot create the LMDB lock file") from exc
        return
    try:
        os.posix_fallocate(fd, 0, max(os.fstat(fd).st_size, LOCK_FILE_BYTES))
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise full_error(lock, "cannot allocate the LMDB lock file") from exc
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)

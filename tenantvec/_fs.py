"""Filesystem primitives: atomic file writes, directory fsync, directories built under a
temporary name and renamed into place, free-space checks."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import StorageFull

#: Free bytes a new LMDB environment needs at least (its meta and database root pages,
#: with room for the first commits); below it a create is refused before LMDB maps a
#: file whose first pages could not be written (a SIGBUS on first access).
MIN_FREE_FOR_ENV = 1 << 20
#: errno values that mean "no room": the filesystem or the user's quota is full.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Prefix of the temporary directories :func:`staged_directory` builds in; one left by a
#: crash is removed by the next writer (see ``Store``).
STAGING_PREFIX = ".tmp-"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, making renames and creations inside it durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``path`` as a whole or not at all: a ``.partial`` file, fsync, rename, fsync
    of the directory. :raises StorageFull: no room for the file (nothing is left behind)."""
    path = os.fspath(path)
    tmp = path + ".partial"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if exc.errno in FULL_ERRNOS:
            raise full_error(path, f"cannot write {path}") from exc
        raise
    fsync_dir(os.path.dirname(path) or ".")


@contextmanager
def staged_directory(
    parent: str | os.PathLike[str], final: str | os.PathLike[str], exists: Callable[[], BaseException]
) -> Iterator[str]:
    """Build a directory that appears at ``final`` whole or not at all.

    The body fills a new directory in ``parent`` (its path is yielded), which is then
    renamed to ``final`` (atomic, and refused when ``final`` exists) and ``parent``
    fsynced. A failure in the body or the rename removes the temporary directory.

    >>> with staged_directory(root, root / "acme", lambda: TenantExists("acme")) as tmp:  # doctest: +SKIP
    ...     build_shard(tmp)

    :raises BaseException: ``exists()`` when ``final`` appeared meanwhile (another creator won).
    :raises OSError: from the filesystem.
    """
    tmp = os.path.join(parent, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    os.mkdir(tmp)
    try:
        yield tmp
        try:
            os.rename(tmp, final)  # atomic; fails if another creator won
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise exists() from None
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def full_error(path: str | os.PathLike[str], what: str) -> StorageFull:
    """A :class:`StorageFull` for a write under ``path`` that found no room."""
    path = os.fspath(path)
    try:
        free: int | None = free_bytes(path if os.path.isdir(path) else os.path.dirname(path) or ".")
    except OSError:
        free = None
    shown = "unknown" if free is None else f"{free} bytes"
    return StorageFull(f"{what}: the filesystem is full ({shown} free at {path})", path=path, free=free)


def require_free(path: str | os.PathLike[str], need: int, what: str) -> None:
    """Refuse (before writing anything) a write of about ``need`` bytes under directory
    ``path`` when the filesystem has less free. :raises StorageFull: naming path and free bytes."""
    free = free_bytes(path)
    if free < need:
        path = os.fspath(path)
        raise StorageFull(
            f"{what}: needs about {need} bytes but only {free} are free at {path}", path=path, free=free
        )

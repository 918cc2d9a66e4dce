"""Filesystem primitives: atomic file writes, directory fsync, free-space checks."""

from __future__ import annotations

import errno
import os

from .errors import StorageFull

#: Free bytes a new LMDB environment needs at least (its meta and database root pages,
#: with room for the first commits); below it a create is refused before LMDB maps a
#: file whose first pages could not be written (a SIGBUS on first access).
MIN_FREE_FOR_ENV = 1 << 20
#: errno values that mean "no room": the filesystem or the user's quota is full.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


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

"""HNSW index snapshots: written atomically, checked against their checkpoint, loaded and
brought up to date by replaying the operation log.

The snapshot (``index.hnsw``) is derived from LMDB. ``meta[b"ckpt"]`` records what it
reflects: the sequence number of the last operation in it, its size and CRC32, its live
count and its tombstones. Writes after the checkpoint are in the ``oplog`` database, one
entry per sequence number. A snapshot serves a shard when its file matches the
checkpoint, the checkpoint is not ahead of LMDB, and the op log has every operation
since; otherwise the index is rebuilt from the stored vectors. The one check
(:func:`check_snapshot`, inside :func:`load_snapshot`) is what opening a shard, a
read-only process catching up and ``verify`` all apply.

Writing: the file is written to ``index.hnsw.partial``, fsynced and renamed over
``index.hnsw`` (:func:`write_snapshot`); only then is the checkpoint recorded and the op
log before it pruned (:func:`record_checkpoint`), so a crash at any point leaves a
loadable state.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import lmdb
import numpy as np

from .._fs import fsync_dir
from .hotrecs import HotRecords
from .index import ExactIndex, HnswIndex
from .layout import INDEX_FILE, Databases, labels_from_bytes, labels_to_bytes, pack_label, packb, unpack_label, unpackb

#: Why no snapshot was used when the shard has no checkpoint: the normal state of a new
#: HNSW shard (or one whose index was rebuilt and not yet written), not damage.
NO_CHECKPOINT = "has no checkpoint yet"
_READ_CHUNK = 1 << 20

#: One logged operation: ``"a"`` (labels added) or ``"d"`` (labels deleted).
Op = tuple[str, np.ndarray]
#: ``load(path, tombstones)``: the index in a checked snapshot file.
Loader = Callable[[str, np.ndarray], HnswIndex]
#: ``vectors(txn, labels, stored values)``: the checked ``(n, dim)`` vectors.
Vectors = Callable[["lmdb.Transaction[bytes]", list[int], list[bytes]], np.ndarray]


class Snapshot(NamedTuple):
    """A loaded snapshot and the operations logged after it, to replay."""

    hnsw: HnswIndex
    ops: list[Op]


# ---------------------------------------------------------------------------- writing
def crc_of(fd: int) -> tuple[int, int]:
    """CRC32 and size of the whole file open as ``fd``."""
    crc, size = 0, 0
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            return crc, size
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)


def save_snapshot(index: HnswIndex, path: str, seq: int) -> dict[str, Any]:
    """Write ``index`` to ``path`` and fsync it; returns the checkpoint that describes it
    (sequence, size, CRC32, live count, tombstones) for ``meta[b"ckpt"]``.

    :raises OSError: the file could not be written (``ENOSPC`` when it came out short).
    """
    index.save(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        crc, size = crc_of(fd)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {
        "seq": seq, "size": size, "crc": crc, "count": len(index),
        "deleted": labels_to_bytes(index.deleted_labels()), "written": time.time(),
    }


def write_snapshot(index: HnswIndex, directory: str, seq: int) -> dict[str, Any]:
    """Replace ``directory``'s snapshot atomically (a ``.partial`` file, fsync, rename,
    directory fsync); returns its checkpoint, which the caller records next.

    :raises OSError: e.g. a full disk; the old snapshot and the op log are untouched.
    """
    final = os.path.join(directory, INDEX_FILE)
    partial = final + ".partial"
    try:
        ckpt = save_snapshot(index, partial, seq)
    except BaseException:  # the snapshot is derived: the op log holds every operation
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    os.replace(partial, final)
    fsync_dir(directory)
    return ckpt


def record_checkpoint(txn: lmdb.Transaction[bytes], dbs: Databases, ckpt: dict[str, Any] | None) -> None:
    """Record ``ckpt`` in ``meta`` and prune the op log it covers; ``None`` (an exact
    index, or a snapshot to be rebuilt) removes the checkpoint and the whole log."""
    if ckpt is None:
        txn.delete(b"ckpt", db=dbs.meta)
        txn.drop(dbs.oplog, delete=False)
        return
    txn.put(b"ckpt", packb(ckpt), db=dbs.meta)
    cur = txn.cursor(db=dbs.oplog)
    while cur.first() and unpack_label(cur.key()) <= ckpt["seq"]:
        cur.delete()


# ---------------------------------------------------------------------------- checking
def oplog_after(txn: lmdb.Transaction[bytes], oplog: lmdb._Database, after: int, last: int) -> list[Op] | None:
    """The operations with sequence ``after + 1 .. last``, or None when the log lacks one."""
    out = []
    expect = after + 1
    cur = txn.cursor(db=oplog)
    if cur.set_range(pack_label(expect)):
        for k, v in cur:
            if unpack_label(k) != expect:
                return None
            op, raw = unpackb(v)
            out.append((op, labels_from_bytes(raw)))
            expect += 1
    return out if expect - 1 == last else None


def _checked(fd: int, ckpt: dict[str, Any], seq: int, txn: lmdb.Transaction[bytes],
             oplog: lmdb._Database) -> list[Op] | str:
    """The operations to replay on the snapshot open as ``fd``, or why it cannot serve."""
    crc, size = crc_of(fd)
    if size != ckpt["size"]:
        return f"has {size} bytes, its checkpoint says {ckpt['size']} (truncated or replaced)"
    if crc != ckpt["crc"]:
        return f"fails its checksum (crc {crc:08x}, checkpoint {ckpt['crc']:08x})"
    if ckpt["seq"] > seq:
        return f"is from a later checkpoint (seq {ckpt['seq']}) than LMDB's last operation ({seq})"
    ops = oplog_after(txn, oplog, ckpt["seq"], seq)
    if ops is None:
        return f"is older than the operation log (a gap after its checkpoint at seq {ckpt['seq']}, before seq {seq})"
    return ops


def _read(directory: str, ckpt: dict[str, Any] | None, seq: int, txn: lmdb.Transaction[bytes],
          oplog: lmdb._Database, load: Loader | None) -> Snapshot | list[Op] | str:
    """:func:`load_snapshot` (with ``load``) or :func:`check_snapshot` (without: the ops)."""
    if ckpt is None:
        return NO_CHECKPOINT
    path = os.path.join(directory, INDEX_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return f"is missing (its checkpoint is at seq {ckpt['seq']})"
    try:
        ops = _checked(fd, ckpt, seq, txn, oplog)
        if isinstance(ops, str) or load is None:
            return ops
        try:
            index = load(path, labels_from_bytes(ckpt["deleted"]))
        except (RuntimeError, ValueError, MemoryError) as exc:
            return f"cannot be loaded ({exc})"
        try:  # the index was read by name: the file checked above, unless replaced since
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            return "was replaced while loading"
    finally:
        os.close(fd)
    if len(index) != ckpt["count"]:
        return f"holds {len(index)} vectors, its checkpoint says {ckpt['count']}"
    return Snapshot(index, ops)


def check_snapshot(directory: str, ckpt: dict[str, Any] | None, seq: int, txn: lmdb.Transaction[bytes],
                   oplog: lmdb._Database) -> str | None:
    """Why the snapshot in ``directory`` cannot serve LMDB at ``seq`` (read in ``txn``):
    :data:`NO_CHECKPOINT`, a file that is missing, of another size or CRC32 than
    ``ckpt`` says, a checkpoint ahead of LMDB, or a gap in the op log; None when usable."""
    got = _read(directory, ckpt, seq, txn, oplog, None)
    return got if isinstance(got, str) else None


def load_snapshot(directory: str, ckpt: dict[str, Any] | None, seq: int, txn: lmdb.Transaction[bytes],
                  oplog: lmdb._Database, load: Loader) -> Snapshot | str:
    """The snapshot in ``directory`` loaded with ``load``, and the operations since, if it
    passes :func:`check_snapshot`, loads, was not replaced meanwhile and holds as many
    vectors as its checkpoint says; otherwise why not (the index is then rebuilt)."""
    got = _read(directory, ckpt, seq, txn, oplog, load)
    assert not isinstance(got, list)  # a loader was given
    return got


# ---------------------------------------------------------------------------- replay
def replay(txn: lmdb.Transaction[bytes], dbs: Databases, ops: list[Op], index: ExactIndex | HnswIndex,
           hot: HotRecords, vectors: Vectors) -> None:
    """Apply logged operations to ``index`` and the in-memory records ``hot``: deletes
    remove labels, adds insert the stored vectors of the labels still present (a later
    operation may have deleted them)."""
    get = txn.get
    for op, labels in ops:
        if op == "d":
            index.remove(labels)
            hot.forget(labels.tolist())
            continue
        keep, raws = [], []
        for lab in labels.tolist():
            raw = get(pack_label(lab), db=dbs.vecs)
            if raw is not None:  # absent: deleted by a later operation
                keep.append(lab)
                raws.append(raw)
        if keep:  # their records are read from LMDB by the queries that return them
            index.add(np.asarray(keep, dtype=np.int64), vectors(txn, keep, raws))

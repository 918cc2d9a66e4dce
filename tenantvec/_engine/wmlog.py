"""Working memory written in microseconds: a journal file beside LMDB, and a mirror in memory.

A shard's working memory is its ``wm`` side table (:mod:`~.layout`). A write transaction
costs an fsync (``durability="full"``), and py-lmdb cannot switch that off for one
transaction, so ``Tenant.wm_write`` does not commit one: it appends one record to the
shard's journal ``wm.log`` with a single ``os.write`` on an ``O_APPEND`` descriptor and no
fsync. The page cache keeps it across a process kill (not across a power loss).

The journal file::

    header   b"TVWMLOG1" + generation (u64 little-endian)
    record*  payload length (u32 LE) + CRC32 of the payload (u32 LE) + payload
             payload: msgpack [[key, value or nil], ...]  (one wm_write; nil deletes the key)

A record is applied whole or not at all: replay stops at the first record that is torn
(a kill during its write) or fails its CRC32, and ignores the rest of the file.

*Folding* writes the journal's pending operations into LMDB's ``wm`` database (values
sealed with their CRC32, :func:`~.checksum.seal`) together with the metadata value
``wm_folded`` = the journal's generation G, in one write transaction; after the commit
the journal is replaced (a new file renamed over it) by an empty one of generation G+1.
A journal whose generation is at most ``wm_folded`` was folded already (a crash between
the commit and the rotation) and is ignored. So working memory is always LMDB's ``wm``
plus, when its generation is ``wm_folded + 1``, the journal. The shard folds at the start
of every transaction (whose body so orders after the journal), when the journal passes
:data:`FOLD_BYTES`, on flush and close (so before eviction, drop and ``verify`` of a hot
tenant; ``verify`` in a writable store folds a cold tenant's journal itself), and before an
export or a compaction reads the environment; a transaction that used the table also moves the generation on, so that a read-only
opener (another process, which never writes either file) can tell an LMDB snapshot
older than the journal it then reads, and reads again.

The mirror (:class:`WorkingMemory`) is the whole table in memory (working memory is
small): loaded on first use from LMDB plus the journal, then kept current by the
writer's appends; a transaction that used the table drops it (loaded again on next use).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from zlib import crc32

import lmdb
import msgpack

from ..errors import CorruptShard, InvalidArgument, ReadOnlyStore
from .checksum import CRC_BYTES, RESIDUE, seal
from .layout import JOURNAL_FILE, WM_FOLDED, Databases, packb, unpackb
from .txn import MAX_KEY_BYTES, check_key, check_value

if TYPE_CHECKING:
    from .rwlock import RWLock

log = logging.getLogger("tenantvec")
R = TypeVar("R")

JOURNAL_MAGIC = b"TVWMLOG1"
_HEADER = struct.Struct("<8sQ")
_RECORD = struct.Struct("<II")
_pack_record = _RECORD.pack
#: Journal bytes past which a write folds the journal into LMDB (one commit).
FOLD_BYTES = 4 << 20
#: Largest payload of one journal record (one ``wm_write``).
MAX_RECORD_BYTES = 1 << 30
#: Change of the mirror's bytes after which the shard's memory is counted again.
RECOUNT_BYTES = 64 << 10
#: Approximate bytes of one mirrored entry besides its key and value (dict slot, objects).
_ENTRY_BYTES = 120
#: Looks a read-only opener takes while the writer folds between its LMDB read and its journal read.
_LOOKS = 5

#: One operation: put ``key`` = ``value``, or delete ``key`` (``None``).
Op = tuple[bytes, bytes | None]
Step = Callable[["lmdb.Transaction[bytes]", Any], None]


# ---------------------------------------------------------------------------- the file
@dataclass(frozen=True)
class JournalRead:
    """What a journal file holds: its generation (``None``: no file, or no valid header),
    its batches in order, the bytes of its valid prefix, and why reading stopped before
    the end of the file (``None``: it did not)."""

    generation: int | None
    batches: list[list[Op]] = field(default_factory=list)
    size: int = 0
    damage: str | None = None


def _decode(payload: bytes) -> list[Op] | None:
    """A record's operations, or None when the payload is not a batch of them."""
    try:
        ops = unpackb(payload)
    except ValueError:
        return None
    if not isinstance(ops, list):
        return None
    out: list[Op] = []
    for op in ops:
        if not (isinstance(op, list) and len(op) == 2 and isinstance(op[0], bytes)
                and 0 < len(op[0]) <= MAX_KEY_BYTES and (op[1] is None or isinstance(op[1], bytes))):
            return None
        out.append((op[0], op[1]))
    return out


def read_journal(path: str) -> JournalRead:
    """Read the journal file ``path`` up to its first torn or damaged record.

    :raises OSError: the file exists but cannot be read.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return JournalRead(None)
    if len(data) < _HEADER.size or data[: len(JOURNAL_MAGIC)] != JOURNAL_MAGIC:
        return JournalRead(None, damage=f"has no valid header ({len(data)} bytes)")
    generation = _HEADER.unpack_from(data)[1]
    batches: list[list[Op]] = []
    pos, end = _HEADER.size, len(data)
    damage = None
    while pos < end:
        if end - pos < _RECORD.size:
            damage = "torn"
            break
        n, crc = _RECORD.unpack_from(data, pos)
        stop = pos + _RECORD.size + n
        if stop > end:
            damage = "torn"
            break
        payload = data[pos + _RECORD.size : stop]
        ops = _decode(payload) if crc32(payload) == crc else None
        if ops is None:
            damage = "fails its CRC32" if crc32(payload) != crc else "does not decode"
            break
        batches.append(ops)
        pos = stop
    if damage is not None:
        damage = f"record at byte {pos} {damage}; the {end - pos} bytes from there on are ignored"
    return JournalRead(generation, batches, pos, damage)


def journal_damage(directory: str) -> str | None:
    """Why the journal in shard directory ``directory`` cannot be read to its end (a
    kill during a write leaves a torn record), or None (``verify`` reports it)."""
    try:
        got = read_journal(os.path.join(directory, JOURNAL_FILE))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return got.damage


def journal_pending(directory: str) -> bool:
    """Whether shard directory ``directory`` has a journal holding records."""
    try:
        return os.path.getsize(os.path.join(directory, JOURNAL_FILE)) > _HEADER.size
    except OSError:
        return False


def check_ops(ops: object, tenant: str) -> Sequence[Op]:
    """A ``wm_write`` batch checked: a sequence of ``(key, value or None)`` pairs, keys of
    1 to 511 bytes and values bytes (bytearray and memoryview are copied to bytes).

    :raises InvalidArgument: naming the first malformed operation.
    """
    if type(ops) is list or type(ops) is tuple:  # the common case, checked without copies
        for op in ops:
            if type(op) is tuple and len(op) == 2:
                k, v = op
                if type(k) is bytes and 0 < len(k) <= MAX_KEY_BYTES and (type(v) is bytes or v is None):
                    continue
            break
        else:
            return ops
    if not isinstance(ops, Sequence) or isinstance(ops, (str, bytes, bytearray)):
        raise InvalidArgument(f"tenant {tenant!r}: wm_write takes a sequence of (key, value) pairs, got {ops!r:.80}")
    batch: list[Op] = []
    for i, op in enumerate(ops):
        if not isinstance(op, (tuple, list)) or len(op) != 2:
            raise InvalidArgument(f"tenant {tenant!r}: wm_write operation {i} must be a (key, value) pair, got {op!r:.80}")
        key, value = op
        batch.append((check_key(key, tenant, "wm"), None if value is None else check_value(value, tenant, "wm")))
    return batch


# ---------------------------------------------------------------------------- the mirror
class _Mirror:
    """Working memory's entries: key -> value, their keys in order, and the keys whose
    LMDB value failed its CRC32 (served as ``CorruptShard``).

    The order is kept in two sorted lists so that a new key costs O(log n) plus a move of
    at most :data:`_FRESH_MAX` pointers, not of all n (a session log of 100,000 items
    grows by one key per append): ``keys`` (sorted on first use) and ``fresh`` (keys added
    since), with ``gone`` the keys deleted from ``keys`` but not yet cut out of it. Both
    fold into ``keys`` when either passes :data:`_FRESH_MAX`.
    """

    __slots__ = ("damaged", "entries", "fresh", "gone", "keys", "nbytes")

    def __init__(self, entries: dict[bytes, bytes], damaged: set[bytes]) -> None:
        self.entries = entries
        self.damaged = damaged
        self.keys: list[bytes] | None = None
        self.fresh: list[bytes] = []
        self.gone: set[bytes] = set()
        self.nbytes = sum(_ENTRY_BYTES + len(k) + len(v) for k, v in entries.items())

    def apply(self, batch: Sequence[Op]) -> None:
        entries = self.entries
        for k, v in batch:
            old = entries.get(k)
            if v is None:
                if old is not None:
                    del entries[k]
                    self.nbytes -= _ENTRY_BYTES + len(k) + len(old)
                    self._drop_key(k)
            else:
                entries[k] = v
                if old is None:
                    self.nbytes += _ENTRY_BYTES + len(k) + len(v)
                    self._add_key(k)
                else:
                    self.nbytes += len(v) - len(old)
            if self.damaged:
                self.damaged.discard(k)

    def _add_key(self, k: bytes) -> None:
        if self.keys is None:
            return
        if k in self.gone:  # still in ``keys``: live again
            self.gone.discard(k)
            return
        insort(self.fresh, k)
        if len(self.fresh) > _FRESH_MAX:
            self.keys = sorted(self.entries)
            self.fresh, self.gone = [], set()

    def _drop_key(self, k: bytes) -> None:
        if self.keys is None:
            return
        fresh = self.fresh
        i = bisect_left(fresh, k)
        if i < len(fresh) and fresh[i] == k:
            del fresh[i]
            return
        self.gone.add(k)
        if len(self.gone) > _FRESH_MAX:
            self.keys = sorted(self.entries)
            self.fresh, self.gone = [], set()

    def ordered(self, lo: bytes, hi: bytes | None) -> list[bytes]:
        """The keys from ``lo`` (included) to ``hi`` (excluded; None: to the end), in order."""
        keys = self.keys
        if keys is None:
            keys = self.keys = sorted(self.entries)
        out = keys[bisect_left(keys, lo):len(keys) if hi is None else bisect_left(keys, hi)]
        if self.gone:
            out = [k for k in out if k not in self.gone]
        fresh = self.fresh
        if fresh:
            more = fresh[bisect_left(fresh, lo):len(fresh) if hi is None else bisect_left(fresh, hi)]
            if more:
                out = sorted(out + more)
        return out


_FRESH_MAX = 1024


def _scan(txn: lmdb.Transaction[bytes], db: Any) -> _Mirror:
    """LMDB's ``wm`` database as ``txn`` sees it, values checked."""
    entries: dict[bytes, bytes] = {}
    damaged: set[bytes] = set()
    for k, raw in txn.cursor(db=db):
        if len(raw) >= CRC_BYTES and crc32(raw) == RESIDUE:
            entries[k] = raw[:-CRC_BYTES]
        else:
            damaged.add(k)
    return _Mirror(entries, damaged)


class WmView:
    """Working memory as one read sees it (``Tenant.wm_get``/``wm_items``, and
    ``Tenant.reading().side("wm")``): byte keys (1 to 511 bytes) to byte values, sorted by
    key. A value whose LMDB copy fails its CRC32 raises ``CorruptShard``."""

    __slots__ = ("_mirror", "_tenant")

    def __init__(self, mirror: _Mirror, tenant: str) -> None:
        self._mirror = mirror
        self._tenant = tenant

    def _damaged(self, key: bytes) -> CorruptShard:
        return CorruptShard(f"tenant {self._tenant!r}: wm entry {key!r} is damaged (checksum mismatch)")

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None.

        :raises InvalidArgument: ``key`` is not 1 to 511 bytes.
        :raises CorruptShard: the stored value fails its CRC32.
        """
        mirror = self._mirror
        value = mirror.entries.get(key) if type(key) is bytes else None  # the common case: no copy
        if value is not None:
            return value
        k = check_key(key, self._tenant, "wm")
        if mirror.damaged and k in mirror.damaged:
            raise self._damaged(k)
        return mirror.entries.get(k)

    def items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in key order.

        :raises InvalidArgument: ``prefix`` is not bytes.
        :raises CorruptShard: one of them fails its CRC32.
        """
        if not isinstance(prefix, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"tenant {self._tenant!r}: side table prefix must be bytes, got {prefix!r}")
        p = bytes(prefix)
        end = p.rstrip(b"\xff")  # the keys after every key starting with p start with this + 1
        return self.between(p, end[:-1] + bytes([end[-1] + 1]) if end else None)

    def between(self, lo: bytes, hi: bytes | None) -> list[tuple[bytes, bytes]]:
        """Every (key, value) with ``lo <= key < hi`` (``hi`` None: to the end), in key order.

        :raises CorruptShard: one of them fails its CRC32.
        """
        mirror = self._mirror
        if mirror.damaged:
            bad = sorted(k for k in mirror.damaged if lo <= k and (hi is None or k < hi))
            if bad:
                raise self._damaged(bad[0])
        entries = mirror.entries
        return [(k, entries[k]) for k in mirror.ordered(lo, hi)]


# ---------------------------------------------------------------------------- one shard's
class WorkingMemory:
    """One shard's working memory: LMDB's ``wm`` database, the journal and the mirror.

    The shard calls it under its own lock: appends and folds with the lock held alone
    (:meth:`append`, :meth:`begin`, :meth:`end`, :meth:`committed`), reads with it shared
    (:meth:`view`). A writer reads the journal once (:meth:`attach`, at open) and keeps
    what it holds in memory (``pending``, until folded); a read-only shard never writes
    either file and reads both again when they changed.
    """

    def __init__(self, path: str, tenant_id: str, readonly: bool, dbs: Databases,
                 read_txn: Callable[[], lmdb.Transaction[bytes]], write: Callable[[Callable[[Any], Any]], Any]) -> None:
        """Working memory of the shard in directory ``path``, whose environment has the
        databases ``dbs`` (see :meth:`reset`) and is read with ``read_txn()`` and written
        with ``write(body)`` (a write transaction running ``body(txn)``)."""
        self._file = os.path.join(path, JOURNAL_FILE)
        self._tenant = tenant_id
        self._readonly = readonly
        self._dbs = dbs
        self._read_txn = read_txn
        self._write = write
        self._closed = False
        self._fd = -1
        self._gen = 1  # the journal's generation (writer)
        self._size = _HEADER.size  # bytes of the journal on disk (writer)
        self._current = False  # the file on disk is this journal (writer): else (re)created on the next write
        self.pending: dict[bytes, bytes | None] = {}  # journaled since the last fold (writer), latest per key
        self._staged: int | None = None  # generation a write transaction folds (under the write lock)
        self._mirror: _Mirror | None = None
        self._seen: tuple[int, ...] = ()  # read-only: what the mirror was loaded from
        self._loading = threading.Lock()
        self._counted = 0  # nbytes when last reported moved
        self._packer = msgpack.Packer(use_bin_type=True)  # used under the shard's lock alone

    @property
    def nbytes(self) -> int:
        """Approximate bytes of the mirror (0 until loaded)."""
        mirror = self._mirror
        return mirror.nbytes if mirror is not None else 0

    def moved(self) -> bool:
        """Whether :attr:`nbytes` moved by :data:`RECOUNT_BYTES` since this last said so
        (the shard's memory is then counted again)."""
        n = self.nbytes
        if abs(n - self._counted) < RECOUNT_BYTES:
            return False
        self._counted = n
        return True

    # ------------------------------------------------------------------ writer
    def attach(self, txn: lmdb.Transaction[bytes]) -> None:
        """Writer, at open: read the journal against ``wm_folded`` in ``txn`` and keep its
        operations as pending. A torn tail is cut off, and a journal folded already (or
        without a valid header) replaced by an empty one, each logged. A read-only shard
        does nothing (it reads the journal on use).

        :raises OSError: the journal cannot be read or repaired.
        """
        if self._readonly:
            return
        folded = _folded(txn, self._dbs)
        got = read_journal(self._file)
        self._gen = folded + 1
        if got.generation is None:
            if got.damage:
                log.warning("tenant %r: working memory journal %s %s; replacing it", self._tenant, self._file, got.damage)
                self._create()
            return
        if got.generation <= folded:  # a crash between a fold's commit and the rotation
            log.info("tenant %r: working memory journal generation %d was folded already", self._tenant, got.generation)
            self._create()
            return
        if got.generation > folded + 1:
            log.warning("tenant %r: working memory journal is at generation %d but LMDB folded %d (restored files?); "
                        "applying it", self._tenant, got.generation, folded)
            self._gen = got.generation
        for batch in got.batches:
            self.pending.update(batch)
        self._size, self._current = got.size, True
        if got.damage:
            log.warning("tenant %r: working memory journal %s: %s (a write the process did not finish)",
                        self._tenant, self._file, got.damage)
            os.truncate(self._file, got.size)

    def check(self, ops: object) -> Sequence[Op]:
        """A batch of operations checked (:func:`check_ops`), before any lock.

        :raises ReadOnlyStore: a read-only shard.
        :raises InvalidArgument: a malformed batch.
        """
        if self._readonly:
            raise ReadOnlyStore(f"tenant {self._tenant!r}: the store is open read-only")
        return check_ops(ops, self._tenant)

    def append(self, batch: Sequence[Op]) -> bool:
        """Append a :meth:`check`\\ ed batch to the journal as one record (one ``os.write``,
        no fsync), apply it to the mirror, and fold the journal when it passed
        :data:`FOLD_BYTES`; returns whether the mirror's bytes :meth:`moved`. Call it
        holding the shard's lock alone (the encoder is the shard's).

        :raises InvalidArgument: the batch is larger than :data:`MAX_RECORD_BYTES` (nothing is written).
        :raises OSError: the write failed (nothing of it counts: the next write cuts it off).
            A fold that fails after the write is logged, not raised.
        """
        payload = self._packer.pack(batch)
        n = len(payload)
        if n > MAX_RECORD_BYTES:
            raise InvalidArgument(f"tenant {self._tenant!r}: wm_write batch of {n} bytes is larger than "
                                  f"the {MAX_RECORD_BYTES} byte limit; write it in smaller batches")
        record = _pack_record(n, crc32(payload)) + payload
        fd = self._fd if self._fd >= 0 else self._open()
        try:
            n = os.write(fd, record)
            if n != len(record):
                raise OSError(f"short write to {self._file} ({n} of {len(record)} bytes)")
        except BaseException:
            self._close_fd()
            raise
        self._size += n
        self.pending.update(batch)
        mirror = self._mirror
        if mirror is not None:
            mirror.apply(batch)
        if self._size >= FOLD_BYTES:
            try:
                self.fold()
            except Exception:  # the batch is journaled (acknowledged): the next fold tries again
                log.exception("tenant %r: folding working memory into LMDB failed", self._tenant)
        return mirror is not None and abs(mirror.nbytes - self._counted) >= RECOUNT_BYTES and self.moved()

    def _open(self) -> int:
        """Open the journal for appending (returns the descriptor), created first when the
        file on disk is not it; anything past its known size (a failed write) is cut off."""
        if not self._current:
            self._create()
        fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, self._size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def _create(self) -> None:
        """Put an empty journal of the current generation in place (temp file, rename)."""
        self._close_fd()
        self._current = False
        tmp = self._file + ".new"
        with open(tmp, "wb") as f:
            f.write(_HEADER.pack(JOURNAL_MAGIC, self._gen))
        os.replace(tmp, self._file)
        self._size, self._current = _HEADER.size, True

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def _fold_step(self) -> Step:
        """A write transaction's step that folds the pending operations and marks the
        journal's generation folded (:meth:`committed` rotates the journal after the commit)."""
        ops, gen, wm, meta = list(self.pending.items()), self._gen, self._dbs.wm, self._dbs.meta
        self._staged = gen

        def fold(txn: lmdb.Transaction[bytes], _state: Any) -> None:
            for k, v in ops:
                if v is None:
                    txn.delete(k, db=wm)
                else:
                    txn.put(k, seal(v), db=wm)
            txn.put(WM_FOLDED, packb(gen), db=meta)

        return fold

    def fold(self) -> None:
        """Fold the pending operations into LMDB in a write transaction of their own, then
        rotate the journal (the caller holds the shard's lock alone)."""
        if self.pending and not self._closed:
            step = self._fold_step()
            self._write(lambda txn: step(txn, None))
            self.committed(False)

    def begin(self, run: Callable[[Step], Any]) -> None:
        """At the start of a write transaction: fold the pending operations in it (``run``
        runs a step in the transaction), so that its body orders after them."""
        self._staged = None
        if self.pending:
            run(self._fold_step())

    def end(self, run: Callable[[Step], Any], used: bool) -> None:
        """Before a write transaction commits: when it ``used`` the table and folded
        nothing, mark the generation folded all the same (readers then see it move)."""
        if used and self._staged is None:
            run(self._fold_step())

    def committed(self, used: bool) -> None:
        """After a write transaction committed: rotate the journal if it folded; drop the
        mirror if it ``used`` the table (loaded again on the next read)."""
        if used:
            self._mirror = None
        if self._staged is None:
            return
        self._gen, self._staged = self._staged + 1, None
        self.pending = {}
        try:
            self._create()
        except OSError as exc:  # the folded journal is ignored on load; the next write tries again
            log.warning("tenant %r: cannot rotate working memory journal %s: %s", self._tenant, self._file, exc)

    # ------------------------------------------------------------------ reads
    def view(self) -> WmView:
        """Working memory now: the writer's mirror (loaded on first use), or for a read-only
        shard LMDB and the journal as they are (read again when either changed)."""
        mirror = self._mirror
        if self._readonly:
            mirror = self._follow()
        elif mirror is None:
            with self._loading:
                mirror = self._mirror
                if mirror is None:
                    with self._read_txn() as txn:
                        mirror = _scan(txn, self._dbs.wm)
                    mirror.apply(list(self.pending.items()))
                    self._mirror = mirror
        return WmView(mirror, self._tenant)

    def _follow(self) -> _Mirror:
        """Read-only: LMDB's ``wm`` with the journal on top, as one consistent state (read
        again when the writer folded between the two reads)."""
        looks = 0
        while True:
            looks += 1
            seen = _stat(self._file)
            with self._read_txn() as txn:
                seen += (txn.id(),)
                if seen == self._seen and self._mirror is not None:
                    return self._mirror
                folded = _folded(txn, self._dbs)
                mirror = _scan(txn, self._dbs.wm)
            got = read_journal(self._file)
            if got.generation is not None and got.generation > folded + 1 and looks < _LOOKS:
                continue  # the writer folded after our LMDB read: read both again
            if got.generation is not None and got.generation > folded:
                for batch in got.batches:
                    mirror.apply(batch)
            with self._loading:
                self._mirror, self._seen = mirror, seen
            return mirror

    def stored(self, txn: lmdb.Transaction[bytes]) -> list[tuple[bytes, bytes]]:
        """Every entry as stored (values sealed), in key order, for an export reading
        ``txn``: a writer folded the journal before ``txn`` began, so LMDB's in ``txn``; a
        read-only shard's are LMDB's and the journal's as they are now (a consistent
        state, not necessarily ``txn``'s)."""
        if not self._readonly:
            return list(txn.cursor(db=self._dbs.wm))
        return [(k, seal(v)) for k, v in WmView(self._follow(), self._tenant).items()]

    def reset(self, dbs: Databases) -> None:
        """The shard reopened its environment, whose databases are ``dbs``: forget the mirror."""
        self._dbs = dbs
        self._mirror, self._seen = None, ()

    def close(self) -> None:
        """Close the journal's descriptor; nothing is folded after (idempotent)."""
        self._closed = True
        self._close_fd()


def _folded(txn: lmdb.Transaction[bytes], dbs: Databases) -> int:
    """The journal generation LMDB has folded (0: none yet)."""
    raw = txn.get(WM_FOLDED, db=dbs.meta)
    return 0 if raw is None else int(unpackb(raw))


def _stat(path: str) -> tuple[int, ...]:
    """What tells a journal file's versions apart (empty: no file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ()
    return st.st_ino, st.st_size, st.st_mtime_ns


# ---------------------------------------------------------------------------- the shard's calls
class _Host(Protocol):
    """What :class:`WorkingMemoryCalls` uses of the shard it is mixed into."""

    memory_changed: bool
    _wm: WorkingMemory
    _lock: RWLock

    def _acquire_write(self) -> None: ...
    def _begin_read(self, *, inactive_ok: bool = False) -> None: ...
    def wm_view(self) -> WmView: ...


class WorkingMemoryCalls:
    """A shard's calls on its working memory (``Shard`` mixes them in), under the shard's
    lock as its other calls: writes hold it alone, reads shared."""

    def wm_write(self: _Host, ops: object) -> None:
        """Apply ``(key, value or None)`` puts and deletes as one journal record
        (:meth:`WorkingMemory.append`): after a process kill all of it is there or none.

        :raises InvalidArgument: a malformed operation (checked before anything is written).
        :raises ReadOnlyStore, TenantInactive: a read-only shard, a deactivated tenant.
        """
        batch = self._wm.check(ops)
        self._acquire_write()
        try:
            if self._wm.append(batch):
                self.memory_changed = True
        finally:
            self._lock.release_write()

    def wm_update(self: _Host, update: Callable[[WmView], tuple[object, R]]) -> R:
        """``update(view)`` returns ``(ops, result)``: the ops are applied as :meth:`wm_write`
        applies them, and the result returned, all under the lock held alone, so that a
        read-modify-write of working memory (a log's next position) is atomic. Nothing is
        written when ``update`` raises.

        :raises InvalidArgument: a malformed operation (nothing is written).
        :raises ReadOnlyStore, TenantInactive: a read-only shard, a deactivated tenant.
        """
        self._wm.check(())  # a read-only shard refuses before anything runs
        self._acquire_write()
        try:
            ops, out = update(self.wm_view())
            batch = self._wm.check(ops)
            if batch and self._wm.append(batch):
                self.memory_changed = True
            return out
        finally:
            self._lock.release_write()

    def wm_read(self: _Host, read: Callable[[WmView], R]) -> R:
        """``read(view)`` of working memory as it is now (:meth:`wm_view`), under the shared lock.

        :raises TenantInactive: a deactivated tenant.
        """
        self._begin_read()
        try:
            return read(self.wm_view())
        finally:
            self._lock.release_read()

    def wm_view(self: _Host) -> WmView:
        """Working memory as it is now, journaled writes included; call it holding the lock
        (a call, a read view: a writer's mirror changes only under the lock alone)."""
        view = self._wm.view()
        if self._wm.moved():  # loaded, or grown: count the shard's memory again
            self.memory_changed = True
        return view

    def wm_stored(self: _Host, txn: lmdb.Transaction[bytes]) -> list[tuple[bytes, bytes]]:
        """Working memory's entries as stored (values sealed) for an export reading ``txn``
        (:meth:`WorkingMemory.stored`)."""
        return self._wm.stored(txn)

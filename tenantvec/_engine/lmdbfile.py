"""Check an LMDB data file (``data.mdb``) without mapping it.

LMDB maps its data file and trusts what it finds there. A truncated file makes the first
touch of a page past its end raise SIGBUS, and a page whose header is wrong trips an
assertion (SIGABRT) or an out-of-bounds read: either kills the whole process, which
serves every tenant. :func:`check_data_file` reads the file with ``pread`` and walks what
a reader of the newest snapshot can reach, so that a damaged tenant is refused with an
error instead of taking the host down.

The layout is LMDB 0.9's (``mdb.c``) for 64-bit little-endian builds (``pgno_t`` and
``txnid_t`` are 64-bit, ``MDB_DEVEL`` off):

- page header, 16 bytes: ``mp_pgno`` u64, ``mp_pad`` u16, ``mp_flags`` u16, then
  ``mp_lower`` and ``mp_upper`` u16 (branch and leaf pages; the node count is
  ``(mp_lower - 16) / 2``, followed by that many u16 node offsets) or ``mp_pages`` u32
  (the first page of an overflow run, which holds one big value);
- node, 8 bytes then the key: ``mn_lo`` u16, ``mn_hi`` u16, ``mn_flags`` u16,
  ``mn_ksize`` u16. A branch node's child page is ``lo | hi << 16 | flags << 32``; a leaf
  node's data size is ``lo | hi << 16`` and its data follows the key: the value, or the
  first page of its overflow run (``F_BIGDATA``), or an ``MDB_db`` (``F_SUBDATA``: a named
  database in the main database, or the duplicates of a key in a ``MDB_DUPSORT``
  database; ``F_DUPDATA`` alone is an inline sub-page of duplicates);
- ``MDB_db``, 48 bytes: ``md_pad`` u32, ``md_flags`` u16, ``md_depth`` u16, branch, leaf
  and overflow page counts, ``md_entries`` and ``md_root``, each u64;
- pages 0 and 1 are meta pages; after their header, ``MDB_meta``: ``mm_magic``
  (0xBEEFC0DE) u32, ``mm_version`` (1) u32, ``mm_address`` u64, ``mm_mapsize`` u64, the
  free-page database and the main database (two ``MDB_db``; the page size is the free
  database's ``md_pad``), ``mm_last_pg`` u64 and ``mm_txnid`` u64. Transaction N writes
  meta page N % 2; readers use the one with the higher txnid.

Concurrent writers. LMDB commits by writing the new pages, then the meta page; pages a
committed snapshot can reach are never overwritten while that snapshot is the newest.
So the walk follows only the newest meta; when it finds damage and the metas have moved
on meanwhile (a writer committed, and may have reused pages of the snapshot walked), it
checks again. Pages past the end of the file are damage only when the snapshot reaches
them: LMDB does not write pages freed in the same transaction that allocated them, so
the file may end before ``mm_last_pg``.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

log = logging.getLogger("tenantvec")

__all__ = ["check_data_file"]

MAGIC = 0xBEEFC0DE
DATA_VERSION = 1
PAGEHDRSZ = 16
NODESIZE = 8
P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2, P_SUBP = 0x01, 0x02, 0x04, 0x08, 0x20, 0x40
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
MDB_DUPSORT, MDB_INTEGERKEY, MDB_DUPFIXED = 0x04, 0x08, 0x10
_DB_FLAGS = 0x7E  # REVERSEKEY DUPSORT INTEGERKEY DUPFIXED INTEGERDUP REVERSEDUP
P_INVALID = (1 << 64) - 1
CURSOR_STACK = 32  # LMDB's deepest tree
MAX_PAGESIZE = 0x8000

_HDR = struct.Struct("<QHHHH")
_META = struct.Struct("<IIQQ")  # magic, version, address, mapsize; the two MDB_db follow
_DB = struct.Struct("<IHHQQQQQ")  # pad, flags, depth, branch, leaf, overflow, entries, root
_TAIL = struct.Struct("<QQ")  # last_pg, txnid
_META_SIZE = PAGEHDRSZ + _META.size + 2 * _DB.size + _TAIL.size
_HDR_DTYPE = np.dtype([("pgno", "<u8"), ("pad", "<u2"), ("flags", "<u2"), ("lower", "<u2"), ("upper", "<u2")])
_FOUR = np.arange(4)

#: Size of a read buffer: a data file up to this size is read at once, a larger one a
#: buffer's worth of pages at a time (a few buffers are kept for the next calls).
CHUNK_BYTES = 1 << 20
_POOL_MAX = 4
#: Pages read and checked in full; past this, leaves of named databases are sampled.
FULL_WALK_PAGES = 1 << 18
#: Leaf pages checked at least, per level, once the budget is spent.
SAMPLE_LEAVES = 4096
#: Times the file is checked again when it shows damage while a writer commits.
_RETRIES = 3

# tree kinds
_MAIN, _FREE, _PLAIN, _DUPSORT, _DUPS = range(5)


class _Damage(Exception):
    """What is wrong with the file (the message is a sentence)."""


@dataclass(frozen=True)
class _Db:
    flags: int
    depth: int
    entries: int
    root: int


@dataclass(frozen=True)
class _Meta:
    txnid: int
    psize: int
    last_pg: int
    free: _Db
    main: _Db


@dataclass(frozen=True)
class _Tree:
    name: str
    kind: int
    flags: int


def check_data_file(path: str, *, cached: bool = True, full: bool = False) -> str | None:
    """Check the LMDB data file at ``path`` without mapping it; return a sentence saying
    what is wrong, or ``None`` when every page a reader can reach is sane.

    Checked: both meta pages (header, magic, version, page size, roots); the file holds
    every page the newest snapshot reaches (truncation); each of those pages (the main
    database, the named databases it lists and their duplicate trees, the free-page
    database, overflow runs) has its own page number and the type its depth calls for,
    node offsets, keys and values inside the page, child pages within the snapshot and
    reached once, free-page lists that match their size. Key order and the values
    themselves are not checked. A snapshot of more than :data:`FULL_WALK_PAGES` pages has
    its branch pages, main and free-page databases and overflow runs checked in full and
    a sample of its other leaves (unless ``full``); truncation is caught either way.

    With ``cached``, a file this process found sane before and that has not changed
    since (same inode, size, times and meta pages) is not walked again.

    :raises OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY)
    why: str | None = None
    try:
        for attempt in range(_RETRIES + 1):
            metas = _read_metas(fd)
            key, sig = _signature(fd, metas)
            if isinstance(metas, str):
                why = metas
            elif cached and _seen.get(key) == sig:
                return None
            else:
                why = _check_snapshot(fd, max(metas, key=lambda m: m.txnid), full)
            if why is None:
                _remember(key, sig)
                return None
            again = _read_metas(fd)
            if again == metas:
                return why
            # a writer committed while we looked: the pages walked may have been reused
            log.debug("%s changed while it was checked (attempt %d): %s", path, attempt + 1, why)
            time.sleep(0.001 * (attempt + 1))
        log.info("%s kept changing while it was checked; not calling it damaged: %s", path, why)
        return None
    finally:
        os.close(fd)


_seen: OrderedDict[tuple[int, int], tuple] = OrderedDict()  # (dev, inode) -> signature found sane
_seen_lock = threading.Lock()
_SEEN_MAX = 4096


def _signature(fd: int, metas: object) -> tuple[tuple[int, int], tuple]:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns, st.st_ctime_ns, metas)


def _remember(key: tuple[int, int], sig: tuple) -> None:
    with _seen_lock:
        _seen[key] = sig
        _seen.move_to_end(key)
        while len(_seen) > _SEEN_MAX:
            _seen.popitem(last=False)


# ---------------------------------------------------------------------------- metas
def _read_metas(fd: int) -> tuple[_Meta, _Meta] | str:
    """Both metas, or why they cannot be used (LMDB itself needs both to open)."""
    size = os.fstat(fd).st_size
    first = os.pread(fd, _META_SIZE, 0)
    if len(first) < _META_SIZE:
        return f"the file has {size} bytes, too few for an LMDB meta page (truncated)"
    meta0 = _parse_meta(first, 0)
    if isinstance(meta0, str):
        return meta0
    second = os.pread(fd, _META_SIZE, meta0.psize)
    if len(second) < _META_SIZE:
        return f"the file has {size} bytes, too few for its two meta pages of {meta0.psize} bytes (truncated)"
    meta1 = _parse_meta(second, 1)
    if isinstance(meta1, str):
        return meta1
    if meta1.psize != meta0.psize:
        return f"the meta pages disagree on the page size ({meta0.psize} and {meta1.psize})"
    return meta0, meta1


def _parse_meta(raw: bytes, pgno: int) -> _Meta | str:
    hdr_pgno, _pad, flags, _lo, _up = _HDR.unpack_from(raw, 0)
    where = f"meta page {pgno}"
    if hdr_pgno != pgno or flags != P_META:
        return f"{where} has page number {hdr_pgno} and flags {flags:#x} (zeroed or overwritten)"
    magic, version, _addr, _mapsize = _META.unpack_from(raw, PAGEHDRSZ)
    if magic != MAGIC:
        return f"{where} has magic {magic:#010x}, not LMDB's {MAGIC:#010x}"
    if version != DATA_VERSION:
        return f"{where} has data version {version}, expected {DATA_VERSION}"
    off = PAGEHDRSZ + _META.size
    free = _DB.unpack_from(raw, off)
    main = _DB.unpack_from(raw, off + _DB.size)
    last_pg, txnid = _TAIL.unpack_from(raw, off + 2 * _DB.size)
    psize = free[0]
    if psize < 512 or psize > MAX_PAGESIZE or psize & (psize - 1):
        return f"{where} has page size {psize}"
    if last_pg < 1 or last_pg >= 1 << 48:
        return f"{where} has last page {last_pg}"
    dbs = []
    for name, db in (("free-page", free), ("main", main)):
        parsed = _parse_db(db[1], db[2], db[6], db[7], last_pg)
        if isinstance(parsed, str):
            return f"{where}: the {name} database {parsed}"
        dbs.append(parsed)
    return _Meta(txnid=txnid, psize=psize, last_pg=last_pg, free=dbs[0], main=dbs[1])


def _parse_db(flags: int, depth: int, entries: int, root: int, last_pg: int) -> _Db | str:
    if flags & ~_DB_FLAGS & 0xFFFF:
        return f"has flags {flags:#x}"
    if depth > CURSOR_STACK:
        return f"has depth {depth}"
    if depth == 0:
        if root != P_INVALID:
            return f"has depth 0 but root page {root}"
    elif not 2 <= root <= last_pg:
        return f"has root page {root} (the last page is {last_pg})"
    return _Db(flags=flags, depth=depth, entries=entries, root=root)


# ---------------------------------------------------------------------------- pages
class _Pages:
    """Reads pages with pread into a reused buffer; knows which pages the file holds and
    which the walk reached.

    A file that fits the buffer (:data:`CHUNK_BYTES`) is read once; a larger one in
    batches of at most a buffer's worth of pages. ``read`` returns the buffer and each
    page's offset in it, valid until the next ``read``.
    """

    def __init__(self, fd: int, meta: _Meta, buf: np.ndarray) -> None:
        self.fd = fd
        self.psize = meta.psize
        self.last_pg = meta.last_pg
        self.size = os.fstat(fd).st_size
        self.in_file = self.size // self.psize  # pages wholly inside the file
        self.owned = np.zeros(meta.last_pg + 1, dtype=bool)  # pages reached so far
        self.buf = buf
        self.batch = max(1, len(buf) // self.psize)  # pages one read may ask for
        span = min(self.in_file, meta.last_pg + 1)
        self.whole = span <= self.batch
        if self.whole:
            self._read_into(buf[:span * self.psize], 0)

    def claim(self, pgnos: np.ndarray, owner: Callable[[int], str]) -> None:
        """Mark pages as reached; damage if one lies past the file or was reached before.
        ``owner(i)`` names what reaches ``pgnos[i]``."""
        if not len(pgnos):
            return
        past = pgnos >= self.in_file
        if past.any():
            i = int(np.flatnonzero(past)[0])
            raise _Damage(
                f"{owner(i)} uses page {int(pgnos[i])} but the file has {self.size} bytes ({self.in_file} pages of "
                f"{self.psize} bytes; the snapshot's last page is {self.last_pg}): the file is truncated"
            )
        again = self.owned[pgnos]
        # sort-based, not np.unique: its first call imports numpy.ma (~20 ms on a cold open)
        if not again.any() and (len(pgnos) == 1 or not _has_duplicate(pgnos)):
            self.owned[pgnos] = True
            return
        pg = int(pgnos[np.flatnonzero(again)[0]]) if again.any() else _first_duplicate(pgnos)
        raise _Damage(f"page {pg} is reached twice (again by {owner(int(np.flatnonzero(pgnos == pg)[-1]))}): "
                      "the B-tree links are damaged")

    def batches(self, pgnos: np.ndarray) -> Iterator[slice]:
        """Slices of ``pgnos`` (sorted) to read at once: the pages within one buffer's
        span of the file when they are dense enough, else a buffer's worth of pages."""
        n, step = len(pgnos), self.batch
        if self.whole or n <= 1:
            yield slice(0, n)
            return
        ends = np.searchsorted(pgnos, pgnos + step)  # first page past a buffer's span
        s = 0
        while s < n:
            e = int(ends[s])
            if e - s < step // 2:
                e = min(n, s + step)
            yield slice(s, e)
            s = e

    def read(self, pgnos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pages ``pgnos`` (sorted, distinct, inside the file, at most ``batch`` of
        them): the buffer and the offset of each page in it."""
        ps = self.psize
        if self.whole:
            return self.buf, pgnos * ps
        first = int(pgnos[0])
        span = int(pgnos[-1]) - first + 1
        if span <= self.batch:  # one read of the whole span
            self._read_into(self.buf[:span * ps], first)
            return self.buf, (pgnos - first) * ps
        breaks = np.flatnonzero(np.diff(pgnos) != 1) + 1
        starts = [0, *breaks.tolist()]
        ends = [*breaks.tolist(), len(pgnos)]
        for s, e in zip(starts, ends):
            self._read_into(self.buf[s * ps:e * ps], int(pgnos[s]))
        return self.buf, np.arange(len(pgnos), dtype=np.int64) * ps

    def read_bytes(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (inside pages already claimed); leaves the buffer alone."""
        raw = os.pread(self.fd, n, offset)
        if len(raw) != n:
            raise _Damage(f"the file ends inside byte range {offset}..{offset + n}: it is truncated")
        return raw

    def _read_into(self, buf: np.ndarray, pgno: int) -> None:
        want, done = buf.nbytes, 0
        view = buf.data.cast("B")
        while done < want:  # preadv may return less for large reads
            got = os.preadv(self.fd, [view[done:]], pgno * self.psize + done)
            if got <= 0:  # the file shrank under us
                raise _Damage(f"the file ends inside page {pgno + done // self.psize}: it is truncated")
            done += got


_pool: list[np.ndarray] = []
_pool_lock = threading.Lock()


def _take_buffer() -> np.ndarray:
    """A read buffer of CHUNK_BYTES (kept between calls: a fresh one costs a page fault
    per 4 KiB, which is more than reading into it)."""
    with _pool_lock:
        if _pool:
            return _pool.pop()
    return np.empty(CHUNK_BYTES, dtype=np.uint8)


def _give_buffer(buf: np.ndarray) -> None:
    with _pool_lock:
        if len(_pool) < _POOL_MAX:
            _pool.append(buf)


def _has_duplicate(pgnos: np.ndarray) -> bool:
    s = np.sort(pgnos)
    return bool((s[1:] == s[:-1]).any())


def _first_duplicate(pgnos: np.ndarray) -> int:
    s = np.sort(pgnos)
    return int(s[np.flatnonzero(s[1:] == s[:-1])[0]])


def _u16(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Little-endian u16 values at even byte ``offsets`` of ``flat``, as int64."""
    return flat.view("<u2")[offsets >> 1].astype(np.int64)


def _u64(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Little-endian u64 values at byte ``offsets`` (any alignment) of ``flat``."""
    return np.ascontiguousarray(flat[np.asarray(offsets)[:, None] + np.arange(8)]).view("<u8").ravel()


# ---------------------------------------------------------------------------- walk
def _check_snapshot(fd: int, meta: _Meta, full: bool) -> str | None:
    buf = _take_buffer()
    try:
        walk = _Walk(fd, meta, buf)
        if full:
            walk.budget = meta.last_pg + 1
        walk.run()
    except _Damage as exc:
        return str(exc)
    finally:
        _give_buffer(buf)
    return None



def _overflow_free_list(page: int, what: str) -> str:
    """Names a free-page list held on overflow page ``page`` in a damage message."""
    return f"the free-page list on overflow page {page} {what}"

class _Walk:
    """Breadth-first over every tree of one snapshot, one level of all trees at a time.

    Branch pages are always checked. Leaf pages are checked while the walk has read at
    most :data:`FULL_WALK_PAGES` pages; past that, the leaves of the named databases are
    claimed (in the file, reached once) and an evenly spread sample of them is read and
    checked. Truncation is caught either way: every page between the end of the file and
    the snapshot's last page must be on a free-page list.
    """

    def __init__(self, fd: int, meta: _Meta, buf: np.ndarray) -> None:
        self.meta = meta
        self.pages = _Pages(fd, meta, buf)
        self.ps = meta.psize
        self.trees: list[_Tree] = []
        self.kinds = np.zeros(0, dtype=np.int64)  # per tree: its kind
        self.fixed = np.zeros(0, dtype=bool)  # per tree: leaves are fixed-size (P_LEAF2)
        # values on overflow pages met at this level: page, size, free list?, leaf page, tree, node
        self.big: list[tuple[np.ndarray, ...]] = []
        self.free_ids: list[np.ndarray] = []
        self.checked = 0  # pages read and checked
        self.budget = FULL_WALK_PAGES  # pages to check in full before sampling leaves
        # the frontier: page numbers, levels left below them (1 = leaf), tree index
        self.pg: list[np.ndarray] = []
        self.left: list[np.ndarray] = []
        self.tree: list[np.ndarray] = []
        self.add_tree("free-page database", _FREE, meta.free)
        self.add_tree("main database", _MAIN, meta.main)

    def add_tree(self, name: str, kind: int, db: _Db) -> None:
        if db.depth == 0:
            return
        self.trees.append(_Tree(name, kind, db.flags))
        self.kinds = np.append(self.kinds, kind)
        self.fixed = np.append(self.fixed, kind == _DUPS and bool(db.flags & MDB_DUPFIXED))
        self.pg.append(np.array([db.root], dtype=np.int64))
        self.left.append(np.array([db.depth], dtype=np.int64))
        self.tree.append(np.array([len(self.trees) - 1], dtype=np.int64))

    def name(self, t: int) -> str:
        return self.trees[int(t)].name

    def run(self) -> None:
        while self.pg:
            if len(self.pg) == 1:
                pg, left, tree = self.pg[0], self.left[0], self.tree[0]
            else:
                pg, left, tree = (np.concatenate(a) for a in (self.pg, self.left, self.tree))
            if len(pg) > 1:  # read in file order
                order = np.argsort(pg, kind="stable")
                pg, left, tree = pg[order], left[order], tree[order]
            self.pg, self.left, self.tree = [], [], []
            self.pages.claim(pg, partial(self._tree_name, tree))
            pg, left, tree = self._budget(pg, left, tree)
            for b in self.pages.batches(pg):
                self._level(pg[b], left[b], tree[b])
            self.checked += len(pg)
            if self.big:
                self._overflow(*(np.concatenate(a) for a in zip(*self.big)))
                self.big = []
        self._check_tail()

    def _budget(self, pg: np.ndarray, left: np.ndarray, tree: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pages of this level to read: all, or past the budget a sample of the leaves
        of named databases (the main and free-page databases are always read)."""
        room = self.budget - self.checked
        if len(pg) <= room:
            return pg, left, tree
        kinds = self.kinds[tree]
        must = (left > 1) | (kinds == _MAIN) | (kinds == _FREE)
        rest = np.flatnonzero(~must)
        take = max(room - int(must.sum()), SAMPLE_LEAVES)
        if len(rest) <= take:
            return pg, left, tree
        keep = must.copy()
        keep[rest[np.linspace(0, len(rest) - 1, take).astype(np.int64)]] = True
        log.debug("LMDB check: %d leaf pages at this level, checking %d of them", len(rest), take)
        return pg[keep], left[keep], tree[keep]

    def _check_tail(self) -> None:
        """Pages between the end of the file and the snapshot's last page: LMDB leaves
        them unwritten only when they are free, so any other one was cut off."""
        first = self.pages.in_file
        if first > self.meta.last_pg:
            return
        tail = np.arange(first, self.meta.last_pg + 1, dtype=np.int64)
        free = np.concatenate(self.free_ids) if self.free_ids else np.zeros(0, dtype=np.int64)
        free.sort()  # a sorted lookup, not np.isin (which would import numpy.ma on first use)
        at = np.minimum(np.searchsorted(free, tail), max(len(free) - 1, 0))
        lost = tail if not len(free) else tail[free[at] != tail]
        if len(lost):
            raise _Damage(
                f"the file has {self.pages.size} bytes ({first} pages of {self.ps} bytes) but the snapshot's pages "
                f"reach {self.meta.last_pg}, and page {int(lost[0])} past the end is not free: the file is truncated"
            )

    def _tree_name(self, tree: np.ndarray, i: int) -> str:
        """``the <name of the tree of page i>`` (who claims a page)."""
        return f"the {self.name(tree[i])}"

    def _node_msg(self, pg: np.ndarray, tree: np.ndarray, r: int, i: int, what: str) -> str:
        return f"node {int(i)} of page {int(pg[r])} (the {self.name(tree[r])}) {what}"

    # one batch of pages of one level
    def _level(self, pg: np.ndarray, left: np.ndarray, tree: np.ndarray) -> None:
        ps = self.ps
        flat, base = self.pages.read(pg)
        hdr = flat.view(_HDR_DTYPE)[base >> 4]
        hdr_pg = hdr["pgno"]
        flags = hdr["flags"].astype(np.int64)
        lower = hdr["lower"].astype(np.int64)
        upper = hdr["upper"].astype(np.int64)
        kinds = self.kinds[tree]
        want = np.where(left > 1, P_BRANCH, np.where(self.fixed[tree], P_LEAF | P_LEAF2, P_LEAF))
        bad = (hdr_pg != pg.astype(np.uint64)) | (flags != want)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _Damage(
                f"page {int(pg[i])} of the {self.name(tree[i])} should be a {_kind_name(int(want[i]))} page but "
                f"its header has page number {int(hdr_pg[i])} and flags {int(flags[i]):#x} (zeroed or overwritten)"
            )
        nkeys = (lower - PAGEHDRSZ) >> 1
        min_keys = np.where(left > 1, np.where(kinds == _FREE, 1, 2), 1)
        bad = (lower < PAGEHDRSZ) | (lower & 1 == 1) | (upper > ps) | (lower > upper) | (nkeys < min_keys)
        leaf2 = want == (P_LEAF | P_LEAF2)
        if leaf2.any():
            pad = hdr["pad"].astype(np.int64)
            bad |= leaf2 & ((pad == 0) | (PAGEHDRSZ + nkeys * pad > ps))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _Damage(
                f"page {int(pg[i])} of the {self.name(tree[i])} has bounds lower={int(lower[i])} "
                f"upper={int(upper[i])} ({int(nkeys[i])} keys) in a {ps}-byte page"
            )
        if leaf2.all():
            return
        rows = np.flatnonzero(~leaf2)
        counts = nkeys[rows]
        row = np.repeat(rows, counts)
        idx = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
        ptr = _u16(flat, base[row] + PAGEHDRSZ + 2 * idx)
        bad = (ptr < upper[row]) | (ptr > ps - NODESIZE) | (ptr & 1 == 1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _Damage(self._node_msg(pg, tree, row[j], idx[j], f"has offset {int(ptr[j])}"))
        node = base[row] + ptr
        fields = flat.view("<u2")[(node >> 1)[:, None] + _FOUR].astype(np.int64)
        lo, hi, nflags, ksize = fields.T
        key_end = ptr + NODESIZE + ksize
        branch = left[row] > 1
        dsize = lo | (hi << 16)
        big = ~branch & (nflags & F_BIGDATA == F_BIGDATA)
        end = key_end + np.where(branch, 0, np.where(big, 8, dsize))
        bad = end > ps
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _Damage(self._node_msg(pg, tree, row[j], idx[j], f"runs to byte {int(end[j])} of the page"))
        if branch.any():
            b = np.flatnonzero(branch)
            child = lo[b] | (hi[b] << 16) | (nflags[b] << 32)
            bad = (child < 2) | (child > self.meta.last_pg)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise _Damage(self._node_msg(
                    pg, tree, row[b[k]], idx[b[k]], f"points to page {int(child[k])} (the last page is {self.meta.last_pg})"
                ))
            self.pg.append(child)
            self.left.append(left[row[b]] - 1)
            self.tree.append(tree[row[b]])
        if not branch.all():
            f = np.flatnonzero(~branch)
            self._leaves(flat, pg, tree, row[f], idx[f], nflags[f], ksize[f], dsize[f], (base[row] + key_end)[f])

    def _leaves(self, flat: np.ndarray, pg: np.ndarray, tree: np.ndarray, row: np.ndarray, idx: np.ndarray,
                nflags: np.ndarray, ksize: np.ndarray, dsize: np.ndarray, data: np.ndarray) -> None:
        kinds = self.kinds[tree[row]]
        plain = not nflags.any()  # the common case: no node has flags
        if plain:
            allowed = np.ones(len(row), dtype=bool)
        else:
            allowed = (nflags == 0) | (nflags == F_BIGDATA)
            allowed |= (kinds == _MAIN) & (nflags == F_SUBDATA)
            allowed |= (kinds == _DUPSORT) & ((nflags == F_DUPDATA) | (nflags == F_DUPDATA | F_SUBDATA))
            allowed &= ~((kinds == _DUPS) & (nflags != 0))  # duplicates are keys only
        free = kinds == _FREE
        if free.any():
            allowed &= ~(free & (ksize != 8))  # free lists are keyed by txnid
        if not allowed.all():
            j = int(np.flatnonzero(~allowed)[0])
            raise _Damage(self._node_msg(
                pg, tree, row[j], idx[j], f"has flags {int(nflags[j]):#x} and a {int(ksize[j])}-byte key"
            ))
        big = nflags == F_BIGDATA
        if not plain and big.any():
            ov = _u64(flat, data[big]).astype(np.int64)
            bad = (ov < 2) | (ov > self.meta.last_pg)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                j = int(np.flatnonzero(big)[k])
                raise _Damage(self._node_msg(
                    pg, tree, row[j], idx[j], f"has its value on page {int(ov[k])}, past the last page {self.meta.last_pg}"
                ))
            r = row[big]
            self.big.append((ov, dsize[big], free[big], pg[r], tree[r], idx[big]))
        if not plain:
            sub = (nflags & F_SUBDATA) != 0
            if sub.any():
                self._subdbs(flat, pg, tree, row[sub], idx[sub], ksize[sub], dsize[sub], data[sub])
            for j in np.flatnonzero(nflags == F_DUPDATA).tolist():
                self._subpage(flat, pg, tree, int(row[j]), int(idx[j]), int(dsize[j]), int(data[j]))
        for j in np.flatnonzero(free & ~big).tolist():
            n, off = int(dsize[j]), int(data[j])
            self._free_list(flat[off:off + n].tobytes(), partial(self._node_msg, pg, tree, int(row[j]), int(idx[j])))

    def _overflow(self, ov: np.ndarray, dsize: np.ndarray, free: np.ndarray, leaf: np.ndarray, tree: np.ndarray,
                  node: np.ndarray) -> None:
        """Values on overflow runs: each run's first page is an overflow page of its own
        number, long enough for the value, inside the snapshot and reached once."""
        ps, last = self.ps, self.meta.last_pg
        need = (PAGEHDRSZ - 1 + dsize) // ps + 1
        order = np.argsort(ov, kind="stable")
        ov, need, dsize, free, leaf, tree, node = (a[order] for a in (ov, need, dsize, free, leaf, tree, node))

        def owner(i: int) -> str:
            return f"the value of node {int(node[i])} of page {int(leaf[i])} (the {self.name(tree[i])})"

        self.pages.claim(ov, owner)  # in the file, and one value per page
        h_pg = np.empty(len(ov), dtype=np.uint64)
        h_flags = np.empty(len(ov), dtype=np.int64)
        h_pages = np.empty(len(ov), dtype=np.int64)
        for b in self.pages.batches(ov):
            hf, hb = self.pages.read(ov[b])
            h_pg[b] = hf.view("<u8")[hb >> 3]
            h_flags[b] = _u16(hf, hb + 10)
            h_pages[b] = _u16(hf, hb + 12) | (_u16(hf, hb + 14) << 16)
        bad = (h_pg != ov.astype(np.uint64)) | (h_flags != P_OVERFLOW)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _Damage(
                f"overflow page {int(ov[j])}, holding {owner(j)}, has page number {int(h_pg[j])} and flags "
                f"{int(h_flags[j]):#x} (zeroed or overwritten)"
            )
        bad = (h_pages < need) | (ov + h_pages - 1 > last)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _Damage(
                f"overflow page {int(ov[j])}, holding {owner(j)}, says its run has {int(h_pages[j])} pages; the "
                f"value needs {int(need[j])} and the last page is {last}"
            )
        self.pages.owned[ov] = False  # claimed again with their runs
        first = np.repeat(np.arange(len(ov)), h_pages)
        run = ov[first] + (np.arange(len(first)) - np.repeat(np.cumsum(h_pages) - h_pages, h_pages))
        self.pages.claim(run, lambda i: owner(int(first[i])))
        self.checked += len(ov)
        for j in np.flatnonzero(free).tolist():
            raw = self.pages.read_bytes(int(ov[j]) * ps + PAGEHDRSZ, int(dsize[j]))
            self._free_list(raw, partial(_overflow_free_list, int(ov[j])))

    def _subdbs(self, flat: np.ndarray, pg: np.ndarray, tree: np.ndarray, row: np.ndarray, idx: np.ndarray,
                ksize: np.ndarray, dsize: np.ndarray, data: np.ndarray) -> None:
        bad = dsize != _DB.size
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _Damage(self._node_msg(pg, tree, row[j], idx[j], f"holds a {int(dsize[j])}-byte database record"))
        for j in range(len(row)):
            r, parent = int(row[j]), self.trees[int(tree[row[j]])]
            off = int(data[j])
            _pad, flags, depth, _b, _l, _o, entries, root = _DB.unpack_from(flat[off:off + _DB.size].tobytes())
            db = _parse_db(flags, depth, entries, root, self.meta.last_pg)
            if parent.kind == _MAIN:
                name = flat[off - int(ksize[j]):off].tobytes().decode("utf-8", "replace")
                label = f"database {name!r}"
                kind = _DUPSORT if not isinstance(db, str) and db.flags & MDB_DUPSORT else _PLAIN
            else:
                label, kind = f"duplicates of a key in the {parent.name}", _DUPS
            if isinstance(db, str):
                raise _Damage(self._node_msg(pg, tree, r, int(idx[j]), f"describes a {label} that {db}"))
            self.add_tree(label, kind, _Db(parent.flags if kind == _DUPS else db.flags, db.depth, db.entries, db.root))

    def _subpage(self, flat: np.ndarray, pg: np.ndarray, tree: np.ndarray, r: int, i: int, dsize: int, data: int) -> None:
        ok = dsize >= PAGEHDRSZ
        if ok:
            _pgno, _pad, flags, lower, upper = _HDR.unpack_from(flat[data:data + PAGEHDRSZ].tobytes())
            ok = flags & P_SUBP and not flags & ~(P_LEAF | P_LEAF2 | P_SUBP | 0x10) and PAGEHDRSZ <= lower <= upper <= dsize
        if not ok:
            raise _Damage(self._node_msg(pg, tree, r, i, f"holds a damaged page of duplicates ({dsize} bytes)"))

    def _free_list(self, raw: bytes, where: Callable[[str], str]) -> None:
        """A free-page list: a u64 count, then that many page numbers (the record may
        hold more room than the list: LMDB reserves room and fills less)."""
        n = len(raw)
        count = struct.unpack_from("<Q", raw)[0] if n >= 8 else -1
        if n % 8 or not 0 <= count <= n // 8 - 1:
            raise _Damage(where(f"holds a free-page list of {n} bytes that says it has {count} pages"))
        ids = np.frombuffer(raw, dtype="<u8", count=count, offset=8).astype(np.int64)
        if count and (int(ids.min()) < 2 or int(ids.max()) > self.meta.last_pg):
            raise _Damage(where(f"lists free page {int(ids.max())} (the last page is {self.meta.last_pg})"))
        self.free_ids.append(ids)


def _kind_name(flags: int) -> str:
    return {P_BRANCH: "branch", P_LEAF: "leaf", P_LEAF | P_LEAF2: "fixed-size leaf"}.get(flags, hex(flags))

"""Write transactions: one LMDB write transaction over a tenant's records and side databases.

Two layers live here, both below :class:`~tenantvec._engine.shard.Shard`:

* :func:`write_txn` / :class:`GrowingTxn` -- a write transaction that survives a full LMDB
  map. Every step is journaled; on ``MapFullError`` the transaction is aborted, the map
  doubled (waiting for the shard's long read transactions first) and the journal replayed
  in a fresh transaction. A step must therefore be a pure function of the transaction it
  is given and of the per-attempt state that ``fresh()`` returns.
* :class:`WriteTxn` -- what ``Tenant.transaction()`` hands to the layers above (the memory
  layer): record writes (``add``/``upsert``/``delete``: the steps of
  :mod:`tenantvec._engine.writes`), reads that see the transaction's own writes (``get``),
  and named side tables (``side("wm")``), all committed together or not at all. The
  shard holds its write lock for the whole transaction and mirrors the committed record
  changes into its index and in-memory records after the commit.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import lmdb

from .._types import Record
from ..errors import InvalidArgument, TenantVecError
from .checksum import open_side, seal
from .layout import SIDE_DBS
from .records import compile_where
from .writes import Staged, prepare_delete, prepare_put, stage_delete, stage_get, stage_put

if TYPE_CHECKING:
    from .._options import StoreOptions
    from .layout import Databases
    from .records import Compiled
    from .rwlock import RWLock
    from .wmlog import WmView

log = logging.getLogger("tenantvec")

#: LMDB's largest key (the default ``mdb_env_get_maxkeysize`` of py-lmdb builds).
MAX_KEY_BYTES = 511
#: The map never grows past this (1 TiB of address space per environment).
MAX_MAP_SIZE = 1 << 40

S = TypeVar("S")
R = TypeVar("R")


class GrowingTxn(Generic[S]):
    """One LMDB write transaction on ``env`` whose steps are replayed after a map growth.

    ``fresh()`` makes the per-attempt state each step receives (for a shard: the sequence
    number, the next label, the changes to publish); it is called again for a replay.
    With ``atomic_steps`` the state is copied (``copy.copy``) before each step and put
    back when the step fails, so a state type must copy whatever a step appends to.
    ``what`` names the environment in errors; ``gate`` is the shard's ``long_reads`` lock
    (growing the map invalidates every open transaction of ``env`` in this process).
    """

    __slots__ = ("_atomic", "_env", "_fresh", "_gate", "_steps", "_txn", "_what", "state")

    def __init__(self, env: lmdb.Environment, fresh: Callable[[], S], what: str, gate: RWLock | None = None,
                 *, atomic_steps: bool = False) -> None:
        self._env = env
        self._atomic = atomic_steps
        self._fresh = fresh
        self._what = what
        self._gate = gate
        self._steps: list[Callable[[lmdb.Transaction[bytes], S], Any]] = []
        self._txn: lmdb.Transaction[bytes] | None = env.begin(write=True)
        self.state = fresh()

    def run(self, step: Callable[[lmdb.Transaction[bytes], S], R]) -> R:
        """Run ``step(txn, state)`` in the transaction and journal it; returns its result.

        With ``atomic_steps`` a step runs in a nested transaction: when it raises, what it
        wrote is rolled back and the transaction stays usable (the step is not journaled).

        :raises TenantVecError: the map is at its size limit.
        """
        while True:
            parent = self._active()
            txn, before = parent, self.state
            if self._atomic:
                txn, before = self._env.begin(write=True, parent=parent), copy.copy(self.state)
            try:
                result = step(txn, self.state)
                if txn is not parent:
                    txn.commit()
            except lmdb.MapFullError:
                if txn is not parent:
                    txn.abort()
                self._grow()
                continue
            except BaseException:
                if txn is not parent:
                    txn.abort()
                    self.state = before
                raise
            self._steps.append(step)
            return result

    def commit(self) -> S:
        """Commit; returns the state the committed attempt built."""
        while True:
            txn = self._active()
            try:
                txn.commit()
            except lmdb.MapFullError:
                self._grow()
                continue
            self._txn = None
            return self.state

    def abort(self) -> None:
        """Abort the transaction (idempotent)."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    def current(self) -> lmdb.Transaction[bytes]:
        """The open LMDB transaction (for reads; writes go through :meth:`run`).

        :raises TenantVecError: the transaction was committed or aborted.
        """
        return self._active()

    def _active(self) -> lmdb.Transaction[bytes]:
        if self._txn is None:
            raise TenantVecError(f"{self._what}: the write transaction has ended")
        return self._txn

    def _grow(self) -> None:
        """Abort, double the map, and replay the journal in a new transaction."""
        self.abort()
        size = self._env.info()["map_size"]
        if size >= MAX_MAP_SIZE:
            raise TenantVecError(f"{self._what}: LMDB map is at its {size} byte limit") from None
        log.info("%s: growing LMDB map from %d to %d bytes", self._what, size, size * 2)
        if self._gate is None:
            self._env.set_mapsize(size * 2)
        else:
            with self._gate.write():
                self._env.set_mapsize(size * 2)
        self._txn = txn = self._env.begin(write=True)
        try:
            self.state = self._fresh()
            for step in self._steps:
                step(txn, self.state)
        except BaseException:
            self.abort()
            raise


def write_txn(env: lmdb.Environment, body: Callable[[lmdb.Transaction[bytes]], R], what: str,
              gate: RWLock | None = None) -> R:
    """Run ``body`` in a write transaction of ``env``, doubling the map and retrying when
    it is full; returns what ``body`` returns. ``what`` names the environment in errors;
    ``gate`` as for :class:`GrowingTxn`."""
    tx: GrowingTxn[None] = GrowingTxn(env, lambda: None, what, gate)
    try:
        result = tx.run(lambda txn, _state: body(txn))
        tx.commit()
    except BaseException:
        tx.abort()
        raise
    return result


class Stager(Protocol):
    """What a :class:`WriteTxn` needs from its shard (implemented by ``Shard``)."""

    tenant_id: str
    dim: int
    metric: str
    opts: StoreOptions

    @property
    def databases(self) -> Databases: ...
    def matching(self, txn: lmdb.Transaction[bytes], compiled: Compiled | None) -> Iterator[tuple[bytes, list]]: ...
    def side_db(self, name: str) -> Any: ...
    def wm_view(self) -> WmView: ...


def check_key(key: object, tenant: str, table: str) -> bytes:
    """A side table key as bytes. :raises InvalidArgument: not bytes, or not 1 to 511 bytes."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"tenant {tenant!r}: side table {table!r} keys are bytes, got {type(key).__name__}")
    key = bytes(key)
    if not 0 < len(key) <= MAX_KEY_BYTES:
        raise InvalidArgument(f"tenant {tenant!r}: side table {table!r} key must be 1 to {MAX_KEY_BYTES} bytes, "
                              f"got {len(key)}")
    return key


def check_value(value: object, tenant: str, table: str) -> bytes:
    """A side table value as bytes. :raises InvalidArgument: not bytes."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"tenant {tenant!r}: side table {table!r} values are bytes, got {type(value).__name__}")
    return bytes(value)


class _Reader(Protocol):
    tenant_id: str

    def read(self, fn: Callable[[lmdb.Transaction[bytes]], R]) -> R: ...


class SideView:
    """A named side table of one tenant's shard (``"wm"``: working memory, ``"audit"``)
    as one transaction sees it: byte keys (1 to 511 bytes) to byte values, sorted by key.

    Values are stored with a CRC32 (like records); a damaged one raises ``CorruptShard``.
    A side table an older shard opened read-only does not have yet reads as empty.
    """

    __slots__ = ("_db", "_name", "_tenant", "_tx")

    def __init__(self, tx: _Reader, name: str, db: Any) -> None:
        self._tx = tx
        self._name = name
        self._db = db
        self._tenant = tx.tenant_id

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key`` (the transaction's own writes included), or None."""
        k = check_key(key, self._tenant, self._name)
        if self._db is None:
            return None

        def read(txn: lmdb.Transaction[bytes]) -> bytes | None:
            raw = txn.get(k, db=self._db)
            return None if raw is None else open_side(raw, self._tenant, self._name, k)

        return self._tx.read(read)

    def items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in key order."""
        if not isinstance(prefix, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"tenant {self._tenant!r}: side table prefix must be bytes, got {prefix!r}")
        p = bytes(prefix)
        if self._db is None:
            return []

        def scan(txn: lmdb.Transaction[bytes]) -> list[tuple[bytes, bytes]]:
            cur = txn.cursor(db=self._db)
            out: list[tuple[bytes, bytes]] = []
            if not cur.set_range(p):
                return out
            for k, raw in cur:
                if not k.startswith(p):
                    break
                out.append((k, open_side(raw, self._tenant, self._name, k)))
            return out

        return self._tx.read(scan)


class SideTable(SideView):
    """A side table seen through a :class:`WriteTxn`: :class:`SideView` plus writes."""

    __slots__ = ("_writer",)

    def __init__(self, tx: WriteTxn, name: str, db: Any) -> None:
        super().__init__(tx, name, db)
        self._writer = tx

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` (replacing any value)."""
        k, v = check_key(key, self._tenant, self._name), seal(check_value(value, self._tenant, self._name))
        self._writer.step(lambda txn, _st: txn.put(k, v, db=self._db))

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; returns whether it was there."""
        k = check_key(key, self._tenant, self._name)
        return bool(self._writer.step(lambda txn, _st: txn.delete(k, db=self._db)))


class ReadTxn:
    """A consistent read-only view of a tenant's records and side tables (one LMDB read
    transaction), handed out by ``Tenant.reading()`` (``Shard.view``): what it shows does not change
    while it is open. Like any read call it holds the tenant's lock shared, so other
    readers go on and writes to the tenant wait until it ends: keep it short.
    """

    __slots__ = ("_shard", "_txn", "tenant_id")

    def __init__(self, shard: Stager, txn: lmdb.Transaction[bytes]) -> None:
        self._shard = shard
        self._txn = txn
        self.tenant_id = shard.tenant_id

    def read(self, fn: Callable[[lmdb.Transaction[bytes]], R]) -> R:
        """Run a read in the view's transaction."""
        return fn(self._txn)

    def get(self, ids: object, include_vectors: bool = False) -> list[Record]:
        """Records by id (in the order asked, unknown ids skipped)."""
        shard = self._shard
        return stage_get(self._txn, shard.databases, ids, include_vectors, shard.tenant_id, shard.dim)

    def side(self, name: str) -> SideView | WmView:
        """The side table ``name`` (see ``tenantvec._engine.layout.SIDE_DBS``). Working
        memory (``"wm"``) is served as it is when this is called, journaled writes
        included (``tenantvec._engine.wmlog``): a writer's cannot change while the view
        is open; a read-only opener's is the writer's state at the call.

        :raises InvalidArgument: no side table has that name.
        """
        if name not in SIDE_DBS:
            raise InvalidArgument(f"tenant {self.tenant_id!r}: no side table {name!r} (there are {list(SIDE_DBS)})")
        if name == "wm":
            return self._shard.wm_view()
        return SideView(self, name, self._shard.databases.side().get(name))


class WriteTxn:
    """One atomic write transaction over a tenant's records and side tables.

    Handed out by ``Tenant.transaction()`` as a context manager: everything done through
    it commits together when the ``with`` block ends normally, and nothing does when it
    raises. Reads through it (``get``, ``side(...).get``) see its own writes. While it is
    open it holds the tenant's write lock: calls on the same tenant from other threads
    wait, and a call on the same tenant through the ``Tenant`` handle from the thread
    that holds the transaction raises ``TenantVecError`` (use the transaction's methods).
    Validation errors raise before anything is written and leave the transaction usable.
    """

    __slots__ = ("_dbs", "_shard", "_tx", "sides", "tenant_id")

    def __init__(self, shard: Stager, tx: GrowingTxn[Staged]) -> None:
        self._shard = shard
        self._tx = tx
        self.tenant_id = shard.tenant_id
        self._dbs = shard.databases  # not reopened while the transaction holds the shard's lock
        self.sides: set[str] = set()  # names of the side tables the transaction used

    def step(self, step: Callable[[lmdb.Transaction[bytes], Any], R]) -> R:
        """Run one journaled write step (replayed if the map must grow)."""
        return self._tx.run(step)

    def read(self, fn: Callable[[lmdb.Transaction[bytes]], R]) -> R:
        """Run a read in the transaction (not journaled: it changes nothing, and a replay
        after a map growth rebuilds the same state it read)."""
        return fn(self._tx.current())

    def add(self, vectors: object, ids: object = None, documents: object = None, metadata: object = None) -> list[str]:
        """Add records, as ``Tenant.add``; returns their ids.

        :raises DuplicateId: an id exists (the transaction stays usable: nothing of this
            call was written).
        """
        return self._put(vectors, ids, documents, metadata, upsert=False)

    def upsert(self, vectors: object, ids: object, documents: object = None, metadata: object = None) -> list[str]:
        """Insert or replace records, as ``Tenant.upsert``; returns their ids."""
        return self._put(vectors, ids, documents, metadata, upsert=True)

    def _put(self, vectors: object, ids: object, documents: object, metadata: object, *, upsert: bool) -> list[str]:
        shard, dbs = self._shard, self._dbs
        batch = prepare_put(vectors, ids, documents, metadata, upsert=upsert, tenant=shard.tenant_id, dim=shard.dim,
                            metric=shard.metric)
        threshold = shard.opts.hnsw_threshold
        return self._tx.run(lambda txn, st: stage_put(txn, dbs, st, batch, shard.tenant_id, threshold))

    def delete(self, ids: object = None, where: object = None) -> int:
        """Delete records by id and/or filter, as ``Tenant.delete``; returns how many."""
        shard, dbs = self._shard, self._dbs
        target = prepare_delete(ids, where, shard.tenant_id)
        return self._tx.run(lambda txn, st: stage_delete(txn, dbs, st, target, shard.tenant_id, shard.dim,
                                                         shard.matching))

    def get(self, ids: object, include_vectors: bool = False) -> list[Record]:
        """Records by id (in the order asked, unknown ids skipped), this transaction's
        writes included."""
        shard, dbs = self._shard, self._dbs
        return self.read(lambda txn: stage_get(txn, dbs, ids, include_vectors, shard.tenant_id, shard.dim))

    def side(self, name: str) -> SideTable:
        """The side table ``name`` (see ``tenantvec._engine.layout.SIDE_DBS``).

        :raises InvalidArgument: no side table has that name.
        """
        table = SideTable(self, name, self._shard.side_db(name))
        self.sides.add(name)
        return table

    def matching_ids(self, where: object) -> list[str]:
        """Ids of the records matching ``where`` (``{}``: all), in insertion order, as the
        tenant's committed state shows them: call it before this transaction's own writes.

        :raises InvalidFilter: a malformed filter.
        """
        compiled = compile_where(where)
        return self.read(lambda txn: [rec[0] for _, rec in self._shard.matching(txn, compiled)])

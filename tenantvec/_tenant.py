"""Public facade: :class:`Tenant`, one tenant's API (a capability for exactly one shard).

Every call pins the tenant's shard in the store's shard manager for its duration
(:class:`_Call`) and turns raw storage errors into :class:`~tenantvec.TenantVecError`\\ s
at the engine boundary (:func:`storage_error`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ._aio import twin
from .errors import TenantNotFound

if TYPE_CHECKING:
    from ._engine.compact import CompactReport
    from ._engine.manager import ShardManager
    from ._engine.shard import Shard
    from ._engine.txn import ReadTxn, WriteTxn
    from ._engine.wmlog import WmView
    from ._store import Store
    from ._types import Hit, QueryPlan, Record, TenantInfo

#: A ``where`` filter (see :mod:`tenantvec._filters`).
Where = dict[str, Any]


R = TypeVar("R")

def storage_error(exc: BaseException, what: str, path: str) -> BaseException:
    """The :class:`~tenantvec.TenantVecError` for a raw storage error (``exc`` itself when
    there is nothing to translate): :func:`tenantvec._engine.storage.storage_error`,
    imported only when an error occurs (importing the facade loads no storage library)."""
    from ._engine.storage import storage_error as translate

    return translate(exc, what, path)


class Tenant:
    """One tenant's memory. Obtain it from :meth:`Store.tenant` or :meth:`Store.create_tenant`.

    A handle is bound to one incarnation of the tenant: if the tenant is dropped (and
    perhaps re-created), calls raise :class:`TenantNotFound`.
    """

    __slots__ = ("_id", "_manager", "_store", "_uuid")

    def __init__(self, store: Store, tenant_id: str, incarnation: str) -> None:
        self._store = store
        self._manager: ShardManager = store.manager
        self._id = tenant_id
        self._uuid = incarnation

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<tenantvec.Tenant {self._id!r}>"

    def _pin(self) -> Shard:
        store = self._store
        store.check_open()
        try:
            shard = self._manager.pin(self._id)
        except TenantNotFound:
            raise self._dropped() from None
        except Exception as exc:  # the path is computed only here: pins are the hot path
            err = storage_error(exc, f"tenant {self._id!r}", str(store.tenant_path(self._id)))
            if err is exc:
                raise
            raise err from exc
        if shard.uuid != self._uuid:
            self._manager.unpin(shard)
            raise self._dropped()
        return shard  # a deactivated tenant is refused by the shard, under its lock

    def _dropped(self) -> TenantNotFound:
        return TenantNotFound(f"tenant {self._id!r} was dropped; this handle refers to the old tenant",
                              tenant=self._id, path=str(self._store.tenant_path(self._id)))

    def _call(self, *, wrote: bool = False) -> _Call:
        """``with self._call() as shard:`` pins this tenant's shard for one call, unpins
        it after, and turns raw storage errors into :class:`TenantVecError`\\ s."""
        return _Call(self._manager, self._pin(), wrote)

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
        from ._engine import compact as _compact

        with self._call(wrote=True) as shard:
            out = shard.put(vectors, ids, documents, metadata, upsert=True)
            _compact.maybe_compact(shard)
            return out

    # One vector gives a list of hits, a batch a list per query vector. A numpy array's
    # dimensionality is unknown to type checkers, so arrays give ``list[Any]``.
    @overload
    def query(self, vector: Sequence[float], k: int = 10, where: Where | None = None, *,
              explain: Literal[False] = False) -> list[Hit]: ...
    @overload
    def query(self, vector: Sequence[Sequence[float]], k: int = 10, where: Where | None = None, *,
              explain: Literal[False] = False) -> list[list[Hit]]: ...
    @overload
    def query(self, vector: Any, k: int = 10, where: Where | None = None, *,
              explain: Literal[False] = False) -> list[Any]: ...
    @overload
    def query(self, vector: Sequence[float], k: int = 10, where: Where | None = None, *,
              explain: Literal[True]) -> tuple[list[Hit], QueryPlan]: ...
    @overload
    def query(self, vector: Sequence[Sequence[float]], k: int = 10, where: Where | None = None, *,
              explain: Literal[True]) -> tuple[list[list[Hit]], QueryPlan]: ...
    @overload
    def query(self, vector: Any, k: int = 10, where: Where | None = None, *,
              explain: Literal[True]) -> tuple[list[Any], QueryPlan]: ...
    @overload
    def query(self, vector: Any, k: int = 10, where: Where | None = None, *, explain: bool) -> Any: ...

    def query(self, vector: Any, k: int = 10, where: Where | None = None, *, explain: bool = False) -> Any:
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
        where: Where | None = None,
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

    def delete(self, ids: Sequence[str] | None = None, where: Where | None = None) -> int:
        """Delete records by id and/or ``where``; returns the number deleted.

        When tombstones then pass the store's ``compact_threshold``, the tenant is
        compacted before the call returns (queries keep being served meanwhile).

        :raises InvalidArgument: neither ``ids`` nor ``where`` given (``where={}`` deletes all).
        """
        from ._engine import compact as _compact

        with self._call(wrote=True) as shard:
            n = shard.delete(ids, where)
            _compact.maybe_compact(shard)
            return n

    def count(self, where: Where | None = None) -> int:
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
        from ._engine import compact as _compact

        self._store.check_writable(f"compact tenant {self._id!r}")
        with self._call(wrote=True) as shard:
            report = _compact.compact_shard(shard)
        assert report is not None  # compact_shard waits for a running compaction
        return report

    @contextmanager
    def transaction(self) -> Iterator[WriteTxn]:
        """One atomic write transaction over this tenant's records and side tables (the
        hook the memory layer writes through)::

            with tenant.transaction() as tx:
                tx.add(vectors, ids=["m1"], documents=["..."])
                tx.side("wm").delete(b"sess-42/note-1")

        Everything done through ``tx`` commits together when the block ends and nothing
        does when it raises; a step that raises (``DuplicateId``, bad input) rolls back
        only itself. Reads through ``tx`` see its own writes. The tenant's write lock is
        held for the whole block: other threads' calls on this tenant wait, and calls on
        it through this handle from inside the block raise ``TenantVecError``.

        :raises ReadOnlyStore: the store is read-only.
        """
        with self._call(wrote=True) as shard, shard.transaction() as tx:
            yield tx

    def wm_write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply puts (``(key, value)``) and deletes (``(key, None)``) to this tenant's
        working memory (side table ``"wm"``) atomically, in microseconds::

            tenant.wm_write([(b"sess-42/goal", b"ship it"), (b"sess-42/draft", None)])

        The batch is appended to the tenant's working memory journal without an fsync: it
        survives a process kill (all of it or none of it), not a power loss, and is folded
        into LMDB by the next transaction, flush or close. Transactions order after it:
        ``tx.side("wm")`` sees it. Keys are bytes of 1 to 511 bytes, values bytes.

        :raises InvalidArgument: a malformed batch (checked before anything is written).
        :raises ReadOnlyStore: the store is read-only.
        :raises TenantInactive: the tenant is deactivated.
        """
        with self._call(wrote=False) as shard:  # the shard flags its memory when working memory grew
            shard.wm_write(ops)

    def wm_update(self, update: Callable[[WmView], tuple[Sequence[tuple[bytes, bytes | None]], R]]) -> R:
        """Read-modify-write working memory atomically: ``update(view)`` sees it as it is
        (``view.get(key)``, ``view.items(prefix)``) and returns ``(ops, result)``; the ops are
        applied as :meth:`wm_write` applies them and ``result`` is returned, under the
        tenant's write lock. ``update`` must be quick and must not call this tenant. When it
        raises, nothing is written.

        :raises InvalidArgument: malformed ops (nothing is written).
        :raises ReadOnlyStore: the store is read-only.
        :raises TenantInactive: the tenant is deactivated.
        """
        with self._call(wrote=False) as shard:
            return shard.wm_update(update)

    def wm_read(self, read: Callable[[WmView], R]) -> R:
        """``read(view)`` of working memory as it is now, journaled writes included, under
        the tenant's shared lock (several reads, one consistent state). ``read`` must be
        quick and must not call this tenant.

        :raises TenantInactive: the tenant is deactivated.
        """
        with self._call() as shard:
            return shard.wm_read(read)

    def wm_get(self, key: bytes) -> bytes | None:
        """The working memory value under ``key`` (journaled writes included), or None.

        :raises InvalidArgument: ``key`` is not 1 to 511 bytes.
        """
        with self._call() as shard:
            return shard.wm_read(lambda wm: wm.get(key))

    def wm_items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Every working memory ``(key, value)`` whose key starts with ``prefix``, sorted by key.

        :raises InvalidArgument: ``prefix`` is not bytes.
        """
        with self._call() as shard:
            return shard.wm_read(lambda wm: wm.items(prefix))

    @contextmanager
    def reading(self) -> Iterator[ReadTxn]:
        """A consistent read-only view of this tenant's records and side tables (one LMDB
        read transaction) for the body: ``view.get(ids)``, ``view.side("wm").get(key)``,
        ``view.side(name).items(prefix)``. Like any read call it holds the tenant's lock
        shared: other readers go on, writes to the tenant wait until the block ends, and
        calls on it through this handle from inside the block raise ``TenantVecError``.
        A read-only store can use it.

        :raises TenantInactive: the tenant is deactivated.
        """
        with self._call() as shard, shard.view() as view:
            yield view

    # Async twins (``await tenant.aquery(v)``): each runs its sync call in a worker thread of
    # the event loop's default executor (see tenantvec._aio). Not twinned: transaction() and
    # reading() (blocks of sync calls; do not await this tenant's twins inside them: the
    # twin's thread would wait for the lock the block holds) and the wm_* hooks.
    aadd = twin(add)
    aupsert = twin(upsert)
    aquery = twin(query)
    aget = twin(get)
    adelete = twin(delete)
    acount = twin(count)
    ainfo = twin(info)
    aflush = twin(flush)
    acompact = twin(compact)


class _Call:
    """One call's pin on a tenant's shard (see :meth:`Tenant._call`)."""

    __slots__ = ("_manager", "_shard", "_wrote")

    def __init__(self, manager: ShardManager, shard: Shard, wrote: bool) -> None:
        self._manager, self._shard, self._wrote = manager, shard, wrote

    def __enter__(self) -> Shard:
        return self._shard

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        shard = self._shard
        self._manager.unpin(shard, wrote=self._wrote)
        if exc is not None:
            err = storage_error(exc, f"tenant {shard.tenant_id!r}", shard.path)
            if err is not exc:
                raise err from exc

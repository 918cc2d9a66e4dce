"""ShardManager: which tenants are hot, under a memory budget and a hot-shard limit.

Hot = LMDB environment open and index in memory; cold = files only. ``pin`` loads a
tenant on first access and marks it in use; ``unpin`` releases it. When ``max_hot`` or
the memory budget would be exceeded, least-recently-used unpinned shards are closed
(flushing their index snapshot first). A pinned shard is never evicted. Loads and
closes run outside the manager lock; a per-tenant transition event keeps a tenant from
being opened twice (LMDB forbids two environments on one file in one process).
"""

from __future__ import annotations

import logging
import resource
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import StoreClosed
from .shard import Shard

log = logging.getLogger("tenantvec")

_FDS_PER_SHARD = 3  # data.mdb, lock.mdb, and a snapshot being read or written
_FD_RESERVE = 48


def fd_capped_max_hot(max_hot: int) -> int:
    """``max_hot`` lowered so hot shards fit in the process's open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_hot
    cap = max(1, (soft - _FD_RESERVE) // _FDS_PER_SHARD)
    if cap < max_hot:
        log.warning("max_hot lowered from %d to %d to fit the open-file limit of %d", max_hot, cap, soft)
    return min(max_hot, cap)


class ShardManager:
    """LRU of hot shards for one store. Thread-safe."""

    def __init__(self, opener: Callable[[str], Shard], *, max_hot: int, memory_budget: int) -> None:
        self._opener = opener
        self.max_hot = fd_capped_max_hot(max_hot)
        self.memory_budget = memory_budget
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)  # a held-back shard's last pin left
        self._hot: OrderedDict[str, Shard] = OrderedDict()
        self._transit: dict[str, threading.Event] = {}
        self._closed = False
        self._stop = threading.Event()
        self._over_limits = False  # pinned shards kept us above max_hot or the budget
        self._memory = 0  # sum of hot shards' accounted bytes
        self._flusher: threading.Thread | None = None
        self.loads = self.evictions = self.hits = self.misses = 0

    # ------------------------------------------------------------------ pinning
    def pin(self, tenant_id: str) -> Shard:
        """Return the tenant's hot shard, loading it if needed, with one more pin.

        Waits while the tenant is being loaded, closed or held by a lifecycle call
        (:meth:`exclusive`). A read-only shard first checks that it still serves the
        tenant's current files (:meth:`Shard.follow`); one whose files a writer process
        dropped or replaced by a new incarnation (``shard.gone``) is closed once its
        running calls end, and the tenant is loaded again from its files.

        :raises TenantNotFound, CorruptShard: from opening the shard.
        """
        while True:
            with self._lock:
                if self._closed:
                    raise StoreClosed("the store is closed")
                event = self._transit.get(tenant_id)
                if event is None:
                    shard = self._hot.get(tenant_id)
                    if shard is not None and not shard.gone:
                        self._hot.move_to_end(tenant_id)
                        shard.pins += 1
                        self.hits += 1
                        if not shard.readonly:
                            return shard
                    else:
                        event = self._transit[tenant_id] = threading.Event()
                        if shard is not None:
                            self._unhot_locked(tenant_id, shard)
                        self.misses += 1
                        break
            if event is None:  # a hot read-only shard, pinned: does it still serve the current files?
                assert shard is not None
                if self._follows(shard):
                    return shard
                continue
            event.wait()
        try:
            if shard is not None:  # gone: close it once its calls end, then load anew
                self._drain_and_close(tenant_id, shard)
            shard = self._opener(tenant_id)
        except BaseException:
            with self._lock:
                del self._transit[tenant_id]
            event.set()
            raise
        with self._lock:
            shard.pins = 1
            self._hot[tenant_id] = shard
            self._account_locked(shard)
            del self._transit[tenant_id]
            self.loads += 1
            victims = self._select_victims_locked()
        event.set()
        self._close_victims(victims)
        return shard

    @contextmanager
    def pinned(self, tenant_id: str, *, wrote: bool = False) -> Iterator[Shard]:
        """``with manager.pinned(tid) as shard:`` :meth:`pin` for the body, then
        :meth:`unpin` (``wrote``: the body wrote, so the limits are checked again).

        :raises TenantNotFound, CorruptShard: from opening the shard.
        """
        shard = self.pin(tenant_id)
        try:
            yield shard
        finally:
            self.unpin(shard, wrote=wrote)

    def unpin(self, shard: Shard, *, wrote: bool = False) -> None:
        """Release a pin; re-check the limits after a write, or when pinned shards kept
        the manager over its limits (they may be evictable now)."""
        with self._lock:
            shard.pins -= 1
            if not shard.pins and shard.tenant_id in self._transit:
                self._drained.notify_all()  # a lifecycle call waits for this shard's calls
            grew = False
            if (wrote or shard.memory_changed) and self._hot.get(shard.tenant_id) is shard:
                grew = self._account_locked(shard) > 0
            if not (wrote or grew or self._over_limits):
                return
            victims = self._select_victims_locked()
        self._close_victims(victims)

    def _follows(self, shard: Shard) -> bool:
        """Whether a pinned read-only shard still serves its tenant's files; when not (or
        when checking fails) its pin is released (the next pin loads the files anew)."""
        try:
            if shard.follow():
                return True
        except BaseException:
            self.unpin(shard)
            raise
        self.unpin(shard)
        return False

    def _unhot_locked(self, tenant_id: str, shard: Shard) -> None:
        del self._hot[tenant_id]
        self._memory -= shard.accounted

    def _drain_and_close(self, tenant_id: str, shard: Shard) -> None:
        """Wait until no call holds ``shard`` (no longer hot, its tenant in transit), then
        close it. New calls on the tenant wait on the transit event meanwhile, so a
        stream of calls cannot starve this."""
        with self._lock:
            while shard.pins:
                self._drained.wait()
        try:
            shard.close()
        except Exception:
            log.exception("tenant %r: error while closing", tenant_id)
        with self._lock:
            self.evictions += 1

    def _account_locked(self, shard: Shard) -> int:
        """Re-read a hot shard's memory into the running total; returns the change."""
        shard.memory_changed = False
        new = shard.memory_bytes
        delta = new - shard.accounted
        shard.accounted = new
        self._memory += delta
        return delta

    def _select_victims_locked(self) -> list[tuple[str, Shard, threading.Event]]:
        total = self._memory
        if len(self._hot) <= 1 or (len(self._hot) <= self.max_hot and total <= self.memory_budget):
            self._over_limits = False  # the common case, in O(1): nothing to evict
            return []
        victims = []
        for tid, shard in list(self._hot.items()):
            if len(self._hot) <= 1 or (len(self._hot) <= self.max_hot and total <= self.memory_budget):
                break  # a single tenant larger than the budget stays hot rather than thrash
            if shard.pins or tid in self._transit:
                continue
            del self._hot[tid]
            event = self._transit[tid] = threading.Event()
            total -= shard.accounted
            victims.append((tid, shard, event))
        self._memory = total
        self._over_limits = len(self._hot) > 1 and (len(self._hot) > self.max_hot or total > self.memory_budget)
        if self._over_limits:
            log.debug("over limits while shards are in use (%d hot, %d bytes)", len(self._hot), total)
        return victims

    def _close_victims(self, victims: list[tuple[str, Shard, threading.Event]]) -> None:
        for tid, shard, event in victims:
            try:
                shard.close()
            except Exception:
                log.exception("tenant %r: error while evicting", tid)
            finally:
                with self._lock:
                    del self._transit[tid]
                    self.evictions += 1
                event.set()

    # ------------------------------------------------------------------ explicit control
    @contextmanager
    def exclusive(self, tenant_id: str) -> Iterator[bool]:
        """Hold a tenant cold for a lifecycle call (drop, verify, ...); yields whether it
        was hot.

        From entry on, new calls on the tenant wait (they cannot starve this); calls
        already running finish first, then the shard is closed (its snapshot flushed).
        Until the body ends nothing loads the tenant, so its files may be opened,
        checked, renamed or removed directly; calls that waited then load whatever the
        body left (a dropped tenant raises ``TenantNotFound``).

        :raises TenantVecError: this thread holds a transaction on the tenant.
        """
        while True:
            with self._lock:
                if self._closed:
                    raise StoreClosed("the store is closed")
                event = self._transit.get(tenant_id)
                if event is None:
                    shard = self._hot.get(tenant_id)
                    if shard is not None:
                        shard.check_not_in_txn()  # it would wait for itself to finish
                        self._unhot_locked(tenant_id, shard)
                    event = self._transit[tenant_id] = threading.Event()
                    break
            event.wait()
        try:
            if shard is not None:
                self._drain_and_close(tenant_id, shard)
            yield shard is not None
        finally:
            with self._lock:
                del self._transit[tenant_id]
            event.set()

    def evict(self, tenant_id: str) -> bool:
        """Close a tenant's shard if hot, after its running calls; returns whether it was hot."""
        with self.exclusive(tenant_id) as was_hot:
            return was_hot

    @contextmanager
    def hold(self, tenant_id: str) -> Iterator[Shard | None]:
        """Keep a tenant from loading or unloading while the body runs.

        Yields its hot shard (pinned) or, when the tenant is cold, ``None``; a cold tenant
        stays cold until the body ends, so its files may be opened directly (LMDB forbids a
        second environment on one file in one process). Used by listing and dry runs
        that read files without loading (see :meth:`exclusive` to force a tenant cold).
        """
        while True:
            pinned: Shard | None = None  # a hot read-only shard pinned: does it follow its files?
            with self._lock:
                if self._closed:
                    raise StoreClosed("the store is closed")
                event = self._transit.get(tenant_id)
                shard = self._hot.get(tenant_id)
                if event is None:
                    if shard is None:  # cold: keep it so
                        event = self._transit[tenant_id] = threading.Event()
                        break
                    if not shard.gone:
                        shard.pins += 1
                        if not shard.readonly:
                            break
                        pinned = shard
            if event is not None:
                event.wait()
            elif pinned is not None:
                if self._follows(pinned):
                    break
            else:  # a gone shard: close it and load the files anew through pin
                self.unpin(self.pin(tenant_id))
        if shard is not None:
            try:
                yield shard
            finally:
                self.unpin(shard)
            return
        assert event is not None  # the tenant is held cold by this transit event
        try:
            yield None
        finally:
            with self._lock:
                del self._transit[tenant_id]
            event.set()

    def hot(self) -> dict[str, Shard]:
        """Snapshot of hot shards (most recently used last)."""
        with self._lock:
            return dict(self._hot)

    def is_hot(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id in self._hot

    def _pin_if_hot(self, tenant_id: str) -> Shard | None:
        """Pin a hot shard without touching LRU order or hit statistics."""
        with self._lock:
            shard = self._hot.get(tenant_id)
            if shard is not None:
                shard.pins += 1
            return shard

    def flush(self, *, sync: bool = True) -> int:
        """Write every dirty snapshot of hot shards; returns how many were written."""
        written = 0
        for tid in list(self.hot()):
            shard = self._pin_if_hot(tid)
            if shard is None:
                continue
            try:
                written += shard.flush()
                if sync:
                    shard.sync()
            except Exception:
                log.exception("tenant %r: background flush failed", tid)
            finally:
                self.unpin(shard)
        return written

    def start_flusher(self, interval: float) -> None:
        """Write dirty snapshots every ``interval`` seconds in a daemon thread, so the
        operation log replayed after a crash stays short. Stopped by :meth:`close`."""
        def run() -> None:
            while not self._stop.wait(interval):
                self.flush(sync=False)

        self._flusher = threading.Thread(target=run, name="tenantvec-flush", daemon=True)
        self._flusher.start()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            memory = self._memory
            lookups = self.hits + self.misses
            return {
                "hot": len(self._hot),
                "loads": self.loads,
                "evictions": self.evictions,
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": self.hits / lookups if lookups else 0.0,
                "memory_bytes": memory,
                "memory_budget": self.memory_budget,
                "max_hot": self.max_hot,
            }

    def close(self) -> None:
        """Flush and close every hot shard. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        while True:
            with self._lock:
                pending = list(self._transit.values())
                hot = list(self._hot.items())
                self._hot.clear()
            for ev in pending:
                ev.wait()
            if not hot:
                if not pending:
                    return
                continue
            for tid, shard in hot:
                try:
                    shard.close()
                except Exception:
                    log.exception("tenant %r: error while closing", tid)
